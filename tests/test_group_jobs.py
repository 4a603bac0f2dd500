"""Group jobs: several configs (lanes) trained as ONE stacked program, as ONE pool job.

Oracles: the same configs trained as separate pool jobs (process executor) and the
engine's own ``train``.  Each lane must equal its separate run member by member to
1e-4 (float32 round-off), with the same learning-rate trace and events.  One pool of
two warm worker processes serves the module (starting a worker imports torch).
The Ray executor's group jobs are tested in ``tests/test_ray_executor.py``.
"""

from __future__ import annotations

import os
import signal
import time

import numpy as np
import pytest
import torch
from conftest import make_cubic

from ensemble_core.config import ConfigError, LossSpec, ModelSpec, OptimSpec, RunConfig, StrategySpec
from ensemble_core.jobs import JobPool, LaneJob, LimitError, Limits
from ensemble_core.run import EpochEnd, Preview
from ensemble_core.training import TrainingError, train
from ensemble_core.worker import WORKER_DIED

BASE = RunConfig().replace(**{"optim.epochs": 6, "strategy.members": 2, "model.width": 16})
LONG = BASE.replace(**{"optim.epochs": 5000})
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
    p = JobPool(2, heartbeat_timeout=None, torch_threads=1, limits=NO_LIMITS, max_active_per_owner=1,
                max_active_per_user=3)
    assert p.executor == "process" and p.supports_groups
    yield p
    p.shutdown()


def _assert_same_run(ours, theirs, data) -> None:  # noqa: ANN001
    """Member by member to 1e-4 relative, the same lr trace, the same epochs and validation metrics."""
    assert np.array_equal(ours.lr_trace, theirs.lr_trace)
    assert ours.epochs_done == theirs.epochs_done and ours.stopped == theirs.stopped
    x = torch.as_tensor(data.scale_x(np.concatenate([data.x_train, data.x_test])), dtype=torch.float32)
    with torch.no_grad():
        a, b = ours.model(x), theirs.model(x)
    assert a.shape == b.shape
    scale = max(1.0, float(b.abs().max()))
    assert float((a - b).abs().max()) <= 1e-4 * scale
    ea = [e for e in ours.history if isinstance(e, EpochEnd)]
    eb = [e for e in theirs.history if isinstance(e, EpochEnd)]
    assert [e.epoch for e in ea] == [e.epoch for e in eb]
    for x1, x2 in zip(ea, eb, strict=True):
        assert x1.val["nll"] == pytest.approx(x2.val["nll"], rel=1e-4, abs=1e-6)


def test_a_group_jobs_lanes_equal_separate_pool_jobs(pool):
    data = make_cubic()
    configs = [BASE.replace(**{"optim.lr": 0.001, "seed": 0}), BASE.replace(**{"optim.lr": 0.01, "seed": 3}),
               BASE.replace(**{"optim.weight_decay": 1e-3, "optim.lr": 0.003})]
    px = data.x_train[:5]
    group = finish(pool.submit_group(configs, data, "g:group", preview_x=px, preview_every=2))
    assert group.status == "done", group.error
    assert group.is_group and group.configs == tuple(configs) and len(group.lanes) == 3
    assert [r.error for r in group.lane_results] == [None, None, None]
    assert group.result is group.lane_results
    separate = [finish(pool.submit(c, data, f"s{i}:one", preview_x=px, preview_every=2))
                for i, c in enumerate(configs)]
    for lane, job in zip(group.lanes, separate, strict=True):
        assert isinstance(lane, LaneJob) and job.status == "done"
        assert lane.status == "done" and lane.config == job.config and lane.error is None
        _assert_same_run(lane.result, job.result, data)
        # the lane's events are the ones its own job streamed: epochs in order, previews, done
        kinds = [type(e).__name__ for e in lane.events]
        assert kinds == [type(e).__name__ for e in job.events]
        assert [e.epoch for e in lane.events if isinstance(e, EpochEnd)] == list(range(1, 7))
        assert any(isinstance(e, Preview) for e in lane.events)
        assert len(lane.result.replay) == len(job.result.replay) > 0  # previews moved into its replay, as a job's
    # events arrive tagged with their lane, and every lane's events are in the job's
    assert all(isinstance(e, tuple) and e[0] in (0, 1, 2) for e in group.events)
    assert sum(len(group.lane_events(i)) for i in range(3)) == group.n_events
    assert group.progress().epoch == 6 and group.lanes[1].progress().fraction == 1.0
    # and the oracle of the oracle: the engine's own run
    _assert_same_run(group.lanes[1].result, train(configs[1], data), data)


def test_stop_ends_a_group_job_within_a_second_and_every_lane_keeps_its_run(pool):
    data = make_cubic()
    job = pool.submit_group([LONG.replace(**{"optim.lr": lr}) for lr in (0.001, 0.01)], data, "st:group")
    wait_for(lambda: job.progress().epoch >= 3)
    assert job.status == "running" and job.lanes[0].status == "running"
    t0 = time.monotonic()
    job.lanes[1].stop()  # a lane's Stop stops the whole group
    wait_for(lambda: not job.active, timeout=5)
    assert time.monotonic() - t0 < 1.0
    assert job.status == "stopped" and job.stop_requested
    runs = [lane.result for lane in job.lanes]
    assert all(r is not None and r.stopped for r in runs)
    assert runs[0].epochs_done == runs[1].epochs_done and 3 <= runs[0].epochs_done < 5000
    assert [lane.status for lane in job.lanes] == ["stopped", "stopped"]


def test_a_killed_worker_fails_only_the_group_job(pool):
    data = make_cubic()
    group = pool.submit_group([LONG.replace(**{"seed": s}) for s in (0, 1, 2)], data, "k:group")
    other = pool.submit(BASE.replace(**{"optim.epochs": 300}), data, "k2:one")
    wait_for(lambda: group.progress().epoch >= 2 and other.status == "running")
    with pool._lock:
        victim = next(w for w in pool._workers if getattr(w, "_job", None) == group.id)
    os.kill(victim.pid, signal.SIGKILL)
    finish(group)
    finish(other)
    assert group.status == "failed" and group.error == WORKER_DIED
    assert [lane.status for lane in group.lanes] == ["failed"] * 3
    assert all(lane.error == WORKER_DIED and lane.result is None for lane in group.lanes)
    assert other.status == "done" and other.result.epochs_done == 300
    again = finish(pool.submit_group([BASE, BASE.replace(**{"seed": 5})], data, "k:group"))
    assert again.status == "done", again.error


def test_a_group_counts_as_one_job_against_the_quota(pool):
    data = make_cubic()
    group = pool.submit_group([LONG.replace(**{"seed": s}) for s in range(4)], data, "q:a")
    try:
        with pytest.raises(LimitError, match="You already have 1 run queued or training here"):
            pool.submit(BASE, data, "q:a")  # the owner's one job is the group, not four
        single = pool.submit(LONG, data, "q:b")  # the user's second job (quota 3)
        third = pool.submit(LONG, data, "q:c")
        with pytest.raises(LimitError, match="You already have 3 runs queued or training"):
            pool.submit(BASE, data, "q:d")
        stats = pool.stats()
        assert stats["running"] + stats["queued"] == 3
    finally:
        for job in pool.jobs_of("q:a") + pool.jobs_of("q:b") + pool.jobs_of("q:c"):
            job.stop()
    for job in (group, single, third):
        finish(job)
    assert group.status == "stopped"


def test_limits_apply_to_the_whole_program_and_mixed_configs_are_refused():
    data = make_cubic(n_train=1000)
    cfg = RunConfig().replace(**{"optim.epochs": 100, "strategy.members": 5})
    tight = JobPool(1, executor="thread", heartbeat_timeout=None, torch_threads=0,
                    limits=Limits(max_work=2.5 * 5 * 2851 * 100 * 1000))
    try:
        with pytest.raises(LimitError, match="15 members"):  # each lane fits; three lanes together do not
            tight.submit_group([cfg.replace(**{"seed": s}) for s in range(3)], data, "l:a")
        assert tight.stats() == {"running": 0, "queued": 0, "max_running": 1}
        with pytest.raises(ConfigError, match="cannot train as one program"):
            tight.submit_group([cfg, cfg.replace(**{"model.width": 20})], data, "l:a")
        with pytest.raises(ConfigError, match="at least one config"):
            tight.submit_group([], data, "l:a")
    finally:
        tight.shutdown()
    fake = JobPool(1, train_fn=train, heartbeat_timeout=None, torch_threads=0)
    try:
        assert not fake.supports_groups
        with pytest.raises(ValueError, match="custom train_fn"):
            fake.submit_group([BASE], make_cubic(), "f:a")
    finally:
        fake.shutdown()


def test_a_lane_whose_members_all_diverge_has_its_error_and_the_others_train(pool):
    data = make_cubic(n_train=37, n_val=8, n_test=8)
    base = RunConfig(model=ModelSpec(hidden_layers=2, width=16, activation="tanh"), loss=LossSpec(kind="mse"),
                     strategy=StrategySpec(members=2),
                     optim=OptimSpec(optimizer="sgd", lr=0.01, momentum=0.9, batch_size=8, epochs=4))
    configs = [base, base.replace(**{"optim.lr": 90.0})]  # lr 90: the loss becomes infinite in epoch 2
    job = finish(pool.submit_group(configs, data, "d:group"))
    assert job.status == "done"
    with pytest.raises(TrainingError) as exc:
        train(configs[1], data)
    assert job.lane_results[1].run is None and job.lane_results[1].error == str(exc.value)
    assert job.lanes[1].status == "failed" and job.lanes[1].error == str(exc.value)
    assert job.lanes[0].status == "done"
    _assert_same_run(job.lanes[0].result, train(configs[0], data), data)
    every = finish(pool.submit_group([configs[1], configs[1].replace(**{"seed": 4})], data, "d:group"))
    assert every.status == "failed" and every.error == str(exc.value)  # every lane failed: the job failed


def test_the_thread_executor_trains_a_group_in_process():
    data = make_cubic()
    configs = [BASE.replace(**{"optim.lr": lr}) for lr in (0.002, 0.02)]
    threads = JobPool(1, executor="thread", heartbeat_timeout=None, torch_threads=0)
    try:
        job = finish(threads.submit_group(configs, data, "t:a"))
    finally:
        threads.shutdown()
    assert job.status == "done" and job.executor == "thread"
    for lane, cfg in zip(job.lanes, configs, strict=True):
        _assert_same_run(lane.result, train(cfg, data), data)


def test_the_ray_executor_is_refused_with_a_clear_message_when_ray_is_missing(monkeypatch):
    import ensemble_core.ray_executor as rx

    monkeypatch.setattr(rx, "ray_available", lambda: False)
    threads = JobPool(1, executor="thread", heartbeat_timeout=None, torch_threads=0)
    try:
        with pytest.raises(LimitError, match=r"Ray is not installed on this server: pip install -r "
                                             r"requirements-ray.txt"):
            threads.submit(BASE, make_cubic(), "r:a", executor="ray")
        with pytest.raises(LimitError, match="Ray is not installed"):
            threads.submit_group([BASE], make_cubic(), "r:a", executor="ray")
        with pytest.raises(ValueError, match="executor must be"):
            threads.submit(BASE, make_cubic(), "r:a", executor="gpu")  # type: ignore[arg-type]
        assert threads._workers == []
    finally:
        threads.shutdown()
