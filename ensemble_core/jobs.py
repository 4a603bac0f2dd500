"""Background training jobs: a bounded, fair, process-wide pool.

The dashboard never trains in its script thread.  A page submits a
:class:`~ensemble_core.config.RunConfig` and a dataset to a :class:`JobPool`;
a worker process runs :func:`ensemble_core.training.train` (see "Processes,
not threads" below), the job records every event, and the page redraws from that history a few times a second.  Stop sets
the job's stop flag; the engine honours it between batches and returns a
valid, smaller run, which the job keeps.

Fair sharing (one server, a classroom of users):

* at most ``max_running`` jobs train at once; the rest wait in a queue of at
  most ``max_queued`` jobs ("the class queue is full, try again in about N s")
  and each knows its 1-based :attr:`Job.queue_position`;
* the queue is fair by user, not first-come-first-served: a free slot goes to
  the queued job whose user has the fewest jobs running, then to the oldest.
  One person's queued runs therefore never delay another person's first run;
* :func:`check_limits` refuses runs that would hog the server, naming the
  limit and the run's own numbers: rows, parameters, members x parameters x
  epochs x rows, and the optimiser steps, CPU-seconds and peak memory that
  :mod:`ensemble_core.costs` estimates;
* each owner may have only ``max_active_per_owner`` queued-or-running jobs,
  and each user ``max_active_per_user`` (an owner ``"<user>:<part>"`` belongs
  to ``<user>``: a browser session's Train page, lesson and race each have
  their own owner);
* a reaper stops the jobs of owners that have gone away and forgets finished
  jobs after ``retain_s`` seconds.  "Gone" is asked of ``alive(owner)`` when
  given (the dashboard asks Streamlit whether the browser session is still
  connected: a connected session whose polling is starved on a busy server
  keeps its place in the queue); when it is not given or cannot tell, an owner
  is gone when :meth:`JobPool.touch` was not called for ``heartbeat_timeout``
  seconds.

Isolation: :meth:`JobPool.get` only returns a job to its owner.

Processes, not threads (``executor="process"``, the default): the engine
issues many small torch ops, each releasing and re-acquiring the GIL, so in a
server whose other threads are CPU-busy (script reruns, Plotly figures) a
training *thread* waits for the GIL switch interval at every op and runs many
times slower (``docs/decisions.md``).  The pool therefore keeps ``max_running`` long-lived worker
processes (:class:`~ensemble_core.worker.ProcessWorker`, started with the pool
and warm); each job's dispatch thread sends the job to a free worker and
forwards the worker's events, result or error into the :class:`Job` (its
blocking reads release the GIL, so it costs the server nothing).  A worker that
dies fails its job with a human message and is restarted.  The interface
(submit, events, stop, result) is the same for ``executor="thread"``, which
runs ``train`` in the dispatch thread itself (tests inject a fake ``train_fn``,
which implies threads).  ``executor="ray"`` (or ``LAB_EXECUTOR=ray``) puts the same
seam on Ray actors, locally or across a cluster (:mod:`ensemble_core.ray_executor`); the queue
above still decides who trains next.

This module never imports Streamlit.
"""

from __future__ import annotations

import logging
import os
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from .config import ConfigError, RunConfig
from .costs import RunCost, estimate, fmt_bytes, fmt_count, shape_of
from .data import DataError, Dataset
from .run import pace_seconds
from .shapes import parameter_count
from .worker import ProcessWorker, WorkerDied, WorkerFailure

__all__ = [
    "EXECUTOR_ENV",
    "GENERIC_FAILURE",
    "Job",
    "JobPool",
    "LaneJob",
    "LimitError",
    "Limits",
    "RAY_MISSING",
    "Progress",
    "check_limits",
    "default_max_running",
    "user_of",
]

log = logging.getLogger(__name__)

#: Environment variable choosing the executor of a pool made without one: ``process`` (default) or ``ray``.
EXECUTOR_ENV = "LAB_EXECUTOR"

#: Why a job asking for the Ray executor is refused on a server without Ray.
RAY_MISSING = "Ray is not installed on this server: pip install -r requirements-ray.txt"

Status = Literal["queued", "running", "done", "stopped", "failed"]
ACTIVE: tuple[str, ...] = ("queued", "running")

#: What a user sees when training fails for an unexpected reason (the details go to the log).
GENERIC_FAILURE = (
    "Training failed because of an internal error. The details were logged for the "
    "maintainers; try again, or change the settings (e.g. a smaller learning rate)."
)


class LimitError(ValueError):
    """A run exceeds a classroom limit or the owner's job quota; the message names the limit."""


# --------------------------------------------------------------------- limits
@dataclass(frozen=True)
class Limits:
    """Per-run limits that keep one user from hogging a shared server.

    The steps, CPU-seconds and peak memory are estimated by
    :func:`ensemble_core.costs.estimate` from the config and the data's shape.

    Attributes:
        max_work: upper bound on ``trajectories x parameters x epochs x training rows``
            (about the number of multiply-adds of the forward passes; 3e10 by default).
        max_rows: most training rows a run may use.
        max_parameters: most parameters one member may have.
        max_steps: most optimiser steps (``epochs x ceil(rows / batch)``): each step
            costs a fixed ~0.3 ms whatever its size, and its learning rate is kept.
        max_cpu_seconds: most estimated CPU-seconds of training (one core).
        max_memory_bytes: most estimated peak memory of the worker training the run
            (the ~0.3 GB of the process itself included).
    """

    max_work: float = 3e10
    max_rows: int = 50_000
    max_parameters: int = 2_000_000
    max_steps: int = 2_000_000
    max_cpu_seconds: float = 120.0
    max_memory_bytes: float = 2e9


def _memory_advice(cost: RunCost) -> str:
    """What to change when a run needs too much memory, after its largest part."""
    parts = {"activations": cost.activation_bytes, "rows": cost.epoch_data_bytes + cost.data_bytes,
             "params": cost.parameter_bytes + cost.snapshot_bytes, "eval": cost.eval_bytes,
             "history": cost.history_bytes}
    top = max(parts, key=lambda k: parts[k])
    return {"activations": "lower the batch size, the width or the members (a step's activations grow with "
                           "members × batch × width × layers)",
            "rows": "use fewer rows or fewer members (each member gets its own copy of the rows every epoch)",
            "params": "use fewer hidden units, layers, members or snapshots",
            "eval": "use a smaller validation split, fewer members or a smaller width",
            "history": "raise the batch size or lower the epochs"}[top]


def check_limits(config: RunConfig, dataset: Dataset, limits: Limits | None = None) -> RunCost:
    """Refuse a run that would exceed the classroom limits; return its estimated cost otherwise.

    Checked in order: training rows, parameters per member, the work
    ``members x parameters x epochs x rows``, optimiser steps, peak memory and
    CPU-seconds (:func:`ensemble_core.costs.estimate`).  Pure arithmetic: no
    torch, cheap enough for every rerun of a page.

    Args:
        config: the run to check.
        dataset: the data it would train on.
        limits: the limits (default :class:`Limits`).

    Returns:
        The run's estimated :class:`~ensemble_core.costs.RunCost`.

    Raises:
        LimitError: naming the limit, the run's own numbers and what to change.
    """
    limits = limits or Limits()
    rows = int(len(dataset.x_train))
    # data the engine cannot train (one class, an unknown task) is sized as the smallest valid
    # run here; train() refuses it with the real reason
    shape = shape_of(config, dataset)
    params = parameter_count(dataset.n_features, shape.n_outputs, config.model)
    members = config.strategy.members  # trajectories: snapshots cost no extra compute
    epochs = config.optim.epochs
    if rows > limits.max_rows:
        raise LimitError(
            f"This run would train on {rows:,} rows; the classroom limit is {limits.max_rows:,} rows. "
            "Use a smaller data set or a larger test split."
        )
    if params > limits.max_parameters:
        raise LimitError(
            f"Each member would have {params:,} parameters; the classroom limit is "
            f"{limits.max_parameters:,}. Use fewer hidden layers or a smaller width."
        )
    work = float(members) * params * epochs * rows
    if work > limits.max_work:
        raise LimitError(
            f"This run would train {members} member{'s' if members != 1 else ''} × {params:,} parameters × "
            f"{epochs:,} epochs × {rows:,} rows = {work:.1e}; the classroom limit is {limits.max_work:.1e}. "
            "Use fewer epochs, members, hidden units or rows."
        )
    cost = estimate(config, shape)
    if cost.steps > limits.max_steps:
        raise LimitError(
            f"This run is too long: {cost.explain_steps()}, over the classroom limit of "
            f"{fmt_count(limits.max_steps)} steps. Raise the batch size or lower the epochs."
        )
    if cost.peak_bytes > limits.max_memory_bytes:
        raise LimitError(
            f"This run would need {cost.explain_memory()}, over the classroom limit of "
            f"{fmt_bytes(limits.max_memory_bytes)}. To fit, {_memory_advice(cost)}."
        )
    if cost.cpu_seconds > limits.max_cpu_seconds:
        raise LimitError(
            f"This run would take too long: {cost.explain_cpu()}, over the classroom limit of "
            f"{limits.max_cpu_seconds:,.0f} CPU-seconds. Lower the epochs, members or width, or raise the "
            "batch size."
        )
    return cost


def default_max_running() -> int:
    """Concurrent trainings the machine holds: one per CPU core this process may use (at least 1)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):  # not Linux
        return max(1, os.cpu_count() or 1)


def user_of(owner: str) -> str:
    """The user an owner belongs to: ``"<user>:<part>"`` -> ``"<user>"``."""
    return owner.split(":", 1)[0]


# ----------------------------------------------------------------------- jobs
@dataclass(frozen=True)
class Progress:
    """How far a job is.

    Attributes:
        epoch: epochs finished so far.
        n_epochs: epochs planned.
        elapsed: seconds since the job started training (0 while queued).
        eta: estimated seconds left (``None`` before the first epoch ends).
    """

    epoch: int
    n_epochs: int
    elapsed: float
    eta: float | None

    @property
    def fraction(self) -> float:
        """Fraction of the planned epochs done, in [0, 1]."""
        return min(1.0, self.epoch / self.n_epochs) if self.n_epochs else 0.0


class Job:
    """One training run in the pool.  Read its fields from any thread.

    A *group* job (:meth:`JobPool.submit_group`, :attr:`is_group`) trains several
    configs (lanes) as one stacked program.  It is one job for the queue, quotas
    and fairness; its :attr:`config` is lane 0's (the lanes share epochs, data and
    model), :attr:`configs` holds every lane's, :attr:`events` holds ``(lane, event)``
    pairs (:meth:`lane_events` one lane's events), :attr:`result` is the list of
    :class:`~ensemble_core.training.LaneResult` (also :attr:`lane_results`), and
    :attr:`lanes` gives a Job-like view of each lane (:class:`LaneJob`).
    """

    def __init__(self, pool: JobPool, config: RunConfig, dataset: Dataset, owner: str,
                 preview_x: np.ndarray | None, preview_every: int, preview_min_s: float = 0.0,
                 on_change: Callable[[Job], None] | None = None, *,
                 configs: tuple[RunConfig, ...] | None = None, executor: str = "process") -> None:
        self.id: str = uuid.uuid4().hex[:12]
        self.configs: tuple[RunConfig, ...] | None = configs  # a group job's lanes, else None
        self.executor = executor  # "process", "ray" or "thread": where it trains
        self.on_change = on_change
        self.owner = owner
        self.config = config
        self.dataset = dataset
        self.preview_x = preview_x
        self.preview_every = preview_every
        self.preview_min_s = preview_min_s
        self.status: Status = "queued"
        self.result: Any = None  # ensemble_core.run.Run once done/stopped
        self.error: str | None = None
        self.submitted_at = time.monotonic()
        self.started_at: float | None = None
        self.finished_at: float | None = None
        self._pool = pool
        self._events: list[Any] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._epoch = 0
        self._lane_events: list[list[Any]] = [[] for _ in (configs or ())]
        self._lanes = [LaneJob(self, i) for i in range(len(configs or ()))]

    # -------------------------------------------------------------- reading
    @property
    def is_group(self) -> bool:
        """Whether this is a group job (several lanes trained as one program)."""
        return self.configs is not None

    @property
    def events(self) -> list[Any]:
        """A snapshot (copy) of every event received so far (a group job's: ``(lane, event)`` pairs)."""
        with self._lock:
            return list(self._events)

    def lane_events(self, lane: int) -> list[Any]:
        """A group job's events of lane ``lane`` (a copy), as that lane's own run would emit them."""
        with self._lock:
            return list(self._lane_events[lane])

    @property
    def lanes(self) -> list[LaneJob]:
        """A group job's lanes, each a Job-like view (:class:`LaneJob`); ``[]`` for an ordinary job."""
        return list(self._lanes)

    def lane(self, lane: int) -> LaneJob:
        """A group job's lane ``lane`` (:class:`LaneJob`)."""
        return self._lanes[lane]

    @property
    def lane_results(self) -> list[Any] | None:
        """A group job's :class:`~ensemble_core.training.LaneResult` list once it ended with one, else ``None``."""
        return self.result if self.is_group and isinstance(self.result, list) else None

    def events_since(self, i: int) -> list[Any]:
        """Events number ``i`` onwards (a copy), for incremental polling."""
        with self._lock:
            return self._events[i:]

    @property
    def n_events(self) -> int:
        """How many events were received so far."""
        with self._lock:
            return len(self._events)

    @property
    def active(self) -> bool:
        """Whether the job is queued or running."""
        return self.status in ACTIVE

    @property
    def stop_requested(self) -> bool:
        """Whether :meth:`stop` was called."""
        return self._stop.is_set()

    @property
    def queue_seconds(self) -> float | None:
        """Seconds the job waited in the queue before it started (``None`` while still queued,
        or for a job cancelled before it started)."""
        return None if self.started_at is None else self.started_at - self.submitted_at

    @property
    def queue_position(self) -> int | None:
        """1-based place in the queue while queued, else ``None``."""
        return self._pool._position(self)

    def progress(self) -> Progress:
        """Epochs done, elapsed seconds and the estimated time left."""
        n = self.config.optim.epochs
        if self.started_at is None:
            return Progress(0, n, 0.0, None)
        end = self.finished_at if self.finished_at is not None else time.monotonic()
        elapsed = end - self.started_at
        k = self._epoch
        eta = None if k == 0 else (0.0 if not self.active else elapsed / k * max(n - k, 0))
        return Progress(k, n, elapsed, eta)

    # -------------------------------------------------------------- control
    def stop(self) -> None:
        """Ask the job to stop: a queued job is cancelled, a running one keeps its partial run."""
        self._stop.set()
        self._pool._cancel_if_queued(self)

    # -------------------------------------------------------------- worker
    def _on_event(self, event: Any) -> None:
        if self.configs is not None:  # a group: (lane, event)
            lane, inner = event
            with self._lock:
                self._events.append(event)
                self._lane_events[lane].append(inner)
            if getattr(inner, "kind", None) == "epoch":
                self._epoch = max(self._epoch, int(inner.epoch))
            return
        with self._lock:
            self._events.append(event)
        if getattr(event, "kind", None) == "epoch":
            self._epoch = int(event.epoch)

    def _notify(self) -> None:
        """Call :attr:`on_change` (never raises: a failing callback is logged)."""
        if self.on_change is not None:
            try:
                self.on_change(self)
            except Exception:  # noqa: BLE001 - a listener must not break the pool
                log.exception("on_change of job %s failed", self.id)

    def __repr__(self) -> str:
        return f"Job(id={self.id!r}, owner={self.owner!r}, status={self.status!r})"


class LaneJob:
    """A read-only, Job-like view of one lane of a group job (see :class:`Job`).

    It has what pages and sweeps read of a :class:`Job` -- ``id`` (``"<group id>.<lane>"``),
    ``owner``, ``config`` (the lane's), ``dataset``, ``status``, ``result`` (the lane's
    :class:`~ensemble_core.run.Run` or ``None``), ``error``, ``events`` (the lane's),
    ``active``, ``progress()``, the times -- so a batched trial can be shown and saved like
    a job of its own.  :meth:`stop` stops the whole group (every lane keeps its partial run).
    """

    def __init__(self, group: Job, lane: int) -> None:
        self.group = group
        self.lane = lane
        self.id = f"{group.id}.{lane}"

    owner = property(lambda self: self.group.owner, doc="The group job's owner.")
    dataset = property(lambda self: self.group.dataset, doc="The data every lane trains on.")
    submitted_at = property(lambda self: self.group.submitted_at, doc="When the group was submitted.")
    started_at = property(lambda self: self.group.started_at, doc="When the group started training.")
    finished_at = property(lambda self: self.group.finished_at, doc="When the group ended.")
    queue_seconds = property(lambda self: self.group.queue_seconds, doc="The group's wait in the queue.")
    queue_position = property(lambda self: self.group.queue_position, doc="The group's place in the queue.")
    stop_requested = property(lambda self: self.group.stop_requested, doc="Whether the group was asked to stop.")
    active = property(lambda self: self.group.active, doc="Whether the group is queued or training.")
    executor = property(lambda self: self.group.executor, doc="Where the group trains.")
    preview_x = property(lambda self: self.group.preview_x, doc="The group's preview inputs.")

    @property
    def config(self) -> RunConfig:
        """This lane's config."""
        assert self.group.configs is not None
        return self.group.configs[self.lane]

    def _lane_result(self) -> Any:
        results = self.group.lane_results
        return results[self.lane] if results is not None and self.lane < len(results) else None

    @property
    def result(self) -> Any:
        """This lane's :class:`~ensemble_core.run.Run` once the group ended (``None``: failed or not run)."""
        res = self._lane_result()
        return None if res is None else res.run

    @property
    def error(self) -> str | None:
        """Why this lane has no run: its members all diverged, or the whole group failed."""
        res = self._lane_result()
        if res is not None and res.error:
            return str(res.error)
        return self.group.error

    @property
    def status(self) -> Status:
        """The group's status, except ``failed`` for a lane whose members all diverged."""
        status = self.group.status
        res = self._lane_result()
        if status in ("done", "stopped") and res is not None and res.run is None:
            return "failed"
        return status

    @property
    def events(self) -> list[Any]:
        """This lane's events so far (a copy)."""
        return self.group.lane_events(self.lane)

    def events_since(self, i: int) -> list[Any]:
        """This lane's events number ``i`` onwards."""
        return self.group.lane_events(self.lane)[i:]

    @property
    def n_events(self) -> int:
        """How many events this lane received so far."""
        return len(self.group.lane_events(self.lane))

    def progress(self) -> Progress:
        """The group's progress (its lanes train step by step together)."""
        return self.group.progress()

    def stop(self) -> None:
        """Stop the whole group job (a queued one is cancelled; running lanes keep their partial runs)."""
        self.group.stop()

    def __repr__(self) -> str:
        return f"LaneJob(id={self.id!r}, status={self.status!r})"


def _projected_seconds(job: Job) -> float | None:
    """How long a running ``job`` will take in all, at its pace so far (``None`` before its first epoch)."""
    p = job.progress()
    if p.epoch < 1 or p.elapsed <= 0:
        return None
    return p.elapsed / p.epoch * p.n_epochs


class JobPool:
    """A bounded pool of training jobs shared by every session of the process.

    Args:
        max_running: most jobs training at once (default: one per CPU core).
        limits: per-run limits checked by :meth:`submit` (``None`` = defaults).
        max_active_per_owner: most queued-or-running jobs one owner may have.
        max_active_per_user: most queued-or-running jobs of all owners of one user
            (see :func:`user_of`); at least ``max_active_per_owner``.
        max_queued: most jobs waiting in the queue, all users together; a submit beyond
            it raises :class:`LimitError` saying when to try again.
        heartbeat_timeout: stop an owner's jobs when it has gone away: ``alive(owner)``
            returned ``False``, or (``alive`` absent or ``None``) :meth:`touch` was not
            called, for this many seconds (``None`` disables the reaper).
        alive: optional ``owner -> True | False | None``: whether the owner's client is
            still connected (``None``: cannot tell, fall back to the heartbeat).
        retain_s: forget finished jobs this many seconds after they end.
        reap_interval: seconds between reaper sweeps.
        train_fn: the training function (default :func:`ensemble_core.training.train`,
            looked up at call time); tests may inject a fake (thread executor only).
        executor: ``"process"`` (default when ``train_fn`` is None): train in
            ``max_running`` persistent worker processes; ``"thread"`` (default
            with a ``train_fn``): train in the pool's dispatch threads;
            ``"ray"``: train in ``max_running`` Ray actors (default: one per CPU of
            the cluster, see :mod:`ensemble_core.ray_executor`).  ``None`` reads
            the environment variable ``LAB_EXECUTOR`` (``process`` when unset).
        torch_threads: intra-op threads for torch.  torch's thread pool is
            process-wide, so with several jobs in parallel each extra thread
            only oversubscribes the cores; the default gives every running job
            an equal share, ``max(1, cores // max_running)`` (1 on a small
            server: the members are small MLPs, where one thread per job is
            also the fastest).  ``0`` leaves torch's setting alone.  With the
            process executor it is also each worker's thread count.
        ray_workers: Ray actors made when the first Ray job of a pool whose default
            executor is not ``"ray"`` arrives (default: one per cluster CPU,
            :func:`ensemble_core.ray_executor.cluster_cpus`).

    Executor per job: :meth:`submit` and :meth:`submit_group` take
    ``executor="process" | "ray" | None`` (``None``: the pool's default,
    :attr:`executor`).  The pool keeps a worker set per kind -- its default's
    made with the pool, another kind's when that kind's first job arrives -- and
    each free worker takes the first job in the fair order (see
    :meth:`_order_locked`) that asks for its kind, so the queue order, quotas
    and limits are the same whatever the jobs' executors.
    """

    def __init__(self, max_running: int | None = None, *, limits: Limits | None = None,
                 max_active_per_owner: int = 1, max_active_per_user: int = 2, max_queued: int = 64,
                 heartbeat_timeout: float | None = 60.0, alive: Callable[[str], bool | None] | None = None,
                 retain_s: float = 3600.0, reap_interval: float = 5.0,
                 train_fn: Callable[..., Any] | None = None, torch_threads: int | None = None,
                 executor: Literal["process", "thread", "ray"] | None = None,
                 ray_workers: int | None = None) -> None:
        if executor is None:  # LAB_EXECUTOR=ray picks Ray for a server started without code changes
            executor = "thread" if train_fn is not None else (os.environ.get(EXECUTOR_ENV) or "process")
        if executor not in ("process", "thread", "ray"):
            raise ValueError(f"executor must be 'process', 'thread' or 'ray', got {executor!r}")
        if executor != "thread" and train_fn is not None:
            raise ValueError("a custom train_fn runs only with executor='thread'")
        if executor == "ray" and max_running is None:  # one slot per CPU of the whole cluster
            from .ray_executor import cluster_cpus

            max_running = cluster_cpus()
        self.max_running = max(1, int(max_running if max_running is not None else default_max_running()))
        self.limits = limits or Limits()
        self.max_active_per_owner = max_active_per_owner
        self.max_active_per_user = max(max_active_per_user, max_active_per_owner)
        self.max_queued = max(1, int(max_queued))
        self._alive = alive
        self.heartbeat_timeout = heartbeat_timeout
        self.retain_s = retain_s
        self._train_fn = train_fn
        self._lock = threading.Lock()
        self._queue: deque[Job] = deque()
        self._running: set[Job] = set()
        self._jobs: dict[str, Job] = {}
        self._seen: dict[str, float] = {}
        self._last_start: dict[str, float] = {}  # user -> when (a counter) a job of theirs last started
        self._durations: deque[float] = deque(maxlen=20)  # seconds of the latest finished runs
        self._threads: list[threading.Thread] = []
        self._closed = threading.Event()
        threads = torch_threads if torch_threads is not None else max(1, default_max_running() // self.max_running)
        if threads > 0:
            import torch

            torch.set_num_threads(threads)
        self.executor = executor
        self._torch_threads = torch_threads
        self._ray_workers = ray_workers
        # every worker of every kind (ProcessWorker or ray_executor.RayWorker: same interface, ``.kind``
        # says which); a kind's set is made with the pool (its default) or when its first job arrives
        self._workers: list[Any] = []
        self._idle: list[Any] = []
        self._kinds: set[str] = set()
        self._spawn_lock = threading.Lock()
        if executor != "thread":
            self._ensure_workers(executor, self.max_running, threads)
        self._reaper: threading.Thread | None = None
        if heartbeat_timeout is not None:
            self._reaper = threading.Thread(target=self._reap_loop, args=(reap_interval,),
                                            name="jobpool-reaper", daemon=True)
            self._reaper.start()

    # ------------------------------------------------------------ public API
    @property
    def supports_groups(self) -> bool:
        """Whether :meth:`submit_group` can train on this pool's default executor (not with a custom ``train_fn``)."""
        return self._train_fn is None

    def submit(self, config: RunConfig, dataset: Dataset, owner: str, *,
               preview_x: np.ndarray | None = None, preview_every: int = 0, preview_min_s: float = 0.0,
               on_change: Callable[[Job], None] | None = None, pace: str = "fast",
               executor: Literal["process", "ray"] | None = None) -> Job:
        """Queue a training run for ``owner`` and start it as soon as a slot is free.

        ``preview_x``, ``preview_every`` and ``preview_min_s`` ask for live
        previews (see :func:`ensemble_core.training.train`).  ``on_change(job)``
        is called, from a pool thread, when the job starts and when it ends
        (done, stopped, failed, or cancelled while queued), so a viewer can be
        told at once instead of finding out on its next poll.
        ``pace`` (:data:`ensemble_core.run.PACES`): ``"watchable"`` spreads the
        run over about :data:`~ensemble_core.run.WATCHABLE_S` seconds by waiting
        between epochs in the worker process (same result bit for bit, no CPU
        while waiting, not counted as training; the waits end while other runs
        are queued).  The thread executor ignores it.
        ``executor``: ``"process"``, ``"ray"`` or ``None`` (the pool's default,
        :attr:`executor`); a kind's workers are made when its first job arrives.

        Raises:
            LimitError: the run exceeds :attr:`limits`, the owner already has
                ``max_active_per_owner`` active jobs (its user ``max_active_per_user``),
                ``max_queued`` jobs are already waiting, or Ray was asked for and is
                not installed (:data:`RAY_MISSING`) or its cluster cannot be reached.
            ValueError: an unknown executor or pace.
            RuntimeError: the pool was shut down.
        """
        if self._closed.is_set():
            raise RuntimeError("the job pool has been shut down")
        pace_s = pace_seconds(pace)  # ValueError for an unknown pace
        check_limits(config, dataset, self.limits)
        kind = self._kind_for(executor)
        job = Job(self, config, dataset, owner, preview_x, preview_every, preview_min_s, on_change, executor=kind)
        job.pace_s = pace_s
        return self._enqueue(job)

    def submit_group(self, configs: Sequence[RunConfig], dataset: Dataset, owner: str, *,
                     preview_x: np.ndarray | None = None, preview_every: int = 0, preview_min_s: float = 0.0,
                     on_change: Callable[[Job], None] | None = None, pace: str = "fast",
                     executor: Literal["process", "ray"] | None = None) -> Job:
        """Queue several runs (lanes) that train as ONE stacked program, as ONE job of ``owner``.

        The configs must differ only in the settings each trajectory carries
        (learning rate and ``lr_min``, weight decay, seed, adversarial eps,
        beta: :data:`ensemble_core.sweep.PER_TRAJECTORY`).  The worker trains
        them with :func:`ensemble_core.training.train_lanes`; lane ``i``'s run
        equals ``train(configs[i], ...)`` to float round-off.  For the queue,
        the quotas and fairness it is one job; the limits are checked on the
        whole program (:func:`ensemble_core.sweep.stacked_config`: lanes x
        members trajectories).  Events, Stop (every lane keeps its partial run),
        pace and a dying worker behave as for :meth:`submit`.  The returned
        :class:`Job` is a group job (:attr:`Job.is_group`; read it through
        :attr:`Job.lanes`, :meth:`Job.lane_events`, :attr:`Job.lane_results`).
        It ends ``failed`` when the program failed (a worker died, bad data) or
        every lane's members diverged; otherwise ``done`` or ``stopped`` with
        each lane's run or error.

        Raises:
            ConfigError: no configs, or configs that cannot share one program.
            ValueError: the pool trains with a custom ``train_fn`` (:attr:`supports_groups`),
                an unknown executor or pace.
            LimitError: as :meth:`submit`, for the whole program.
            RuntimeError: the pool was shut down.
        """
        from .sweep import SweepGroup, stacked_config
        from .training import lane_key

        if self._closed.is_set():
            raise RuntimeError("the job pool has been shut down")
        configs = tuple(configs)
        if not configs:
            raise ConfigError("a group job needs at least one config")
        if len({lane_key(c) for c in configs}) != 1:
            raise ConfigError("these configs differ in more than the per-trajectory settings (learning rate, "
                              "weight decay, seed, adversarial eps, beta) and cannot train as one program")
        if executor is None and not self.supports_groups:
            raise ValueError("this pool trains with a custom train_fn; group jobs need the engine "
                             "(pass executor='process' or 'ray', or make the pool without train_fn)")
        pace_s = pace_seconds(pace)
        check_limits(stacked_config(SweepGroup(tuple(range(len(configs))), configs)), dataset, self.limits)
        kind = self._kind_for(executor)
        job = Job(self, configs[0], dataset, owner, preview_x, preview_every, preview_min_s, on_change,
                  configs=configs, executor=kind)
        job.pace_s = pace_s
        return self._enqueue(job)

    def _kind_for(self, executor: str | None) -> str:
        """The executor kind a job asking for ``executor`` trains on; its workers exist afterwards."""
        if executor is None:
            return self.executor
        if executor not in ("process", "ray"):
            raise ValueError(f"executor must be 'process', 'ray' or None, got {executor!r}")
        if executor == "ray":
            from .ray_executor import ray_available

            if not ray_available():
                raise LimitError(RAY_MISSING)
        if executor not in self._kinds:
            if executor == "ray":
                from .ray_executor import cluster_cpus

                try:
                    count = self._ray_workers or cluster_cpus()
                except RuntimeError as exc:  # the cluster cannot be reached
                    raise LimitError(f"The Ray executor is not available: {exc}") from None
                threads = self._torch_threads if self._torch_threads else 1
            else:
                count = default_max_running()
                threads = (self._torch_threads if self._torch_threads is not None
                           else max(1, default_max_running() // count))
            self._ensure_workers(executor, count, threads)
        return executor

    def _ensure_workers(self, kind: str, count: int, threads: int) -> None:
        """Make ``count`` workers of ``kind`` once (slow: outside the pool's lock, under its own)."""
        with self._spawn_lock:
            if kind in self._kinds or self._closed.is_set():
                return
            if kind == "process":
                made: list[Any] = [ProcessWorker(torch_threads=threads if threads > 0 else None,
                                                 name=f"ensemble-worker-{i}") for i in range(count)]
            else:
                from .ray_executor import RayWorker

                made = [RayWorker(torch_threads=threads if threads > 0 else 1, name=f"ensemble-ray-{i}")
                        for i in range(count)]
            with self._lock:
                self._workers.extend(made)
                self._idle.extend(made)
                self._kinds.add(kind)
                self._dispatch_locked()

    def _enqueue(self, job: Job) -> Job:
        """Check the owner's and user's quotas and the queue's room; queue ``job`` and dispatch."""
        owner = job.owner
        with self._lock:
            active = sum(1 for j in self._jobs.values() if j.owner == owner and j.active)
            if active >= self.max_active_per_owner:
                raise LimitError(
                    f"You already have {active} run{'s' if active != 1 else ''} queued or training here "
                    f"(the limit is {self.max_active_per_owner}); stop it or wait for it to finish."
                )
            user = user_of(owner)
            mine = sum(1 for j in self._jobs.values() if user_of(j.owner) == user and j.active)
            if mine >= self.max_active_per_user:
                raise LimitError(
                    f"You already have {mine} runs queued or training (Train, Lessons and Compare together; "
                    f"the limit is {self.max_active_per_user} per user so that everyone gets a turn). "
                    "Stop one or wait for it to finish."
                )
            if len(self._queue) >= self.max_queued and len(self._running) >= self.max_running:
                raise LimitError(
                    f"The class queue is full: {len(self._queue)} runs are waiting for the "
                    f"{self.max_running} training slot{'s' if self.max_running != 1 else ''}. "
                    f"Try again in about {self._retry_after_locked():.0f} s."
                )
            self._jobs[job.id] = job
            self._seen[owner] = time.monotonic()
            self._queue.append(job)
            self._dispatch_locked()
        return job

    def get(self, job_id: str | None, owner: str) -> Job | None:
        """The job ``job_id`` if it exists and belongs to ``owner`` (isolation), else ``None``."""
        if not job_id:
            return None
        with self._lock:
            job = self._jobs.get(job_id)
        return job if job is not None and job.owner == owner else None

    def jobs_of(self, owner: str) -> list[Job]:
        """Every job of ``owner`` still held by the pool, oldest first."""
        with self._lock:
            return [j for j in self._jobs.values() if j.owner == owner]

    def stop_owner(self, owner: str) -> int:
        """Stop every active job of ``owner``; returns how many were asked to stop."""
        jobs = [j for j in self.jobs_of(owner) if j.active]
        for job in jobs:
            job.stop()
        return len(jobs)

    def touch(self, owner: str) -> None:
        """Heartbeat: ``owner``'s session is alive (the UI calls this while it polls)."""
        with self._lock:
            self._seen[owner] = time.monotonic()

    def expected_wait(self, job: Job) -> float | None:
        """Seconds until a queued ``job`` is likely to start (``None`` if not queued or nothing to go by).

        Its queue position times the mean duration of the latest finished runs,
        divided by the number of parallel slots.  Before any run has finished
        (a class's first minute), the running runs' projected durations stand
        in: elapsed seconds per epoch done times their epochs.
        """
        position = job.queue_position
        with self._lock:
            durations = list(self._durations) or [
                d for d in (_projected_seconds(j) for j in self._running) if d is not None]
        if position is None or not durations:
            return None
        return position * (sum(durations) / len(durations)) / self.max_running

    def stats(self) -> dict[str, int]:
        """Counts of running and queued jobs and the cap (for a status line)."""
        with self._lock:
            return {"running": len(self._running), "queued": len(self._queue), "max_running": self.max_running}

    def reap(self, now: float | None = None) -> int:
        """Stop jobs of owners gone for ``heartbeat_timeout`` s; forget old finished jobs.

        An owner that ``alive`` reports connected counts as seen now, whether or
        not it polled; one reported disconnected (or unknown) is judged by the
        last :meth:`touch`.

        Returns:
            the number of jobs asked to stop.
        """
        now = time.monotonic() if now is None else now
        stopped = 0
        with self._lock:
            jobs = list(self._jobs.values())
        if self._alive is not None:
            for owner in {j.owner for j in jobs if j.active}:
                try:
                    connected = self._alive(owner)
                except Exception:  # noqa: BLE001 - an unanswerable question: fall back to the heartbeat
                    log.exception("liveness check of owner %s failed", owner)
                    connected = None
                if connected:
                    with self._lock:
                        self._seen[owner] = max(now, self._seen.get(owner, now))
        with self._lock:
            seen = dict(self._seen)
        if self.heartbeat_timeout is not None:
            for job in jobs:
                last = seen.get(job.owner, job.submitted_at)
                if job.active and not job.stop_requested and now - last > self.heartbeat_timeout:
                    log.warning("stopping job %s: owner %s gone for %.0f s", job.id, job.owner, now - last)
                    job.stop()
                    stopped += 1
        with self._lock:
            for job in jobs:
                if job.finished_at is not None and now - job.finished_at > self.retain_s:
                    self._jobs.pop(job.id, None)
            live = {j.owner for j in self._jobs.values()}
            for owner in [o for o in self._seen if o not in live]:
                del self._seen[owner]
            users = {user_of(o) for o in live}
            for user in [u for u in self._last_start if u not in users]:
                del self._last_start[user]
        return stopped

    def shutdown(self, timeout: float = 10.0) -> None:
        """Stop every job, end the reaper and wait for the workers (tests, server exit)."""
        self._closed.set()
        with self._lock:
            jobs = list(self._jobs.values())
        for job in jobs:
            job.stop()
        deadline = time.monotonic() + timeout
        for t in list(self._threads) + ([self._reaper] if self._reaper else []):
            t.join(max(0.0, deadline - time.monotonic()))
        for worker in self._workers:
            worker.request_exit()
        for worker in self._workers:
            worker.close(timeout=max(0.5, deadline - time.monotonic()))

    # ------------------------------------------------------------- internals
    def _trace(self) -> None:
        """One log line with every active job's state (``ENSEMBLE_POOL_TRACE=1``, for load debugging)."""
        now = time.monotonic()
        with self._lock:
            jobs = [j for j in self._jobs.values() if j.active]
            seen = dict(self._seen)
            head = f"running {len(self._running)} queued {len(self._queue)} idle workers {len(self._idle)}"
        parts = [f"{j.id[:6]}:{j.status}:e{j._epoch}:seen{now - seen.get(j.owner, j.submitted_at):.0f}s" for j in jobs]
        log.warning("pool trace: %s | %s", head, " ".join(parts))

    def _retry_after_locked(self) -> float:
        """Seconds until the queue is likely to have room: one run's mean duration over the slots."""
        durations = list(self._durations) or [
            d for d in (_projected_seconds(j) for j in self._running) if d is not None]
        mean = sum(durations) / len(durations) if durations else 30.0
        return max(5.0, mean / self.max_running)

    def _order_locked(self) -> list[Job]:
        """The queued jobs in the order they will start, if nothing running ends first.

        Fair by user: each next slot goes to the queued job whose user has the
        fewest running jobs, then whose user started a job least recently (never
        first), then the oldest.
        """
        running: dict[str, int] = {}
        for job in self._running:
            user = user_of(job.owner)
            running[user] = running.get(user, 0) + 1
        served = dict(self._last_start)
        waiting = list(self._queue)  # oldest first
        order: list[Job] = []
        clock = max(served.values(), default=0.0)
        while waiting:
            def key(i: int) -> tuple[int, float, int]:
                user = user_of(waiting[i].owner)
                return running.get(user, 0), served.get(user, float("-inf")), i

            job = waiting.pop(min(range(len(waiting)), key=key))
            order.append(job)
            user = user_of(job.owner)
            running[user] = running.get(user, 0) + 1
            clock += 1.0
            served[user] = clock
        return order

    def _position(self, job: Job) -> int | None:
        with self._lock:
            if job not in self._queue:
                return None
            for i, queued in enumerate(self._order_locked()):
                if queued is job:
                    return i + 1
        return None

    def _cancel_if_queued(self, job: Job) -> None:
        with self._lock:
            cancelled = job in self._queue
            if cancelled:
                self._queue.remove(job)
                job.status = "stopped"
                job.finished_at = time.monotonic()
        if cancelled:
            job._notify()

    def _slot_locked(self, kind: str) -> Any:
        """An idle worker of ``kind``, ``True`` for a free thread slot, else ``None``."""
        if kind == "thread":
            busy = sum(1 for j in self._running if j.executor == "thread")
            return True if busy < self.max_running else None
        return next((w for w in self._idle if w.kind == kind), None)

    def _dispatch_locked(self) -> None:
        """Start queued jobs: each free worker takes the first job in the fair order that asks for its kind."""
        while self._queue:
            job, slot = None, None
            for queued in self._order_locked():
                slot = self._slot_locked(queued.executor)
                if slot is not None:
                    job = queued
                    break
            if job is None:
                return
            self._queue.remove(job)
            self._last_start[user_of(job.owner)] = max(self._last_start.values(), default=0.0) + 1.0
            job.status = "running"
            job.started_at = time.monotonic()
            self._running.add(job)
            worker = None if slot is True else slot
            if worker is not None:
                self._idle.remove(worker)
            thread = threading.Thread(target=self._work, args=(job, worker), name=f"job-{job.id}", daemon=True)
            self._threads = [t for t in self._threads if t.is_alive()] + [thread]
            thread.start()

    def _work(self, job: Job, worker: Any) -> None:
        from . import training

        job._notify()  # started
        payload: Any = list(job.configs) if job.configs is not None else job.config
        try:
            if worker is not None:
                run = worker.run(job.id, payload, job.dataset, job._on_event, job._stop.is_set,
                                 preview_x=job.preview_x, preview_every=job.preview_every,
                                 preview_min_s=job.preview_min_s, pace_s=getattr(job, "pace_s", 0.0),
                                 hurry=lambda: self.stats()["queued"] > 0)  # paced runs stop waiting for a queue
            elif job.configs is not None:
                run = training.train_lanes(payload, job.dataset, lambda lane, e: job._on_event((lane, e)),
                                           job._stop.is_set, preview_x=job.preview_x,
                                           preview_every=job.preview_every, preview_min_s=job.preview_min_s)
            else:
                train_fn = self._train_fn or training.train
                run = train_fn(job.config, job.dataset, job._on_event, job._stop.is_set,
                               preview_x=job.preview_x, preview_every=job.preview_every,
                               preview_min_s=job.preview_min_s)
            job.result = run
            if job.configs is not None and all(lane.run is None for lane in run):  # every lane failed
                job.error = next((str(lane.error) for lane in run if lane.error), GENERIC_FAILURE)
                job.status = "failed"
            elif job.configs is not None:
                stopped = any(lane.run is not None and lane.run.stopped for lane in run)
                job.status = "stopped" if (stopped or job.stop_requested) else "done"
            else:
                job.status = "stopped" if (getattr(run, "stopped", False) or job.stop_requested) else "done"
        except (training.TrainingError, DataError, ConfigError, LimitError, WorkerDied) as exc:
            job.error = str(exc) or type(exc).__name__
            job.status = "failed"
        except WorkerFailure as exc:  # an unexpected exception inside the worker process
            log.error("job %s (owner %s) failed in its worker process:\n%s", job.id, job.owner, exc)
            job.error = GENERIC_FAILURE
            job.status = "failed"
        except Exception:  # noqa: BLE001 - never let a traceback reach a user
            log.exception("job %s (owner %s) failed", job.id, job.owner)
            job.error = GENERIC_FAILURE
            job.status = "failed"
        finally:
            job.finished_at = time.monotonic()
            with self._lock:
                if job.status == "done" and job.started_at is not None:
                    self._durations.append(job.finished_at - job.started_at)
                self._running.discard(job)
                if worker is not None:
                    self._idle.append(worker)
                if not self._closed.is_set():
                    self._dispatch_locked()
            job._notify()  # ended

    def _reap_loop(self, interval: float) -> None:
        trace = bool(os.environ.get("ENSEMBLE_POOL_TRACE"))
        while not self._closed.wait(interval):
            try:
                if trace:
                    self._trace()
                self.reap()
            except Exception:  # noqa: BLE001 - the reaper must survive anything
                log.exception("job reaper sweep failed")
