"""The lazy per-step schedule (bit for bit lr_schedule) and the bounded schedule chart."""

from __future__ import annotations

import itertools
import math
import time
import tracemalloc

import numpy as np
import pytest

from ensemble_core.config import ConfigError, RunConfig
from ensemble_core.schedules import (
    COSINE_EXACT_UNITS,
    PLAN_POINTS,
    LrSchedule,
    cycle_ends,
    lr_schedule,
    schedule_points,
    snapshot_steps,
)


def _configs():
    for sched, gran, kind, epochs, batch, snaps in itertools.product(
            ("constant", "cosine", "cyclic"), ("epoch", "iteration"), ("independent", "snapshot"),
            (3, 7, 20), (1, 5, 16), (1, 3)):
        if kind == "snapshot" and sched != "cyclic":
            continue
        try:
            yield RunConfig().replace(**{"optim.schedule": sched, "optim.granularity": gran, "strategy.kind": kind,
                                         "optim.epochs": epochs, "optim.batch_size": batch,
                                         "strategy.snapshots": snaps, "optim.lr_min": 1e-3})
        except ConfigError:
            continue


@pytest.mark.parametrize("n_train", [17, 40])
def test_lazy_schedule_is_lr_schedule_bit_for_bit(n_train: int) -> None:
    for cfg in _configs():
        full = lr_schedule(cfg, n_train)
        lazy = LrSchedule(cfg, n_train)
        assert lazy.total == len(full)
        assert [lazy(i) for i in range(len(full))] == full.tolist(), cfg
        rev = np.arange(len(full))[::-1]  # any order, same values
        assert lazy.at(rev).tolist() == full[rev].tolist()


def test_cycle_ends_without_arrays() -> None:
    # the closed form agrees with the per-unit construction, and is O(cycles): 10^9 units at once
    from ensemble_core.schedules import _cycles

    for total in range(1, 40):
        for cycles in range(1, total + 1):
            assert cycle_ends(total, cycles) == _cycles(total, cycles)[2]
    t = time.perf_counter()
    assert cycle_ends(10**9, 7)[-1] == 10**9
    assert time.perf_counter() - t < 0.01


@pytest.mark.parametrize("n_train", [17, 40])
def test_schedule_points_are_exact_and_keep_restarts_and_snapshots(n_train: int) -> None:
    for cfg in _configs():
        full = lr_schedule(cfg, n_train)
        plan = schedule_points(cfg, n_train, max_points=10)
        assert plan.total == len(full)
        assert np.all(np.diff(plan.steps) > 0)
        assert plan.lrs.tolist() == full[plan.steps].tolist()  # exact at every point drawn
        assert set(plan.snapshots) == {s - 1 for s in snapshot_steps(cfg, n_train)}
        assert set(plan.snapshots) <= set(plan.steps.tolist())
        if cfg.optim.schedule == "cyclic":  # every restart: the cycle's last step and the next one's first
            spe = plan.steps_per_epoch
            units = cfg.optim.epochs if cfg.optim.granularity == "epoch" else plan.total
            for end in cycle_ends(units, cfg.strategy.snapshots)[:-1]:
                step = end * spe if cfg.optim.granularity == "epoch" else end
                assert {step - 1, step} <= set(plan.steps.tolist())
        assert len(plan.steps) <= max(10, 2 * cfg.optim.epochs) + 4 * cfg.strategy.snapshots


def test_cosine_chart_of_a_huge_run_uses_the_closed_form() -> None:
    cfg = RunConfig().replace(**{"optim.schedule": "cosine", "optim.lr_min": 1e-4})
    n = COSINE_EXACT_UNITS + 7  # batch 32: steps per epoch; 100 epochs -> far over the exact walk
    plan = schedule_points(cfg, n)
    walk = lr_schedule(cfg, n)
    assert plan.total == len(walk) > COSINE_EXACT_UNITS
    np.testing.assert_allclose(plan.lrs, walk[plan.steps], rtol=1e-9, atol=1e-15)


def _n_points(x: object) -> int:
    """Points of a Plotly trace's ``x``: a list, or a typed array ``{"dtype", "bdata"}``."""
    if isinstance(x, dict):
        import base64

        return len(np.frombuffer(base64.b64decode(x["bdata"]), dtype=x["dtype"]))
    return len(x)  # type: ignore[arg-type]


HUGE = {"data.n": 100_000, "optim.batch_size": 1, "optim.epochs": 1500}


@pytest.mark.parametrize("extra", [
    {"optim.schedule": "cosine"},
    {"optim.schedule": "cosine", "optim.granularity": "epoch"},
    {"optim.schedule": "constant"},
    {"strategy.kind": "snapshot", "optim.schedule": "cyclic", "strategy.snapshots": 20, "strategy.members": 2},
])
def test_the_train_pages_schedule_chart_of_a_huge_run_is_small(extra: dict) -> None:
    """100,000 rows, batch 1, 1,500 epochs: 1.5e8 steps; the chart once grew the server by 4.6 GB."""
    from dashboard import charts, live

    cfg = RunConfig().replace(**HUGE, **extra)
    n = 100_000
    charts._plan_spec(RunConfig(), 20)  # Plotly's one-off warm-up (imports, validators) is not the run's cost

    def build() -> tuple:
        plan = schedule_points(cfg, n)
        spec = charts._plan_spec(cfg, n)  # what lr_plan shares: the figure's JSON
        base = charts.lr_figure(cfg, n, 1)  # the live chart's base, and one live refresh of it
        assert base is not None
        return plan, spec, live._lr_spec(base.to_dict(), cfg, n, 123_456)

    t = time.perf_counter()
    build()
    seconds = time.perf_counter() - t
    tracemalloc.start()  # (slows Python down: timed apart)
    plan, spec, live_spec = build()
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert plan.total == 1500 * 100_000
    assert len(plan.steps) <= PLAN_POINTS + 100
    assert spec is not None and _n_points(spec["data"][0]["x"]) == len(plan.steps)
    assert live_spec is not None
    assert seconds < 1.0
    assert peak < 50e6, f"{peak / 1e6:.0f} MB"


def test_engine_stops_within_a_second_of_a_huge_run() -> None:
    """Batch 1 on 50,000 rows for 5,000 epochs (2.5e8 steps): the engine used to list every step first."""
    from ensemble_core.data import load_dataset
    from ensemble_core.training import train

    cfg = RunConfig().replace(**{"data.n": 50_000, "optim.batch_size": 1, "optim.epochs": 5000,
                                 "optim.schedule": "cosine", "strategy.members": 2,
                                 "data.val_fraction": 0.0, "data.test_fraction": 0.0})
    data = load_dataset(cfg.data)
    train(RunConfig().replace(**{"optim.epochs": 1}), load_dataset(RunConfig().data))  # torch's one-off imports
    t0 = time.perf_counter()
    run = train(cfg, data, should_stop=lambda: time.perf_counter() - t0 > 0.3)
    assert time.perf_counter() - t0 < 1.3  # the old engine listed 2.5e8 learning rates first (~25 s, ~12 GB)
    assert run.stopped and len(run.lr_trace) > 0
    assert run.lr_trace.tolist() == [LrSchedule(cfg, 50_000)(i) for i in range(len(run.lr_trace))]
    assert math.isclose(run.lr_trace[0], cfg.optim.lr)
