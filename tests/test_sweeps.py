"""Tests of ensemble_core.sweeps: the sweep specification, its checks, the runner over the pool, and the CLI.

The runner is tested on the pool's thread executor with the real engine (each
trial's score is checked against its own ``train`` call) and with a gated fake
trainer for Stop.  The Ray executor's sweeps are in ``tests/test_ray_executor.py``.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from conftest import make_cubic, make_two_class

from ensemble_core.config import ConfigError, RunConfig
from ensemble_core.jobs import JobPool, LimitError
from ensemble_core.predict import evaluate_run
from ensemble_core.run import EpochEnd
from ensemble_core.sweeps import (
    ParamRange,
    SweepRun,
    SweepSpec,
    metric_key,
    parse_range,
    parse_values,
    plan,
    run_sweep_local,
    score,
)
from ensemble_core.training import train

ROOT = Path(__file__).resolve().parents[1]
BASE = RunConfig().replace(**{"optim.epochs": 6, "strategy.members": 2, "model.width": 8})


# ------------------------------------------------------------------ the spec
def test_grid_is_every_combination_in_order():
    spec = SweepSpec(BASE, grid=(("optim.lr", (0.001, 0.01)), ("strategy.members", (1, 3))))
    assert spec.trials() == [{"optim.lr": 0.001, "strategy.members": 1}, {"optim.lr": 0.001, "strategy.members": 3},
                             {"optim.lr": 0.01, "strategy.members": 1}, {"optim.lr": 0.01, "strategy.members": 3}]
    assert [c.optim.lr for c in spec.configs()] == [0.001, 0.001, 0.01, 0.01]
    assert [c.strategy.members for c in spec.configs()] == [1, 3, 1, 3]


def test_random_trials_are_reproducible_and_in_range():
    lr = ParamRange(1e-4, 1e-1, log=True)
    spec = SweepSpec(BASE, ranges=(("optim.lr", lr), ("model.width", ParamRange(4, 32, integer=True))),
                     n_random=40, seed=3)
    trials = spec.trials()
    assert trials == SweepSpec(spec.base, ranges=spec.ranges, n_random=40, seed=3).trials()
    assert trials != SweepSpec(spec.base, ranges=spec.ranges, n_random=40, seed=4).trials()
    lrs = np.array([t["optim.lr"] for t in trials])
    assert lrs.min() >= 1e-4 * 0.999 and lrs.max() <= 1e-1 * 1.001
    assert (lrs < 1e-2).mean() > 0.4  # log-uniform: two of the three decades lie below 1e-2
    assert all(isinstance(t["model.width"], int) and 4 <= t["model.width"] <= 32 for t in trials)


def test_values_are_typed_and_bad_ones_named():
    assert parse_values(BASE, "optim.lr", "0.001, 1e-2") == (0.001, 0.01)
    assert parse_values(BASE, "strategy.members", "1,3,3") == (1, 3)
    assert parse_values(BASE, "strategy.kind", "independent,bootstrap") == ("independent", "bootstrap")
    with pytest.raises(ConfigError, match="optim.lr: 'abc' is not valid"):
        parse_values(BASE, "optim.lr", "0.01,abc")
    with pytest.raises(ConfigError, match="strategy.members: '0' is not valid"):
        parse_values(BASE, "strategy.members", "0,3")
    with pytest.raises(ConfigError, match="optim.lrr: no such setting"):
        parse_values(BASE, "optim.lrr", "1")
    with pytest.raises(ConfigError, match="data settings cannot be swept"):
        parse_values(BASE, "data.n", "10,20")
    assert parse_range(BASE, "optim.lr", "1e-4:1e-1:log") == ParamRange(1e-4, 1e-1, log=True)
    with pytest.raises(ConfigError, match="LO:HI"):
        parse_range(BASE, "optim.lr", "1e-4-1e-1")
    with pytest.raises(ConfigError, match="only number settings"):
        parse_range(BASE, "strategy.kind", "0:1")
    with pytest.raises(ConfigError, match="log range needs lo > 0"):
        parse_range(BASE, "optim.weight_decay", "0:0.1:log")


def test_spec_refuses_too_many_settings_and_wrong_metrics():
    grid = tuple((p, (1,)) for p in ("seed", "strategy.members", "model.width", "model.hidden_layers"))
    with pytest.raises(ConfigError, match="at most 3 settings"):
        SweepSpec(BASE, grid=grid)
    with pytest.raises(ConfigError, match="at least one setting"):
        SweepSpec(BASE)
    with pytest.raises(ConfigError, match="metric"):
        SweepSpec(BASE, grid=(("seed", (1,)),), metric="loss")
    assert metric_key("test_ece", "regression") == ("test", "miscalibration_area")
    assert metric_key("val_ece", "classification") == ("val", "ece")
    with pytest.raises(ConfigError, match="for classification"):
        metric_key("test_accuracy", "regression")
    # a trial whose combination is invalid is named with its settings
    bad = SweepSpec(BASE.replace(**{"optim.lr": 0.01}), grid=(("optim.lr_min", (0.0, 0.5)),))
    with pytest.raises(ConfigError, match=r"trial 2 \(optim.lr_min=0.5\)"):
        bad.configs()


def test_plan_checks_trials_and_the_total_before_starting():
    data = make_cubic()
    spec = SweepSpec(BASE, grid=(("optim.lr", (0.001, 0.01, 0.1)),))
    checked = plan(spec, data)
    assert len(checked.configs) == 3 and checked.total_cpu_seconds > 0
    with pytest.raises(LimitError, match="over the limit of"):
        plan(spec, data, max_cpu_seconds=checked.total_cpu_seconds * 0.9)
    with pytest.raises(LimitError, match="at most 2 are allowed"):
        plan(spec, data, max_trials=2)
    huge = SweepSpec(BASE, grid=(("optim.epochs", (5, 5000)), ("optim.batch_size", (1,))))
    with pytest.raises(LimitError, match=r"Trial 2 \(optim.epochs=5000"):
        plan(huge, make_cubic(n_train=5000))
    with pytest.raises(ConfigError, match="for classification"):
        plan(SweepSpec(BASE, grid=(("seed", (0,)),), metric="test_accuracy"), data)


# ------------------------------------------------------------------ the runner
def _thread_pool(max_running: int = 2) -> JobPool:
    return JobPool(max_running=max_running, train_fn=train, heartbeat_timeout=None, max_active_per_user=4,
                   torch_threads=0)


def test_sweep_trains_each_trial_as_its_own_run_and_ranks_them():
    data = make_cubic()
    spec = SweepSpec(BASE, grid=(("optim.lr", (0.001, 0.03)), ("seed", (0, 1))))
    pool = _thread_pool()
    try:
        sweep = SweepRun(plan(spec, data), data, pool, "u1", parallel=2)
        assert sweep.wait(120)
    finally:
        pool.shutdown()
    assert [t.status for t in sweep.trials] == ["done"] * 4
    for t in sweep.trials:  # oracle: the trial's own train() call
        own = train(t.config, data)
        assert t.metrics["test_nll"] == pytest.approx(evaluate_run(own, data.x_test, data.y_test)["nll"], abs=1e-9)
        assert t.metrics["val_rmse"] == pytest.approx(evaluate_run(own, data.x_val, data.y_val)["rmse"], abs=1e-9)
        assert [e for e, _ in t.curve()] == list(range(1, 7))
    ranked = [t.metrics["test_nll"] for t in sweep.ranked()]
    assert ranked == sorted(ranked) and sweep.best() is sweep.ranked()[0]


def test_classification_sweep_ranks_accuracy_highest_first():
    data = make_two_class()
    spec = SweepSpec(BASE.replace(**{"data.name": "moons"}), grid=(("optim.lr", (0.0003, 0.05)),),
                     metric="test_accuracy")
    pool = _thread_pool()
    try:
        sweep = SweepRun(plan(spec, data), data, pool, "u1", parallel=2)
        assert sweep.wait(120)
    finally:
        pool.shutdown()
    acc = [t.metrics["test_accuracy"] for t in sweep.ranked()]
    assert acc == sorted(acc, reverse=True)
    assert set(score(sweep.trials[0].run, data)) == {"test_nll", "test_accuracy", "test_ece", "val_nll",
                                                     "val_accuracy", "val_ece"}


class GatedTrainer:
    """A fake ``train``: one epoch per 20 ms while ``gate`` is open; returns a partial run when stopped."""

    def __init__(self) -> None:
        self.gate = threading.Event()
        self.lock = threading.Lock()
        self.active: set[str] = set()
        self.most = 0

    def __call__(self, config, dataset, on_event=None, should_stop=None, **_):
        key = f"{config.seed}-{config.optim.lr}"
        with self.lock:
            self.active.add(key)
            self.most = max(self.most, len(self.active))
        try:
            for epoch in range(1, config.optim.epochs + 1):
                while not self.gate.is_set() and not (should_stop and should_stop()):
                    time.sleep(0.005)
                if should_stop and should_stop():
                    return _FakeRun(True, epoch - 1)
                time.sleep(0.02)
                if on_event:
                    on_event(EpochEnd(epoch, config.optim.epochs, [1.0], None, {"nll": 1.0 / epoch}, [0.01], 0.0))
            return _FakeRun(False, config.optim.epochs)
        finally:
            with self.lock:
                self.active.discard(key)


class _FakeRun:
    def __init__(self, stopped: bool, epochs: int) -> None:
        self.stopped, self.epochs_done, self.seconds, self.healthy = stopped, epochs, 0.1, []


def test_sweep_keeps_to_its_quota_and_stop_ends_it_keeping_finished_trials():
    data = make_cubic()
    fake = GatedTrainer()
    spec = SweepSpec(BASE, grid=(("seed", (0, 1, 2, 3, 4, 5)),))
    pool = JobPool(max_running=4, train_fn=fake, heartbeat_timeout=None, max_active_per_user=4, torch_threads=0)
    try:
        sweep = SweepRun(plan(spec, data), data, pool, "u1", parallel=2)
        fake.gate.set()
        deadline = time.monotonic() + 30
        while sum(t.status == "done" for t in sweep.trials) < 2 and time.monotonic() < deadline:
            time.sleep(0.01)
        fake.gate.clear()  # the next trials hang mid-run until stopped
        while sum(t.status == "running" for t in sweep.trials) < 1 and time.monotonic() < deadline:
            time.sleep(0.01)
        sweep.stop()
        assert sweep.wait(10)
    finally:
        pool.shutdown()
    statuses = [t.status for t in sweep.trials]
    assert fake.most <= 2  # never more than its quota of trials at once, though the pool had 4 slots
    assert statuses.count("done") >= 2 and "stopped" in statuses and "skipped" in statuses
    assert set(statuses) <= {"done", "stopped", "skipped"}
    assert all(t.run is not None for t in sweep.trials if t.status in ("done", "stopped"))
    assert not sweep.active and sweep.finished_at is not None


# ------------------------------------------------------------------ the CLI
def _python_m(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "ensemble_core", *args], cwd=ROOT, capture_output=True,
                          text=True, timeout=300)


def test_cli_sweep_prints_one_json_line_last(tmp_path):
    cfg = tmp_path / "run.json"
    cfg.write_text(BASE.replace(**{"data.n": 40}).to_json())
    r = _python_m("sweep", "--config", str(cfg), "--grid", "optim.lr=0.001,0.01", "--grid", "strategy.members=1,2",
                  "--epochs", "4", "--workers", "1", "--json")
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout.strip().splitlines()[-1])
    assert [t["params"] for t in out["trials"]] == [
        {"optim.lr": 0.001, "strategy.members": 1}, {"optim.lr": 0.001, "strategy.members": 2},
        {"optim.lr": 0.01, "strategy.members": 1}, {"optim.lr": 0.01, "strategy.members": 2}]
    assert all(np.isfinite(t["test_nll"]) and t["test_rmse"] > 0 and t["seconds"] >= 0 for t in out["trials"])
    assert out["best"]["test_nll"] == min(t["test_nll"] for t in out["trials"])
    assert "4 trials trained as 2 programs (4 batched)" in r.stderr  # one per members value
    # --separate: one job per trial, the same trials' NLLs (to float round-off) and the same JSON format
    r = _python_m("sweep", "--config", str(cfg), "--grid", "optim.lr=0.001,0.01", "--grid", "strategy.members=1,2",
                  "--epochs", "4", "--workers", "1", "--json", "--separate")
    assert r.returncode == 0, r.stderr
    assert "4 trials trained as 4 programs (0 batched)" in r.stderr
    alone = json.loads(r.stdout.strip().splitlines()[-1])
    assert alone.keys() == out.keys() and [t.keys() for t in alone["trials"]] == [t.keys() for t in out["trials"]]
    for a, b in zip(alone["trials"], out["trials"], strict=True):
        assert a["params"] == b["params"]
        assert a["test_nll"] == pytest.approx(b["test_nll"], rel=1e-4)


def test_cli_sweep_bad_input_is_one_line():
    r = _python_m("sweep", "--grid", "optim.lr=0.01,fast")
    assert r.returncode == 1 and "Traceback" not in r.stderr
    assert "optim.lr: 'fast' is not valid" in r.stderr.strip().splitlines()[-1]
    r = _python_m("sweep", "--grid", "optim.lr")
    assert r.returncode == 1 and "expected PATH=VALUES" in r.stderr


# ------------------------------------------------------------------ batched programs
def test_plan_groups_trials_into_programs_that_fit_the_limits():
    data = make_cubic()
    spec = SweepSpec(BASE, grid=(("optim.lr", (0.001, 0.01)), ("strategy.members", (1, 3))))
    checked = plan(spec, data)
    # trials 0 and 2 (members 1) share a program, 1 and 3 (members 3) another
    assert checked.programs == ((0, 2), (1, 3)) and checked.n_programs == 2 and checked.n_batched == 4
    assert [checked.program_of(i) for i in range(4)] == [0, 1, 0, 1]
    lrs = SweepSpec(BASE, grid=(("optim.lr", (0.001, 0.002, 0.005, 0.01, 0.02, 0.05)),))
    assert plan(lrs, data).programs == ((0, 1, 2, 3, 4, 5),)
    # a program whose stacked cost is over the limits is cut into the fewest even parts that fit
    from ensemble_core.costs import shape_of
    from ensemble_core.jobs import Limits
    from ensemble_core.shapes import parameter_count

    params = parameter_count(data.n_features, shape_of(BASE, data).n_outputs, BASE.model)
    one = BASE.strategy.members * params * BASE.optim.epochs * len(data.x_train)
    tight = Limits(max_work=2.5 * one)  # two trials fit together, three do not
    assert plan(lrs, data, tight).programs == ((0, 1), (2, 3), (4, 5))
    assert plan(lrs, data, Limits(max_work=1.5 * one)).programs == tuple((i,) for i in range(6))
    # a model setting cannot be carried per trajectory: one program per value
    widths = SweepSpec(BASE, grid=(("model.width", (4, 8)), ("seed", (0, 1))))
    assert plan(widths, data).programs == ((0, 1), (2, 3))


def test_a_learning_rate_sweep_trains_as_one_job_with_the_same_test_nlls_as_one_job_per_trial():
    data = make_cubic()
    spec = SweepSpec(BASE, grid=(("optim.lr", (0.001, 0.003, 0.01, 0.03)),))
    checked = plan(spec, data)
    assert checked.programs == ((0, 1, 2, 3),)
    pool = JobPool(max_running=1, heartbeat_timeout=None, max_active_per_user=4, torch_threads=1)
    changes = []
    try:
        assert pool.executor == "process" and pool.supports_groups
        batched = SweepRun(checked, data, pool, "b1", parallel=3, on_change=lambda sw: changes.append(sw.counts()))
        assert batched.wait(180)
        jobs = {t.job.group.id for t in batched.trials}
    finally:
        pool.shutdown()
    assert len(jobs) == 1  # ONE pool job trained the four trials
    assert [t.status for t in batched.trials] == ["done"] * 4
    assert all(t.batched and t.program == 0 for t in batched.trials)
    thread = _thread_pool()  # an injected train_fn: one job per trial
    try:
        separate = SweepRun(checked, data, thread, "s1", parallel=2)
        assert separate.wait(180)
    finally:
        thread.shutdown()
    assert len({t.job.id for t in separate.trials}) == 4 and not any(t.batched for t in separate.trials)
    for a, b in zip(batched.trials, separate.trials, strict=True):
        assert a.metrics["test_nll"] == pytest.approx(b.metrics["test_nll"], rel=1e-4, abs=1e-6)
        assert a.metrics["val_rmse"] == pytest.approx(b.metrics["val_rmse"], rel=1e-4, abs=1e-6)
        assert [e for e, _ in a.curve()] == list(range(1, 7))  # each trial's own validation curve
        assert a.run.config == b.run.config
    assert [t.index for t in batched.ranked()] == [t.index for t in separate.ranked()]
    assert changes and changes[-1] == {"done": 4}


def test_stopping_a_batched_sweep_keeps_every_trials_partial_run():
    data = make_cubic()
    spec = SweepSpec(BASE.replace(**{"optim.epochs": 5000}), grid=(("seed", (0, 1, 2)),))
    pool = JobPool(max_running=1, heartbeat_timeout=None, max_active_per_user=4, torch_threads=1)
    try:
        sweep = SweepRun(plan(spec, data, max_cpu_seconds=1e9), data, pool, "st", parallel=2)
        deadline = time.monotonic() + 120
        while not (sweep.trials[0].job is not None and sweep.trials[0].job.progress().epoch >= 2):
            assert time.monotonic() < deadline
            time.sleep(0.02)
        assert [t.status for t in sweep.trials] == ["running"] * 3
        sweep.stop()
        assert sweep.wait(10)
    finally:
        pool.shutdown()
    assert [t.status for t in sweep.trials] == ["stopped"] * 3
    epochs = {t.run.epochs_done for t in sweep.trials}
    assert len(epochs) == 1 and 2 <= epochs.pop() < 5000


def test_a_sweep_cuts_its_programs_to_the_pools_own_limits():
    from ensemble_core.costs import shape_of
    from ensemble_core.jobs import Limits
    from ensemble_core.shapes import parameter_count

    data = make_cubic()
    spec = SweepSpec(BASE, grid=(("optim.lr", (0.001, 0.002, 0.005, 0.01, 0.02, 0.05)),))
    checked = plan(spec, data)  # planned with the default limits: one program
    assert checked.programs == ((0, 1, 2, 3, 4, 5),)
    params = parameter_count(data.n_features, shape_of(BASE, data).n_outputs, BASE.model)
    one = BASE.strategy.members * params * BASE.optim.epochs * len(data.x_train)
    pool = JobPool(1, executor="thread", heartbeat_timeout=None, torch_threads=0, max_active_per_user=4,
                   limits=Limits(max_work=2.5 * one))  # the engine in the pool's thread; two trials per job
    try:
        sweep = SweepRun(checked, data, pool, "cut", parallel=2)
        assert sweep.programs == ((0, 1), (2, 3), (4, 5))
        assert sweep.wait(120)
    finally:
        pool.shutdown()
    assert [t.status for t in sweep.trials] == ["done"] * 6
    assert [t.program for t in sweep.trials] == [0, 0, 1, 1, 2, 2] and all(t.batched for t in sweep.trials)
    assert len({t.job.group.id for t in sweep.trials}) == 3


# ------------------------------------------------------------------ a batched sweep uses every slot
def test_spread_cuts_the_largest_program_until_every_slot_has_one():
    from ensemble_core.sweeps import spread

    eight = [tuple(range(8))]
    assert spread(eight, 1) == eight
    assert spread(eight, 2) == [(0, 1, 2, 3), (4, 5, 6, 7)]
    assert spread(eight, 4) == [(0, 1), (2, 3), (4, 5), (6, 7)]
    assert spread([(0, 1, 2), (3,)], 3) == [(0,), (1, 2), (3,)]
    assert spread([(0,), (1,)], 8) == [(0,), (1,)]  # single trials are not cut
    assert sorted(i for p in spread(eight, 3) for i in p) == list(range(8))  # each trial once


def test_the_cli_runner_cuts_a_batched_sweep_so_both_workers_train():
    """8 learning rates on 2 workers: two batched programs of 4 (one job each, on both workers), with the
    test NLLs of the one-program sweep (a lane equals its run alone, to float round-off)."""
    data = make_cubic()
    spec = SweepSpec(BASE, grid=(("optim.lr", (0.001, 0.002, 0.003, 0.005, 0.01, 0.02, 0.03, 0.05)),))
    two = run_sweep_local(spec, data, workers=2)
    assert two.programs == ((0, 1, 2, 3), (4, 5, 6, 7))
    assert len({t.job.group.id for t in two.trials}) == 2 and all(t.batched for t in two.trials)
    one = run_sweep_local(spec, data, workers=1)
    assert one.programs == (tuple(range(8)),)
    assert [t.status for t in two.trials] == [t.status for t in one.trials] == ["done"] * 8
    for a, b in zip(two.trials, one.trials, strict=True):
        assert a.metrics["test_nll"] == pytest.approx(b.metrics["test_nll"], rel=1e-4)
