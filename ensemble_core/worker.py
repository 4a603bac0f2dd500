"""Training in a long-lived worker *process*, so a busy server cannot starve it.

The engine issues many small torch ops, each releasing and re-acquiring the
GIL.  Inside the Streamlit server any other CPU-busy Python thread (script
reruns, Plotly figures) makes every re-acquire wait for the GIL switch
interval, so a training thread there runs many times slower than alone
(numbers in ``docs/decisions.md``).  A :class:`ProcessWorker` is one persistent child process (``spawn`` context:
never fork a threaded server) with its own interpreter and GIL.  It imports
torch and :mod:`ensemble_core.training` once, when it starts, and then trains
one job at a time:

* parent -> child: ``(job_id, config, dataset, preview_x, preview_every, preview_min_s, pace_s)``
  (the dataset without its ``true_fn``/``noise_fn`` callables, which may not
  pickle and which training does not use), or ``None`` to exit.  ``config`` is a
  :class:`~ensemble_core.config.RunConfig`, or a *list* of them for a group job:
  the lanes of one stacked program (:func:`ensemble_core.training.train_lanes`);
* child -> parent: ``("events", job_id, [event, ...])``: the engine's events in order, a batch
  every :data:`BATCH_S` seconds (see :class:`_Batcher`); a group job's events are
  ``(lane, event)`` pairs.  Then
  ``("done", job_id, run)`` (a group: the list of :class:`~ensemble_core.training.LaneResult`)
  or ``("error", job_id, kind, message)`` where
  ``kind`` is ``"user"`` (a TrainingError/DataError/ConfigError message for
  the user) or ``"internal"`` (a traceback for the log).

Stop is a per-worker :class:`multiprocessing.Event`, cleared before each job
and polled by the engine between batches.

The watchable pace (``pace_s > 0``, see :class:`_Pacer`) is made here: the
child waits between epochs, on the stop event (no CPU), so that epoch ``e`` of
``n`` ends no earlier than ``e / n x pace_s`` seconds after the start.  The
engine computes exactly what it computes at full speed, so the result is the
same bit for bit.  The waits are not training: the run's ``seconds`` and its
``Done`` event exclude them (``Run.waited`` holds them), and they end at once
when the job is stopped or when the parent says others are waiting (``hurry``).
The child slims each preview before it sends it and moves the previews into the
run's replay (:func:`ensemble_core.run.record_replay`) before it returns it.

Messages are pickled with the standard :mod:`pickle` (``send_bytes`` /
``recv_bytes``).  This is internal IPC between our own processes, never user
files.  Plain pickle (instead of ``Connection.send``) also keeps torch's
shared-memory tensor reductions out of the way: the returned
:class:`~ensemble_core.run.Run` is copied in full.

This module never imports Streamlit.
"""

from __future__ import annotations

import atexit
import contextlib
import dataclasses
import logging
import multiprocessing as mp
import pickle
import signal
import sys
import threading
import time
import traceback
import types
import weakref
from collections.abc import Callable, Iterator
from multiprocessing.connection import wait
from typing import Any

log = logging.getLogger(__name__)

__all__ = ["ProcessWorker", "WorkerDied", "WorkerFailure", "strip_callables", "train_any"]

#: Seconds between checks of the parent's stop flag while a job trains.
POLL_S = 0.05
#: Seconds the child collects engine events before it sends them as one message.
BATCH_S = 0.05

#: What a user sees when the worker process died under their run (crash, out of memory, killed).
WORKER_DIED = (
    "Training stopped because the training process ended unexpectedly (it may have run out of "
    "memory or been stopped by the server). Try again, or choose a smaller run."
)
#: What a user sees when their run was handed to a worker that had closed (the server is exiting).
WORKER_CLOSED = "Training did not start: the server is shutting down. Try again once it is back."


class WorkerDied(RuntimeError):
    """The worker process ended while it trained a job (its message is for users)."""


class WorkerFailure(RuntimeError):
    """Training raised an unexpected exception in the worker; the message is its traceback (for the log)."""


def strip_callables(dataset: Any) -> Any:
    """The dataset without ``true_fn``/``noise_fn`` (plotting helpers that may not pickle)."""
    if getattr(dataset, "true_fn", None) is None and getattr(dataset, "noise_fn", None) is None:
        return dataset
    return dataclasses.replace(dataset, true_fn=None, noise_fn=None)


def _dumps(obj: Any) -> bytes:
    return pickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL)


# ------------------------------------------------------------------ the child
class _Batcher:
    """The child's ``on_event``: sends the engine's events to the parent in batches, in order.

    Epoch events go out at most every :data:`BATCH_S` seconds; the first
    event, and any other kind (a preview, a snapshot, a diverged member), go at
    once with whatever is pending, so a slow epoch after them cannot hold them
    back.  :meth:`flush` sends the rest before the result.  Batching keeps the
    server's reader thread from taking the GIL once per epoch, and the child
    from blocking in ``send`` behind a slow reader (``docs/decisions.md``).
    """

    def __init__(self, conn: Any, job_id: str, every: float = BATCH_S,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._conn, self._job_id, self._every, self._clock = conn, job_id, every, clock
        self._pending: list[Any] = []
        self._sent_at = -float("inf")

    def __call__(self, event: Any) -> None:
        self._pending.append(event)
        inner = event[1] if isinstance(event, tuple) else event  # a group job's (lane, event)
        if getattr(inner, "kind", "epoch") != "epoch" or self._clock() - self._sent_at >= self._every:
            self.flush()

    def flush(self) -> None:
        """Send the events collected so far (if any)."""
        if self._pending:
            self._conn.send_bytes(_dumps(("events", self._job_id, self._pending)))
            self._pending = []
            self._sent_at = self._clock()


class _Pacer:
    """Spreads a run over ``seconds`` by waiting between epochs: the child's ``should_stop`` and ``on_event``.

    :meth:`event` forwards each event to ``forward`` (a slimmed copy of a
    preview) and notes an epoch's end; the engine polls :meth:`should_stop`
    before every optimiser step, so the first poll after an epoch ended (all
    of that epoch's events sent) waits until ``start + seconds x epoch /
    n_epochs``, sleeping on ``stop`` (so a Stop ends the wait at once) and
    ending early when ``hurry`` is set.  ``seconds == 0`` never waits.  The
    ``Done`` event's seconds exclude the time waited (:attr:`waited`).
    """

    def __init__(self, forward: Callable[[Any], None], flush: Callable[[], None], stop: Any, hurry: Any,
                 seconds: float, n_epochs: int, clock: Callable[[], float] = time.monotonic) -> None:
        self._forward, self._flush, self._stop, self._hurry = forward, flush, stop, hurry
        self._seconds, self._n, self._clock = float(seconds), max(1, int(n_epochs)), clock
        self._start = clock()
        self._ended: int | None = None
        self.waited = 0.0

    def event(self, event: Any) -> None:
        """The engine's ``on_event``."""
        self._forward(self._prepare(event))

    def lane_event(self, lane: int, event: Any) -> None:
        """:func:`~ensemble_core.training.train_lanes`'s ``on_event``: forwards ``(lane, event)``."""
        self._forward((int(lane), self._prepare(event)))

    def _prepare(self, event: Any) -> Any:
        """Note an epoch's end; slim a preview; take the waits out of a Done's seconds."""
        from .run import slim_prediction

        kind = getattr(event, "kind", None)
        if kind == "epoch":
            self._ended = int(event.epoch)
        elif kind == "preview":
            event = dataclasses.replace(event, prediction=slim_prediction(event.prediction))
        elif kind == "done" and self.waited:
            event = dataclasses.replace(event, seconds=max(0.0, event.seconds - self.waited))
        return event

    def should_stop(self) -> bool:
        """The engine's ``should_stop``: waits first when an epoch just ended and the pace asks for it."""
        if self._ended is not None and self._seconds > 0:
            target = self._start + self._seconds * self._ended / self._n
            self._ended = None
            if target - self._clock() > 0.002:
                self._flush()  # the viewer gets this epoch's events before the wait
                t0 = self._clock()
                while not self._stop.is_set() and not self._hurry.is_set():
                    left = target - self._clock()
                    if left <= 0:
                        break
                    self._stop.wait(min(left, POLL_S))
                self.waited += self._clock() - t0
        return self._stop.is_set()


def _child_main(conn: Any, stop: Any, torch_threads: int | None, hurry: Any = None) -> None:
    """Body of the worker process: warm up, then train jobs until told to exit."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C of the server: the parent ends us
    hurry = hurry if hurry is not None else threading.Event()
    import torch

    if torch_threads:
        torch.set_num_threads(torch_threads)
    from .config import ConfigError
    from .data import DataError
    from .training import TrainingError, train

    _warm_up(train)
    while True:
        try:
            msg = pickle.loads(conn.recv_bytes())
        except (EOFError, OSError):
            return  # the parent went away
        if msg is None:
            return
        job_id, config, dataset, preview_x, preview_every, preview_min_s, pace_s = msg
        on_event = _Batcher(conn, job_id)
        pacer = _Pacer(on_event, on_event.flush, stop, hurry, pace_s, _epochs_of(config))
        try:
            run = train_any(config, dataset, pacer, preview_x=preview_x, preview_every=preview_every,
                            preview_min_s=preview_min_s)
            reply = _dumps(("done", job_id, run))
        except (TrainingError, DataError, ConfigError) as exc:
            reply = _dumps(("error", job_id, "user", str(exc) or type(exc).__name__))
        except Exception:  # noqa: BLE001 - reported to the parent, which logs it
            reply = _dumps(("error", job_id, "internal", traceback.format_exc()))
        try:
            on_event.flush()  # every event before the result
            conn.send_bytes(reply)
        except (EOFError, OSError):
            return


def _epochs_of(config: Any) -> int:
    """Planned epochs of a job's config, or of a group's (its lanes share them)."""
    return int((config[0] if isinstance(config, list | tuple) else config).optim.epochs)


def train_any(config: Any, dataset: Any, pacer: _Pacer, *, preview_x: Any = None, preview_every: int = 0,
              preview_min_s: float = 0.0) -> Any:
    """Train one job's payload through ``pacer`` and finish it as the parent gets it.

    ``config`` is a :class:`~ensemble_core.config.RunConfig` (``train``; returns its
    :class:`~ensemble_core.run.Run`) or a list of them (a group: ``train_lanes``; events go out as
    ``(lane, event)``; returns the list of :class:`~ensemble_core.training.LaneResult`).  Shared by
    the process workers and the Ray actors.
    """
    from .training import train, train_lanes

    if isinstance(config, list | tuple):
        lanes = train_lanes(list(config), dataset, pacer.lane_event, pacer.should_stop, preview_x=preview_x,
                            preview_every=preview_every, preview_min_s=preview_min_s)
        for lane in lanes:
            if lane.run is not None:
                _finish_run(lane.run, preview_x, pacer.waited)
        return lanes
    run = train(config, dataset, pacer.event, pacer.should_stop, preview_x=preview_x,
                preview_every=preview_every, preview_min_s=preview_min_s)
    _finish_run(run, preview_x, pacer.waited)
    return run


def _finish_run(run: Any, preview_x: Any, waited: float) -> None:
    """The run as the parent gets it: its previews in its replay, the waits out of its seconds."""
    from .run import Done, record_replay

    record_replay(run, preview_x)
    if waited:
        run.waited = waited
        run.seconds = max(0.0, run.seconds - waited)
        run.history = [dataclasses.replace(e, seconds=run.seconds) if isinstance(e, Done) else e
                       for e in run.history]


def _warm_up(train: Callable[..., Any]) -> None:
    """Train a tiny run once: torch's first calls cost seconds, which a user's first job should not pay."""
    try:
        import numpy as np

        from .config import RunConfig
        from .data import Dataset

        x = np.linspace(-1.0, 1.0, 16)[:, None]
        y = x[:, 0] ** 3
        ds = Dataset(name="warm-up", task="regression", feature_names=["x"], target_name="y",
                     x_train=x, y_train=y, x_val=x[:4], y_val=y[:4], x_test=x[:4], y_test=y[:4],
                     x_mean=x.mean(0), x_std=x.std(0), y_mean=float(y.mean()), y_std=float(y.std()))
        cfg = RunConfig().replace(**{"optim.epochs": 2, "strategy.members": 2})
        train(cfg, ds, preview_x=x, preview_every=1)
    except Exception:  # noqa: BLE001 - only an optimisation
        pass


# ----------------------------------------------------------------- the parent
_live: weakref.WeakSet[ProcessWorker] = weakref.WeakSet()


@atexit.register
def _close_all() -> None:
    workers = list(_live)
    for worker in workers:
        worker.request_exit()
    for worker in workers:
        worker.close(timeout=1.0)


_MAIN_LOCK = threading.Lock()


@contextlib.contextmanager
def _neutral_main() -> Iterator[None]:
    """Start a spawned child without re-running the parent's ``__main__`` in it.

    "spawn" re-imports the parent's main module in the child.  Inside a
    Streamlit server (and under AppTest) ``__main__`` is the app script being
    run, so the child would execute the dashboard in bare mode.  While the child
    is being started, ``__main__`` is a bare module with no file, so the child
    imports only what :func:`_child_main` needs.
    """
    with _MAIN_LOCK:
        saved = sys.modules.get("__main__")
        sys.modules["__main__"] = types.ModuleType("__main__")
        try:
            yield
        finally:
            if saved is not None:
                sys.modules["__main__"] = saved


class ProcessWorker:
    """One persistent training process.  :meth:`run` one job at a time (from one thread).

    Args:
        torch_threads: intra-op threads of the child's torch (``None``/0: torch's default).
        name: process name (for ``ps`` and logs).
    """

    #: The executor kind this worker serves (the pool keeps worker sets per kind).
    kind = "process"

    def __init__(self, torch_threads: int | None = 1, name: str = "ensemble-worker") -> None:
        self._ctx = mp.get_context("spawn")
        self._threads = torch_threads
        self._name = name
        self._lock = threading.Lock()
        self._closed = False
        self._exit_requested = False
        self._stop = self._ctx.Event()
        self._hurry = self._ctx.Event()
        self._proc: Any = None
        self._conn: Any = None
        self._job: str | None = None  # the job training now (for logs and tests)
        self._start()
        _live.add(self)

    def _start(self) -> None:
        parent, child = self._ctx.Pipe(duplex=True)
        proc = self._ctx.Process(target=_child_main, args=(child, self._stop, self._threads, self._hurry),
                                 name=self._name, daemon=True)
        with _neutral_main():
            proc.start()
        child.close()
        self._proc, self._conn = proc, parent

    @property
    def pid(self) -> int | None:
        """The child's process id."""
        return self._proc.pid if self._proc is not None else None

    def is_alive(self) -> bool:
        """Whether the child process is running."""
        return self._proc is not None and self._proc.is_alive()

    def restart(self) -> None:
        """Replace a dead (or wedged) child with a fresh one."""
        with self._lock:
            if self._closed:
                return
            self._kill()
            self._exit_requested = False
            self._stop = self._ctx.Event()
            self._hurry = self._ctx.Event()
            self._start()

    def run(self, job_id: str, config: Any, dataset: Any, on_event: Callable[[Any], None],
            should_stop: Callable[[], bool], *, preview_x: Any = None, preview_every: int = 0,
            preview_min_s: float = 0.0, pace_s: float = 0.0, hurry: Callable[[], bool] | None = None) -> Any:
        """Train one job in the child; forward its events; return its :class:`Run`.

        ``config`` may be a list of configs: a group job, trained as one stacked program
        (:func:`ensemble_core.training.train_lanes`); ``on_event`` then receives ``(lane, event)``
        pairs and the result is the list of :class:`~ensemble_core.training.LaneResult`.

        Blocks the calling thread (waiting on the pipe releases the GIL).
        ``should_stop`` is polled every :data:`POLL_S` seconds and forwarded to the child.
        ``pace_s > 0`` spreads the run over that many seconds by waiting between epochs
        (:class:`_Pacer`; same result bit for bit); ``hurry`` is polled like ``should_stop``
        and, once true, ends the waits (e.g. when other runs wait for a worker).

        Raises:
            TrainingError: the child's user-facing error (TrainingError, DataError or
                ConfigError there; the message is for the user).
            WorkerFailure: an unexpected exception in the child (message: its traceback).
            WorkerDied: the child process ended; it is restarted before this is raised.  Also
                when the worker was closed (the server is exiting): :data:`WORKER_CLOSED`.
        """
        if not self.is_alive():
            self.restart()
        conn, proc, stop, hurried = self._conn, self._proc, self._stop, self._hurry
        if conn is None:  # closed: the server is exiting, nothing trains here any more
            raise WorkerDied(WORKER_CLOSED)
        stop.clear()
        hurried.clear()
        self._job = job_id
        try:
            return self._run(job_id, conn, proc, stop, hurried, config, dataset, on_event, should_stop,
                             preview_x, preview_every, preview_min_s, pace_s, hurry)
        finally:
            self._job = None

    def _run(self, job_id: str, conn: Any, proc: Any, stop: Any, hurried: Any, config: Any, dataset: Any,
             on_event: Callable[[Any], None], should_stop: Callable[[], bool], preview_x: Any,
             preview_every: int, preview_min_s: float, pace_s: float, hurry: Callable[[], bool] | None) -> Any:
        """:meth:`run`'s body: send the job, forward its messages until its result."""
        try:
            payload = list(config) if isinstance(config, list | tuple) else config
            conn.send_bytes(_dumps((job_id, payload, strip_callables(dataset), preview_x, preview_every, preview_min_s,
                                    float(pace_s))))
        except (OSError, EOFError) as exc:
            self.restart()
            raise WorkerDied(WORKER_DIED) from exc
        stop_sent = False
        while True:
            if not stop_sent and should_stop():
                stop.set()
                stop_sent = True
            if pace_s and hurry is not None and not hurried.is_set() and hurry():
                hurried.set()
            try:
                ready = wait([conn, proc.sentinel], timeout=POLL_S)
                if not ready:
                    continue
                if conn not in ready and not conn.poll():
                    self._died(job_id)
                msg = pickle.loads(conn.recv_bytes())
            except (EOFError, OSError, ValueError):  # pipe closed: the child (or close()) ended it
                self._died(job_id)
            if msg[1] != job_id:  # a stale message (cannot happen: one job at a time)
                continue
            if msg[0] == "events":
                for event in msg[2]:
                    on_event(event)
            elif msg[0] == "done":
                return msg[2]
            else:
                _, _, kind, text = msg
                if kind == "user":
                    from .training import TrainingError

                    raise TrainingError(text)
                raise WorkerFailure(text)

    def _died(self, job_id: str) -> None:
        code = self._proc.exitcode if self._proc is not None else None
        if not self._closed:
            log.error("training worker %s (pid %s) died during job %s (exit code %s); restarting",
                      self._name, self.pid, job_id, code)
            self.restart()
        raise WorkerDied(WORKER_DIED)

    def _kill(self) -> None:
        proc, conn = self._proc, self._conn
        if conn is not None:
            conn.close()
        if proc is not None:
            if proc.is_alive():
                proc.terminate()
                proc.join(2.0)
            if proc.is_alive():
                proc.kill()
                proc.join(2.0)
            if not proc.is_alive():
                proc.close()

    def request_exit(self) -> None:
        """Ask the child to end its job and exit (returns at once; :meth:`close` waits)."""
        with self._lock:
            if self._closed or self._exit_requested or self._proc is None:
                return
            self._exit_requested = True
            self._stop.set()  # ends a job still training
            try:
                self._conn.send_bytes(_dumps(None))
            except (OSError, EOFError, ValueError):
                pass

    def close(self, timeout: float = 2.0) -> None:
        """Ask the child to exit, terminate it if it does not; idempotent."""
        self.request_exit()
        with self._lock:
            if self._closed:
                return
            self._closed = True
            proc = self._proc
            if proc is not None and proc.is_alive():
                proc.join(min(timeout, 1.0))  # a child still warming up is simply terminated
            self._kill()
            self._proc = self._conn = None
        _live.discard(self)

    def __repr__(self) -> str:
        return f"ProcessWorker(name={self._name!r}, pid={self.pid}, alive={self.is_alive()})"
