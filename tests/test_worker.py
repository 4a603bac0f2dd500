"""Tests of the process executor: JobPool jobs trained in persistent worker processes.

One pool (two warm workers) is shared by the module, because starting a
worker imports torch in a fresh interpreter (seconds on a busy machine).
The last test shuts it down.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import time

import numpy as np
import pytest
import torch
from conftest import make_cubic, make_two_class

from ensemble_core.config import RunConfig
from ensemble_core.jobs import JobPool, Limits
from ensemble_core.predict import predict
from ensemble_core.training import TrainingError, train
from ensemble_core.worker import WORKER_DIED

TINY = RunConfig().replace(**{"optim.epochs": 4, "strategy.members": 2})
LONG = RunConfig().replace(**{"optim.epochs": 5000, "strategy.members": 2})
NO_LIMITS = Limits(max_work=1e15)


def wait_for(cond, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        time.sleep(0.01)


def finish(job, timeout: float = 120.0):
    wait_for(lambda: not job.active, timeout)
    return job


@pytest.fixture(scope="module")
def pool():
    p = JobPool(2, heartbeat_timeout=None, torch_threads=1, limits=NO_LIMITS, max_active_per_owner=10)
    assert p.executor == "process" and len(p._workers) == 2
    yield p
    p.shutdown()


def test_the_child_sends_events_in_timed_batches_in_order():
    import pickle
    from types import SimpleNamespace

    from ensemble_core.worker import _Batcher

    class Conn:
        def __init__(self) -> None:
            self.sent: list = []

        def send_bytes(self, data: bytes) -> None:
            self.sent.append(pickle.loads(data))

    now = [100.0]
    conn = Conn()
    batch = _Batcher(conn, "job1", every=0.05, clock=lambda: now[0])
    batch(1)  # the first event goes at once: the page sees the run start
    assert conn.sent == [("events", "job1", [1])]
    for e in (2, 3, 4):
        now[0] += 0.01
        batch(e)
    assert len(conn.sent) == 1  # collected, not sent
    now[0] += 0.03  # 0.06 s since the last message
    batch(5)
    assert conn.sent[1] == ("events", "job1", [2, 3, 4, 5])
    batch(6)
    batch.flush()
    batch.flush()  # nothing left: no empty message
    assert conn.sent[2:] == [("events", "job1", [6])]
    now[0] += 0.01
    batch(7)
    preview = SimpleNamespace(kind="preview")
    batch(preview)  # not an epoch: at once, with what is pending (a slow epoch may follow)
    assert conn.sent[3:] == [("events", "job1", [7, preview])]
    # a group job's (lane, event) pairs: epochs are batched, a lane's preview goes at once
    now[0] += 1.0
    epoch = SimpleNamespace(kind="epoch")
    batch((0, epoch))
    now[0] += 0.01
    batch((1, epoch))
    assert conn.sent[4:] == [("events", "job1", [(0, epoch)])]
    batch((1, preview))
    assert conn.sent[5:] == [("events", "job1", [(1, epoch), (1, preview)])]


def test_the_pacer_tags_a_groups_events_with_their_lane_and_waits_between_epochs():
    import threading
    from types import SimpleNamespace

    from ensemble_core.worker import _Pacer

    sent: list = []
    now = [0.0]
    stop, hurry = threading.Event(), threading.Event()
    pacer = _Pacer(sent.append, lambda: None, stop, hurry, seconds=10.0, n_epochs=10, clock=lambda: now[0])
    epoch = SimpleNamespace(kind="epoch", epoch=1)
    pacer.lane_event(0, epoch)
    pacer.lane_event(1, epoch)
    assert sent == [(0, epoch), (1, epoch)]
    hurry.set()  # others wait for a worker: the pacing wait ends at once
    assert pacer.should_stop() is False
    stop.set()
    assert pacer.should_stop() is True


def test_process_run_equals_direct_train_bit_for_bit(pool):
    ds = make_cubic()
    job = finish(pool.submit(TINY, ds, owner="a", preview_x=np.linspace(-5, 5, 7)[:, None], preview_every=2))
    assert job.status == "done", job.error
    assert job.dataset is ds and ds.true_fn is not None  # the job keeps the original data set
    direct = train(TINY, ds, preview_x=np.linspace(-5, 5, 7)[:, None], preview_every=2)
    got, want = predict(job.result, ds.x_test), predict(direct, ds.x_test)
    assert np.array_equal(got.mean, want.mean) and np.array_equal(got.total, want.total)
    for (k, a), (_, b) in zip(job.result.model.state_dict().items(), direct.model.state_dict().items()):
        assert torch.equal(a, b), k
    assert job.result.members == direct.members
    assert np.array_equal(job.result.lr_trace, direct.lr_trace)
    # the worker moves the previews from the history into the run's replay (issue 20)
    assert [e.kind for e in job.result.history] == [e.kind for e in direct.history if e.kind != "preview"]
    assert [f.epoch for f in job.result.replay] == [e.epoch for e in direct.history if e.kind == "preview"]


def test_events_arrive_in_order(pool):
    job = finish(pool.submit(TINY, make_cubic(), owner="b", preview_x=np.zeros((3, 1)), preview_every=2))
    assert job.status == "done", job.error
    events = job.events
    assert [e.epoch for e in events if e.kind == "epoch"] == [1, 2, 3, 4]
    assert events[-1].kind == "done" and not events[-1].stopped
    assert [e.kind for e in events] == ["epoch", "epoch", "preview", "epoch", "epoch", "preview", "done"]
    assert job.n_events == 7 and job.progress().epoch == 4
    # the live events keep the previews; the run keeps them in its replay, not its history (issue 20)
    assert [e.kind for e in events if e.kind != "preview"] == [e.kind for e in job.result.history]
    assert [e.epoch for e in events if e.kind == "preview"] == [f.epoch for f in job.result.replay]


def test_stop_mid_run_keeps_partial_run(pool):
    job = pool.submit(LONG, make_cubic(), owner="c")
    wait_for(lambda: job.progress().epoch >= 2)
    job.stop()
    finish(job)
    assert job.status == "stopped", job.error
    run = job.result
    assert run is not None and run.stopped and 2 <= run.epochs_done < LONG.optim.epochs
    assert job.events[-1].kind == "done" and job.events[-1].stopped
    assert np.all(np.isfinite(predict(run, make_cubic().x_test).mean))


def test_training_error_message_reaches_the_user(pool):
    bad = RunConfig().replace(**{"optim.epochs": 2, "loss.kind": "mse"})
    ds = make_two_class()  # classification with a regression loss
    with pytest.raises(TrainingError) as err:
        train(bad, ds)
    job = finish(pool.submit(bad, ds, owner="d"))
    assert job.status == "failed"
    assert job.error == str(err.value)


def test_two_jobs_in_parallel_third_queued(pool):
    jobs = [pool.submit(LONG, make_cubic(), owner=f"p{i}") for i in range(3)]
    try:
        wait_for(lambda: all(j.progress().epoch >= 1 for j in jobs[:2]))
        assert [j.status for j in jobs] == ["running", "running", "queued"]
        assert jobs[2].queue_position == 1
        assert pool.stats() == {"running": 2, "queued": 1, "max_running": 2}
    finally:
        for j in jobs:
            j.stop()
        for j in jobs:
            finish(j)
    assert [j.status for j in jobs] == ["stopped", "stopped", "stopped"]
    assert jobs[2].result is None  # cancelled while queued


def test_killed_worker_fails_the_job_and_is_restarted(pool):
    job = pool.submit(LONG, make_cubic(), owner="k")
    wait_for(lambda: job.progress().epoch >= 1)
    with pool._lock:
        busy = [w for w in pool._workers if w not in pool._idle]
    assert len(busy) == 1
    old_pid = busy[0].pid
    os.kill(old_pid, signal.SIGKILL)
    finish(job)
    assert job.status == "failed"
    assert job.error == WORKER_DIED and "Traceback" not in job.error
    assert busy[0].pid != old_pid and busy[0].is_alive()
    # the pool keeps working, on either worker
    jobs = [finish(pool.submit(TINY, make_cubic(), owner=f"k{i}")) for i in range(2)]
    assert [j.status for j in jobs] == ["done", "done"], [j.error for j in jobs]


def test_shutdown_leaves_no_child_processes(pool):
    job = pool.submit(LONG, make_cubic(), owner="s")
    wait_for(lambda: job.progress().epoch >= 1)
    pids = [w.pid for w in pool._workers]
    pool.shutdown()
    assert not job.active
    # other pools of this test process (e.g. the dashboard's cached one) may have children of their own
    assert not {c.pid for c in multiprocessing.active_children()} & set(pids)
    for pid in pids:
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)
    with pytest.raises(RuntimeError, match="shut down"):
        pool.submit(TINY, make_cubic(), owner="s2")


def test_a_closed_worker_refuses_a_job_with_a_message_not_a_traceback():
    """At server exit the workers close first; a job the pool hands one afterwards fails cleanly."""
    from ensemble_core.worker import WORKER_CLOSED, ProcessWorker, WorkerDied

    worker = ProcessWorker()
    worker.close()
    with pytest.raises(WorkerDied) as err:
        worker.run("late", TINY, make_cubic(), lambda e: None, lambda: False)
    assert str(err.value) == WORKER_CLOSED


def test_the_child_never_runs_the_parents_main_script(tmp_path, monkeypatch):
    """Inside Streamlit (and AppTest) ``__main__`` is the app script: a spawned worker must not re-run it."""
    import sys
    import types

    from ensemble_core.worker import ProcessWorker

    marker = tmp_path / "ran"
    script = tmp_path / "fake_app.py"
    script.write_text(f"open({str(marker)!r}, 'w').write('x')\n")
    fake = types.ModuleType("__main__")
    fake.__file__ = str(script)
    monkeypatch.setitem(sys.modules, "__main__", fake)
    worker = ProcessWorker()
    try:
        cfg = RunConfig().replace(**{"optim.epochs": 2})
        worker.run("job", cfg, make_cubic(), lambda e: None, lambda: False)
        assert worker.is_alive()
    finally:
        worker.close()
    assert not marker.exists(), "the worker process executed the parent's __main__ script"
    assert sys.modules["__main__"] is fake
