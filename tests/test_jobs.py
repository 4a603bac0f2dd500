"""Tests of ensemble_core.jobs: the bounded, fair, isolated training pool.

Most tests inject a controllable fake ``train`` (so they are fast and
deterministic; an injected ``train_fn`` runs in the thread executor).  The
process executor, with the real engine, is tested in ``tests/test_worker.py``.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass

import numpy as np
import pytest

from ensemble_core.config import RunConfig
from ensemble_core.data import DataError, Dataset
from ensemble_core.jobs import (
    GENERIC_FAILURE,
    JobPool,
    LimitError,
    Limits,
    check_limits,
    user_of,
)
from ensemble_core.run import Done, EpochEnd
from ensemble_core.shapes import parameter_count
from ensemble_core.training import TrainingError


def tiny_dataset(n: int = 20, d: int = 1) -> Dataset:
    rng = np.random.default_rng(0)
    x = rng.uniform(-4, 4, size=(n, d))
    y = x[:, 0] ** 3 + rng.normal(0, 3, size=n)
    return Dataset(name="toy", task="regression", feature_names=[f"x{i}" for i in range(d)], target_name="y",
                   x_train=x, y_train=y, x_val=x[:4], y_val=y[:4], x_test=x[:4], y_test=y[:4],
                   x_mean=x.mean(0), x_std=x.std(0), y_mean=float(y.mean()), y_std=float(y.std()))


@dataclass
class FakeRun:
    epochs_done: int
    stopped: bool


class FakeTrainer:
    """A controllable stand-in for ``training.train``.

    Each call emits one EpochEnd per ``step`` (``epochs`` of them), waiting on
    ``gate`` before each epoch, and tracks how many calls run at once.
    """

    def __init__(self, epoch_s: float = 0.0, gated: bool = False) -> None:
        self.epoch_s = epoch_s
        self.gate = threading.Event()
        if not gated:
            self.gate.set()
        self.lock = threading.Lock()
        self.running = 0
        self.max_running = 0
        self.started: list[str] = []

    def __call__(self, config, data, on_event, should_stop, *, preview_x=None, preview_every=0, preview_min_s=0.0):
        with self.lock:
            self.running += 1
            self.max_running = max(self.max_running, self.running)
            self.started.append(data.name)
        try:
            n = config.optim.epochs
            done = 0
            for epoch in range(1, n + 1):
                while not self.gate.wait(0.01):
                    if should_stop():
                        break
                if should_stop():
                    break
                time.sleep(self.epoch_s)
                on_event(EpochEnd(epoch, n, [1.0 / epoch], None, {}, [0.01], 0.0))
                done = epoch
            stopped = done < n
            on_event(Done(done, stopped, 0.0))
            return FakeRun(done, stopped)
        finally:
            with self.lock:
                self.running -= 1


def named(name: str) -> Dataset:
    ds = tiny_dataset()
    ds.name = name
    return ds


def wait_for(cond, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        time.sleep(0.005)


CFG = RunConfig().replace(**{"optim.epochs": 5})


@pytest.fixture
def make_pool():
    pools: list[JobPool] = []

    def make(*args, **kwargs) -> JobPool:
        kwargs.setdefault("torch_threads", 0)
        kwargs.setdefault("heartbeat_timeout", None)
        pool = JobPool(*args, **kwargs)
        pools.append(pool)
        return pool

    yield make
    for pool in pools:
        pool.shutdown()


def test_queue_of_distinct_users_is_fifo_with_positions_and_cap(make_pool):
    fake = FakeTrainer(gated=True)
    pool = make_pool(2, train_fn=fake)
    jobs = [pool.submit(CFG, named(f"d{i}"), owner=f"u{i}") for i in range(5)]
    wait_for(lambda: fake.running == 2)
    assert [j.status for j in jobs] == ["running", "running", "queued", "queued", "queued"]
    assert [j.queue_position for j in jobs] == [None, None, 1, 2, 3]
    assert pool.stats() == {"running": 2, "queued": 3, "max_running": 2}
    fake.gate.set()
    wait_for(lambda: all(j.status == "done" for j in jobs))
    assert fake.max_running == 2
    assert fake.started == [f"d{i}" for i in range(5)]  # FIFO
    assert all(j.queue_position is None for j in jobs)


def test_one_users_queued_runs_never_delay_another_users_first_run(make_pool):
    """Fair by user: a slot goes to the user with the fewest running jobs, then the oldest job."""
    fake = FakeTrainer(gated=True)
    pool = make_pool(1, train_fn=fake, max_active_per_user=3, max_active_per_owner=1)
    a1 = pool.submit(CFG, named("a1"), owner="a")
    wait_for(lambda: fake.running == 1)
    a2 = pool.submit(CFG, named("a2"), owner="a:lessons")  # a's second and third runs, queued first
    a3 = pool.submit(CFG, named("a3"), owner="a:compare")
    b1 = pool.submit(CFG, named("b1"), owner="b")  # b's first run, queued last
    c1 = pool.submit(CFG, named("c1"), owner="c:lessons")
    assert [j.queue_position for j in (a2, a3, b1, c1)] == [3, 4, 1, 2]
    fake.gate.set()
    wait_for(lambda: all(j.status == "done" for j in (a1, a2, a3, b1, c1)))
    assert fake.started == ["a1", "b1", "c1", "a2", "a3"]


def test_the_class_queue_has_a_total_cap_that_says_when_to_retry(make_pool):
    fake = FakeTrainer(gated=True)
    pool = make_pool(1, train_fn=fake, max_queued=2)
    pool.submit(CFG, tiny_dataset(), owner="u0")
    wait_for(lambda: fake.running == 1)
    pool.submit(CFG, tiny_dataset(), owner="u1")
    pool.submit(CFG, tiny_dataset(), owner="u2")
    with pytest.raises(LimitError, match=r"class queue is full: 2 runs are waiting .* Try again in about \d+ s"):
        pool.submit(CFG, tiny_dataset(), owner="u3")
    assert pool.stats()["queued"] == 2  # the refused run left nothing behind
    fake.gate.set()
    wait_for(lambda: pool.stats()["queued"] == 0 and pool.stats()["running"] == 0)
    pool.submit(CFG, tiny_dataset(), owner="u3")  # room again


def test_expected_wait_uses_the_latest_run_times(make_pool):
    fake = FakeTrainer(gated=True)
    pool = make_pool(2, train_fn=fake)
    first = [pool.submit(CFG, tiny_dataset(), owner=f"a{i}") for i in range(2)]
    queued = [pool.submit(CFG, tiny_dataset(), owner=f"b{i}") for i in range(3)]
    assert pool.expected_wait(queued[0]) is None  # nothing finished yet: no estimate
    fake.gate.set()
    wait_for(lambda: all(j.status == "done" for j in first + queued))
    fake.gate.clear()
    durations = [j.finished_at - j.started_at for j in first + queued]
    assert sorted(pool._durations) == pytest.approx(sorted(durations))
    blockers = [pool.submit(CFG, tiny_dataset(), owner=f"c{i}") for i in range(2)]
    waiting = [pool.submit(CFG, tiny_dataset(), owner=f"d{i}") for i in range(2)]
    mean = sum(durations) / len(durations)
    assert pool.expected_wait(waiting[0]) == pytest.approx(1 * mean / 2)
    assert pool.expected_wait(waiting[1]) == pytest.approx(2 * mean / 2)
    assert pool.expected_wait(blockers[0]) is None  # running, not queued
    fake.gate.set()


def test_queue_seconds_is_the_wait_before_the_start(make_pool):
    fake = FakeTrainer(gated=True)
    pool = make_pool(1, train_fn=fake)
    a, b = (pool.submit(CFG, named(n), owner=n) for n in "ab")
    wait_for(lambda: a.status == "running")
    assert a.queue_seconds is not None and 0 <= a.queue_seconds < 1  # a free slot: it started at once
    assert b.queue_seconds is None  # still waiting
    time.sleep(0.3)
    fake.gate.set()
    wait_for(lambda: b.status == "done")
    assert b.queue_seconds == pytest.approx(b.started_at - b.submitted_at)
    assert b.queue_seconds >= 0.3 and b.queue_seconds <= b.finished_at - b.submitted_at


def test_before_any_run_finished_the_wait_is_projected_from_the_running_ones(make_pool):
    fake = FakeTrainer(gated=True)
    pool = make_pool(2, train_fn=fake)
    running = [pool.submit(CFG, named(f"r{i}"), owner=f"r{i}") for i in range(2)]
    queued = [pool.submit(CFG, named(f"q{i}"), owner=f"q{i}") for i in range(2)]
    wait_for(lambda: fake.running == 2)
    assert pool.expected_wait(queued[0]) is None  # no epoch done anywhere yet: nothing to go by
    now = time.monotonic()
    for job, (epoch, elapsed) in zip(running, [(1, 2.0), (2, 2.0)], strict=True):
        job._epoch, job.started_at = epoch, now - elapsed  # 2 s per epoch and 1 s per epoch, 5 epochs each
    # projected totals 10 s and 5 s (the pace so far: elapsed s per epoch x 5 epochs), mean 7.5 s, over 2 slots
    assert pool.expected_wait(queued[0]) == pytest.approx(1 * 7.5 / 2, rel=0.02)
    assert pool.expected_wait(queued[1]) == pytest.approx(2 * 7.5 / 2, rel=0.02)
    fake.gate.set()
    wait_for(lambda: all(j.status == "done" for j in running + queued))


def test_on_change_is_called_when_a_job_starts_and_when_it_ends(make_pool):
    """Each job tells its listener of its start and its end (done, stopped, cancelled), with the status then."""
    fake = FakeTrainer(gated=True)
    pool = make_pool(1, train_fn=fake)
    seen: list[tuple[str, str]] = []
    lock = threading.Lock()

    def listen(job) -> None:
        with lock:
            seen.append((job.owner, job.status))

    a, b, c = (pool.submit(CFG, named(n), owner=n, on_change=listen) for n in "abc")
    wait_for(lambda: ("a", "running") in seen)
    assert seen == [("a", "running")]  # b and c wait in the queue: nothing to tell yet
    c.stop()  # cancelled while queued
    assert seen[-1] == ("c", "stopped")
    fake.gate.set()
    wait_for(lambda: len(seen) == 5)
    told = {o: [status for owner, status in seen if owner == o] for o in "abc"}  # threads interleave across jobs
    assert told == {"a": ["running", "done"], "b": ["running", "done"], "c": ["stopped"]}
    assert all(j.status in ("done", "stopped") for j in (a, b, c))


def test_a_failing_listener_does_not_break_the_pool(make_pool, caplog):
    fake = FakeTrainer()
    pool = make_pool(1, train_fn=fake)

    def broken(job) -> None:
        raise RuntimeError("listener bug")

    jobs = [pool.submit(CFG, named(n), owner=n, on_change=broken) for n in "ab"]
    wait_for(lambda: all(j.status == "done" for j in jobs))
    assert [j.result.epochs_done for j in jobs] == [CFG.optim.epochs] * 2
    assert "on_change of job" in caplog.text


def test_positions_move_up_when_a_queued_job_is_cancelled(make_pool):
    fake = FakeTrainer(gated=True)
    pool = make_pool(1, train_fn=fake)
    a, b, c = (pool.submit(CFG, named(n), owner=n) for n in "abc")
    wait_for(lambda: a.status == "running")
    assert (b.queue_position, c.queue_position) == (1, 2)
    b.stop()
    assert b.status == "stopped" and b.result is None and b.queue_position is None
    assert b.queue_seconds is None  # it never started
    assert c.queue_position == 1
    fake.gate.set()
    wait_for(lambda: c.status == "done")
    assert fake.started == ["a", "c"]  # the cancelled job never trained


def test_stop_running_job_keeps_partial_result(make_pool):
    fake = FakeTrainer(epoch_s=0.02)
    pool = make_pool(1, train_fn=fake)
    job = pool.submit(RunConfig().replace(**{"optim.epochs": 1000}), tiny_dataset(), owner="u")
    wait_for(lambda: job.progress().epoch >= 3)
    job.stop()
    wait_for(lambda: not job.active)
    assert job.status == "stopped"
    assert job.result is not None and job.result.stopped
    assert 3 <= job.result.epochs_done < 1000
    assert job.events[-1].kind == "done"


def test_events_and_progress(make_pool):
    pool = make_pool(1, train_fn=FakeTrainer())
    job = pool.submit(CFG, tiny_dataset(), owner="u")
    wait_for(lambda: job.status == "done")
    events = job.events
    assert [e.kind for e in events] == ["epoch"] * 5 + ["done"]
    assert job.events_since(4) == events[4:]
    assert job.n_events == 6
    p = job.progress()
    assert (p.epoch, p.n_epochs, p.eta, p.fraction) == (5, 5, 0.0, 1.0)
    assert p.elapsed >= 0


@pytest.mark.parametrize("exc, shown", [
    (TrainingError("every member diverged; lower the learning rate"), "every member diverged; lower the learning rate"),
    (DataError("the target column is constant"), "the target column is constant"),
    (ZeroDivisionError("secret internals"), GENERIC_FAILURE),
])
def test_failure_gives_human_message_not_traceback(make_pool, exc, shown, caplog):
    def boom(*a, **k):
        raise exc

    pool = make_pool(1, train_fn=boom)
    job = pool.submit(CFG, tiny_dataset(), owner="u")
    wait_for(lambda: not job.active)
    assert job.status == "failed"
    assert job.error == shown
    assert "Traceback" not in job.error and "secret" not in job.error
    # the pool keeps working after a failure
    pool._train_fn = FakeTrainer()
    job2 = pool.submit(CFG, tiny_dataset(), owner="u")
    wait_for(lambda: job2.status == "done")


def test_isolation_by_owner(make_pool):
    pool = make_pool(2, train_fn=FakeTrainer(gated=True))
    a = pool.submit(CFG, tiny_dataset(), owner="alice")
    b = pool.submit(CFG, tiny_dataset(), owner="bob")
    assert pool.get(a.id, "alice") is a
    assert pool.get(a.id, "bob") is None
    assert pool.get(None, "alice") is None
    assert pool.jobs_of("bob") == [b]
    assert pool.stop_owner("alice") == 1
    wait_for(lambda: not a.active)
    assert a.status == "stopped" and b.active


def test_one_active_job_per_owner(make_pool):
    pool = make_pool(2, train_fn=FakeTrainer(gated=True))
    pool.submit(CFG, tiny_dataset(), owner="u")
    with pytest.raises(LimitError, match="already have 1 run"):
        pool.submit(CFG, tiny_dataset(), owner="u")
    pool.submit(CFG, tiny_dataset(), owner="other")  # others are not affected


def test_reaper_stops_jobs_of_silent_owners(make_pool):
    pool = make_pool(2, train_fn=FakeTrainer(gated=True), heartbeat_timeout=30.0, reap_interval=3600)
    gone = pool.submit(CFG, tiny_dataset(), owner="gone")
    alive = pool.submit(CFG, tiny_dataset(), owner="alive")
    queued = pool.submit(CFG, tiny_dataset(), owner="gone2")
    t0 = time.monotonic()
    pool.touch("alive")
    assert pool.reap(now=t0 + 10) == 0
    pool._seen["alive"] = t0 + 25  # alive heartbeats later; the others stay silent
    assert pool.reap(now=t0 + 40) == 2
    wait_for(lambda: not gone.active)
    assert gone.status == "stopped" and queued.status == "stopped"
    assert alive.active


def test_one_user_holds_at_most_two_jobs_across_pages(make_pool):
    pool = make_pool(4, train_fn=FakeTrainer(gated=True))
    pool.submit(CFG, tiny_dataset(), owner="u")
    pool.submit(CFG, tiny_dataset(), owner="u:lessons")  # a lesson beside the Train page's run
    with pytest.raises(LimitError, match="already have 2 runs .* limit is 2 per user"):
        pool.submit(CFG, tiny_dataset(), owner="u:compare")
    pool.submit(CFG, tiny_dataset(), owner="v:compare")  # another user is not affected
    assert user_of("u:lessons") == "u" and user_of("u") == "u"


def test_reaper_keeps_connected_owners_and_frees_disconnected_ones(make_pool):
    connected = {"starved": True, "closed": False}
    pool = make_pool(1, train_fn=FakeTrainer(gated=True), heartbeat_timeout=30.0, reap_interval=3600,
                     alive=lambda owner: connected.get(owner.split(":")[0]))
    running = pool.submit(CFG, tiny_dataset(), owner="starved")
    queued = pool.submit(CFG, tiny_dataset(), owner="starved:lessons")
    closed = pool.submit(CFG, tiny_dataset(), owner="closed")
    unknown = pool.submit(CFG, tiny_dataset(), owner="unknown")
    t0 = time.monotonic()
    # nobody polled for 100 s: a connected session keeps its place, the others are judged by the heartbeat
    assert pool.reap(now=t0 + 100) == 2
    assert closed.status == "stopped" and unknown.status == "stopped"
    assert running.active and queued.status == "queued"
    connected["starved"] = False  # the tab was closed: freed once the heartbeat times out
    assert pool.reap(now=t0 + 110) == 0
    assert pool.reap(now=t0 + 140) == 2
    wait_for(lambda: not running.active)


def test_a_failing_liveness_check_falls_back_to_the_heartbeat(make_pool):
    def broken(owner):
        raise RuntimeError("no runtime")

    pool = make_pool(1, train_fn=FakeTrainer(gated=True), heartbeat_timeout=30.0, reap_interval=3600, alive=broken)
    job = pool.submit(CFG, tiny_dataset(), owner="u")
    t0 = time.monotonic()
    assert pool.reap(now=t0 + 10) == 0
    assert pool.reap(now=t0 + 40) == 1
    wait_for(lambda: not job.active)


def test_reaper_thread_runs_by_itself(make_pool):
    pool = make_pool(1, train_fn=FakeTrainer(gated=True), heartbeat_timeout=0.05, reap_interval=0.02)
    job = pool.submit(CFG, tiny_dataset(), owner="u")
    wait_for(lambda: job.status == "stopped", timeout=5)


def test_finished_jobs_are_forgotten_after_retention(make_pool):
    pool = make_pool(1, train_fn=FakeTrainer(), retain_s=10)
    job = pool.submit(CFG, tiny_dataset(), owner="u")
    wait_for(lambda: job.status == "done")
    pool.reap(now=job.finished_at + 5)
    assert pool.get(job.id, "u") is job
    pool.reap(now=job.finished_at + 11)
    assert pool.get(job.id, "u") is None


def test_limits_name_the_limit():
    ds = tiny_dataset(n=5000, d=10)
    big = RunConfig().replace(**{"strategy.members": 20, "model.width": 200, "optim.epochs": 2000})
    params = parameter_count(10, 2, big.model)
    assert params == 10 * 200 + 200 + 200 * 200 + 200 + 200 * 2 + 2
    with pytest.raises(LimitError) as err:
        check_limits(big, ds)
    msg = str(err.value)
    assert f"20 members × {params:,} parameters × 2,000 epochs × 5,000 rows" in msg
    assert "classroom limit is 3.0e+10" in msg
    check_limits(RunConfig(), tiny_dataset())  # the default run is fine
    with pytest.raises(LimitError, match="rows; the classroom limit is 100 rows"):
        check_limits(RunConfig(), ds, Limits(max_rows=100))
    with pytest.raises(LimitError, match="parameters; the classroom limit is 1,000"):
        check_limits(RunConfig(), ds, Limits(max_parameters=1000))


def test_submit_refuses_over_limit_runs(make_pool):
    pool = make_pool(1, train_fn=FakeTrainer(), limits=Limits(max_work=10))
    with pytest.raises(LimitError, match="classroom limit"):
        pool.submit(CFG, tiny_dataset(), owner="u")
    assert pool.jobs_of("u") == []


def test_torch_threads_share_the_cores(monkeypatch):
    import torch

    before = torch.get_num_threads()
    monkeypatch.setattr("ensemble_core.jobs.default_max_running", lambda: 8)
    pool = JobPool(2, heartbeat_timeout=None)
    try:
        assert torch.get_num_threads() == 4
    finally:
        pool.shutdown()
        torch.set_num_threads(before)


def test_executor_choice():
    fake = FakeTrainer()
    pool = JobPool(1, heartbeat_timeout=None, torch_threads=0, train_fn=fake)
    try:
        assert pool.executor == "thread" and pool._workers == []  # an injected train_fn runs in threads
    finally:
        pool.shutdown()
    with pytest.raises(ValueError, match="executor='thread'"):
        JobPool(1, heartbeat_timeout=None, torch_threads=0, train_fn=fake, executor="process")
    with pytest.raises(ValueError, match="executor must be"):
        JobPool(1, heartbeat_timeout=None, torch_threads=0, executor="cluster")  # type: ignore[arg-type]


def test_a_job_may_ask_for_another_executor_and_waits_only_for_a_worker_of_its_kind():
    """A thread pool (fake train) with one slot: a job asking for ``process`` trains in a worker process
    made on demand, while the thread slot is busy; the queue order is the fair one across kinds."""
    fake = FakeTrainer(gated=True)
    data = tiny_dataset()
    cfg = RunConfig().replace(**{"optim.epochs": 3, "strategy.members": 1})
    pool = JobPool(1, heartbeat_timeout=None, torch_threads=0, train_fn=fake, max_active_per_user=3)
    try:
        blocker = pool.submit(cfg, data, "a:1")
        wait_for(lambda: blocker.status == "running")
        a2 = pool.submit(cfg, data, "a:2")  # thread kind: waits for the busy slot
        b1 = pool.submit(cfg, data, "b:1", executor="process")  # its kind has idle workers: starts at once
        wait_for(lambda: not b1.active, timeout=120)
        assert b1.executor == "process" and b1.status == "done", b1.error
        assert b1.result.epochs_done == 3 and type(b1.result).__name__ == "Run"  # the real engine, not the fake
        assert a2.status == "queued" and blocker.status == "running"
        assert {w.kind for w in pool._workers} == {"process"} and fake.started == ["toy"]
    finally:
        fake.gate.set()
        pool.shutdown()
