"""Training on Ray: the pool's executor beyond one machine (``JobPool(executor="ray")``).

A :class:`RayWorker` has the interface of :class:`~ensemble_core.worker.ProcessWorker`
(``run``, ``restart``, ``request_exit``, ``close``, ``is_alive``, ``pid``), so the
pool's queue, limits, quotas and fairness are unchanged: the pool still decides
which job trains next and hands it to an idle worker.  Each worker is one Ray
*actor* holding one CPU of the cluster, so ``max_running`` actors spread over
every node of a cluster (a sweep's trials fan out over it).

* **Starting Ray**: :func:`start_ray` joins the cluster ``RAY_ADDRESS`` names
  (``ray start --head`` on one machine, ``ray start --address=HEAD:6379`` on the
  others), or starts a local Ray with ``num_cpus`` CPUs and no dashboard, whose
  workers run at the server's priority (Ray's own default is nice 15; see
  :data:`WORKER_NICENESS_ENV`).
* **Events**: the actor is threaded (``max_concurrency`` > 1).  One thread trains
  (the engine, the :class:`~ensemble_core.worker._Pacer` of the process workers,
  previews slimmed the same way) and appends the engine's events to a list; the
  parent polls :meth:`_TrainActor.drain` every :data:`POLL_S` seconds and
  forwards them in order, then takes the result.
* **Stop**: the parent's poll sees the job's stop flag and calls
  :meth:`_TrainActor.stop` for that job id; the engine checks it between
  batches, so a Stop lands within ``POLL_S`` + one batch (well under a second).
* **A killed worker** (its process killed, its node lost) raises
  :class:`~ensemble_core.worker.WorkerDied` with :data:`RAY_WORKER_DIED` for its
  own job only; the worker is replaced by a fresh actor for the next job.
* **Same seeds, same results**: the actor trains with the same engine and torch
  thread count as a process worker, so a run is the same bit for bit.

Ray is optional (``requirements-ray.txt``); this module imports it lazily and
:func:`ray_available` says whether it can.  Never imports Streamlit.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .worker import WORKER_CLOSED, WorkerDied, WorkerFailure, strip_callables

log = logging.getLogger(__name__)

__all__ = ["RAY_WORKER_DIED", "RayWorker", "cluster_cpus", "ray_available", "start_ray"]

#: Seconds between the parent's polls of a training actor (events, stop, hurry).
POLL_S = 0.1
#: What a user sees when the Ray worker training their run died (killed, out of memory, node lost).
RAY_WORKER_DIED = (
    "Training stopped because the Ray worker running it ended unexpectedly (it may have run out of "
    "memory, been stopped, or its machine left the cluster). Your other runs are not affected; try again."
)

#: Ray's setting of its workers' niceness (its default is 15); a local Ray gets 0 unless it is set.
WORKER_NICENESS_ENV = "RAY_worker_niceness"

_ROOT = Path(__file__).resolve().parent.parent
_START_LOCK = threading.Lock()


def ray_available() -> bool:
    """Whether Ray can be imported here (``pip install -r requirements-ray.txt``)."""
    try:
        import ray  # noqa: F401
    except ImportError:
        return False
    return True


def start_ray(num_cpus: int | None = None) -> None:
    """Connect to Ray once per process: the cluster at ``RAY_ADDRESS``, else a local Ray.

    Args:
        num_cpus: CPUs of a *local* Ray (default: this machine's usable cores); ignored
            when joining a cluster, whose nodes say what they have.

    Raises:
        RuntimeError: Ray is not installed, or the cluster cannot be reached (the message says so).
    """
    if not ray_available():
        raise RuntimeError("the Ray executor needs Ray: pip install -r requirements-ray.txt")
    import ray

    with _START_LOCK:
        if ray.is_initialized():
            return
        address = os.environ.get("RAY_ADDRESS") or None
        path = os.pathsep.join(p for p in (str(_ROOT), os.environ.get("PYTHONPATH", "")) if p)
        kwargs: dict[str, Any] = {"include_dashboard": False, "log_to_driver": False,
                                  "logging_level": logging.WARNING}
        if address:  # a cluster: ship this package to its workers (they need torch & numpy installed)
            def init() -> None:
                ray.init(address=address, runtime_env={"py_modules": [str(_ROOT / "ensemble_core")]}, **kwargs)
        else:
            from .jobs import default_max_running

            # Ray starts its workers at nice 15 (its raylet's ``worker_niceness``).  On a server that also
            # runs the dashboard, the actors then lose the CPU to it and trained a classroom's runs 3x slower
            # than alone while the cores were not even full (benchmarks/load_classroom.py --executor ray).
            # A local Ray's workers train at the server's own priority, like the process executor's.
            os.environ.setdefault(WORKER_NICENESS_ENV, "0")

            def init() -> None:
                ray.init(num_cpus=int(num_cpus or default_max_running()),
                         runtime_env={"env_vars": {"PYTHONPATH": path}}, **kwargs)
        try:
            _on_lasting_thread(init)
        except ConnectionError as exc:
            raise RuntimeError(f"cannot reach the Ray cluster at RAY_ADDRESS={address!r}: {exc}") from None


def _on_lasting_thread(init: Callable[[], None]) -> None:
    """Call ``init`` (``ray.init``) on a thread that lives as long as the process; re-raise its exception.

    A local Ray's processes (GCS, raylet, workers) are started with
    ``PR_SET_PDEATHSIG``: Linux kills them when the *thread* that forked them
    exits.  The dashboard starts Ray lazily from a Streamlit script thread,
    which ends right after, so ``ray.init`` there lost the whole local Ray
    seconds later (found by ``benchmarks/load_classroom.py --executor ray``).
    The main thread lives as long as the process, so it calls ``init`` itself;
    any other caller hands it to a daemon "ray-keeper" thread that then waits
    forever.
    """
    if threading.current_thread() is threading.main_thread():
        init()
        return
    done, failure = threading.Event(), []

    def keeper() -> None:
        try:
            init()
        except BaseException as exc:  # noqa: BLE001 - handed back to the caller below
            failure.append(exc)
        finally:
            done.set()
        threading.Event().wait()  # never returns: Ray's local processes live while this thread does

    threading.Thread(target=keeper, name="ray-keeper", daemon=True).start()
    done.wait()
    if failure:
        raise failure[0]


def cluster_cpus() -> int:
    """CPUs of the Ray cluster this process is connected to (at least 1); starts Ray if needed."""
    start_ray()
    import ray

    return max(1, int(ray.cluster_resources().get("CPU", 1)))


class _TrainActor:
    """The body of a Ray training actor (threaded: one thread trains, others drain and stop)."""

    def __init__(self, torch_threads: int | None) -> None:
        import torch

        if torch_threads:
            torch.set_num_threads(torch_threads)
        from .training import train
        from .worker import _warm_up

        self._lock = threading.Lock()
        self._events: list[Any] = []
        self._stopped: set[str] = set()
        self._hurried: set[str] = set()
        _warm_up(train)

    def pid(self) -> int:
        """The actor's process id (tests kill it)."""
        return os.getpid()

    def train(self, job_id: str, config: Any, dataset: Any, preview_x: Any, preview_every: int,
              preview_min_s: float, pace_s: float) -> tuple[str, Any]:
        """Train one job; ``("done", run)`` or ``("error", "user"|"internal", text)``.

        ``config`` may be a list of configs (a group job): events are then ``(lane, event)``
        pairs and ``run`` is the list of :class:`~ensemble_core.training.LaneResult`.
        """
        import traceback

        from . import worker
        from .config import ConfigError
        from .data import DataError
        from .training import TrainingError

        stop, hurry = _Flag(self, self._stopped, job_id), _Flag(self, self._hurried, job_id)
        # the process worker's pacing and preview slimming; a list of configs is a group (train_lanes)
        pacer = worker._Pacer(self._push, lambda: None, stop, hurry, pace_s, worker._epochs_of(config))
        try:
            return ("done", worker.train_any(config, dataset, pacer, preview_x=preview_x,
                                             preview_every=preview_every, preview_min_s=preview_min_s))
        except (TrainingError, DataError, ConfigError) as exc:
            return ("error", "user", str(exc) or type(exc).__name__)
        except Exception:  # noqa: BLE001 - reported to the parent, which logs it
            return ("error", "internal", traceback.format_exc())
        finally:
            with self._lock:
                self._stopped.discard(job_id)
                self._hurried.discard(job_id)

    def _push(self, event: Any) -> None:
        with self._lock:
            self._events.append(event)

    def drain(self) -> list[Any]:
        """The events pushed since the last drain, in order."""
        with self._lock:
            out, self._events = self._events, []
        return out

    def stop(self, job_id: str) -> None:
        """Ask job ``job_id`` to stop (keyed by job, so a late call cannot stop the next job)."""
        with self._lock:
            self._stopped.add(job_id)

    def hurry(self, job_id: str) -> None:
        """End job ``job_id``'s pacing waits (others are waiting for a worker)."""
        with self._lock:
            self._hurried.add(job_id)


class _Flag:
    """A ``threading.Event``-like view of "``job_id`` is in the actor's set" for :class:`_Pacer`."""

    def __init__(self, actor: _TrainActor, members: set[str], job_id: str) -> None:
        self._actor, self._members, self._id = actor, members, job_id
        self._event = threading.Event()

    def is_set(self) -> bool:
        with self._actor._lock:
            return self._id in self._members

    def wait(self, timeout: float) -> bool:
        self._event.wait(timeout)  # never set: a plain sleep the pacer polls around
        return self.is_set()


_ACTOR_CLASS: Any = None


def _actor_class() -> Any:
    global _ACTOR_CLASS
    if _ACTOR_CLASS is None:
        import ray

        _ACTOR_CLASS = ray.remote(num_cpus=1, max_concurrency=4, max_restarts=0)(_TrainActor)
    return _ACTOR_CLASS


class RayWorker:
    """One training slot on Ray: a persistent actor holding one CPU.  :meth:`run` one job at a time.

    Args:
        torch_threads: intra-op threads of the actor's torch (``None``/0: Ray's default of 1 per CPU).
        name: a name for logs.
    """

    #: The executor kind this worker serves (the pool keeps worker sets per kind).
    kind = "ray"

    def __init__(self, torch_threads: int | None = 1, name: str = "ensemble-ray-worker") -> None:
        start_ray()
        self._threads = torch_threads
        self._name = name
        self._lock = threading.Lock()
        self._closed = False
        self._actor: Any = None
        self._job: str | None = None  # the job training now (for logs and tests)
        self._start()

    def _start(self) -> None:
        self._actor = _actor_class().remote(self._threads)

    @property
    def pid(self) -> int | None:
        """The actor's process id (waits for the actor to start), or ``None`` if it is gone."""
        import ray

        try:
            return int(ray.get(self._actor.pid.remote(), timeout=60))
        except Exception:  # noqa: BLE001 - a dead or closed actor has no pid
            return None

    def is_alive(self) -> bool:
        """Whether the actor is up (not closed, answering)."""
        return not self._closed and self.pid is not None

    def restart(self) -> None:
        """Replace the actor with a fresh one (the old one is killed if still there)."""
        import ray

        with self._lock:
            if self._closed:
                return
            old = self._actor
            self._start()
        try:
            ray.kill(old, no_restart=True)
        except Exception:  # noqa: BLE001 - already dead
            pass

    def run(self, job_id: str, config: Any, dataset: Any, on_event: Callable[[Any], None],
            should_stop: Callable[[], bool], *, preview_x: Any = None, preview_every: int = 0,
            preview_min_s: float = 0.0, pace_s: float = 0.0, hurry: Callable[[], bool] | None = None) -> Any:
        """Train one job on the actor, forwarding its events; return its :class:`~ensemble_core.run.Run`.

        Same contract as :meth:`ensemble_core.worker.ProcessWorker.run` (a list of configs is a
        group job: ``(lane, event)`` events, a list of lane results): ``should_stop`` (and
        ``hurry`` for a paced run) are polled every :data:`POLL_S` seconds.

        Raises:
            TrainingError: the engine's user-facing error (its message is for the user).
            WorkerFailure: an unexpected exception in the actor (message: its traceback).
            WorkerDied: the actor died (:data:`RAY_WORKER_DIED`; it is replaced first), or the
                worker was closed (:data:`~ensemble_core.worker.WORKER_CLOSED`).
        """
        import ray
        from ray.exceptions import RayActorError, RayTaskError

        if self._closed:
            raise WorkerDied(WORKER_CLOSED)
        actor, self._job = self._actor, job_id
        try:
            payload = list(config) if isinstance(config, list | tuple) else config
            ref = actor.train.remote(job_id, payload, strip_callables(dataset), preview_x, preview_every,
                                     preview_min_s, float(pace_s))
            stop_sent = hurried = False
            while True:
                if not stop_sent and should_stop():
                    actor.stop.remote(job_id)
                    stop_sent = True
                if pace_s and hurry is not None and not hurried and hurry():
                    actor.hurry.remote(job_id)
                    hurried = True
                ready, _ = ray.wait([ref], timeout=POLL_S)
                for event in ray.get(actor.drain.remote()):
                    on_event(event)
                if ready:
                    reply = ray.get(ref)
                    for event in ray.get(actor.drain.remote()):  # anything pushed after the last drain
                        on_event(event)
                    break
        except RayActorError:
            if self._closed:
                raise WorkerDied(WORKER_CLOSED) from None
            log.error("Ray training worker %s died during job %s; replacing it", self._name, job_id)
            self.restart()
            raise WorkerDied(RAY_WORKER_DIED) from None
        except RayTaskError as exc:  # the actor's method itself raised (a bug): the traceback is for the log
            raise WorkerFailure(str(exc)) from None
        finally:
            self._job = None
        if reply[0] == "done":
            return reply[1]
        _, kind, text = reply
        if kind == "user":
            from .training import TrainingError

            raise TrainingError(text)
        raise WorkerFailure(text)

    def request_exit(self) -> None:
        """Ask a running job to stop (returns at once; :meth:`close` ends the actor)."""
        self._closed = True

    def close(self, timeout: float = 2.0) -> None:
        """End the actor; idempotent."""
        import ray

        self._closed = True
        with self._lock:
            actor, self._actor = self._actor, None
        if actor is not None and ray.is_initialized():
            try:
                ray.kill(actor, no_restart=True)
            except Exception:  # noqa: BLE001 - already gone
                pass

    def __repr__(self) -> str:
        return f"RayWorker(name={self._name!r}, closed={self._closed})"
