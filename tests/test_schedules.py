"""Learning-rate schedules against torch's CosineAnnealingLR and the closed forms."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from ensemble_core.config import OptimSpec, RunConfig, StrategySpec
from ensemble_core.schedules import (
    cosine_annealing,
    cyclic_cosine,
    lr_schedule,
    snapshot_steps,
    steps_per_epoch,
)


def _torch_cosine(lr: float, lr_min: float, t_max: int, n: int) -> list[float]:
    opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=lr)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=t_max, eta_min=lr_min)
    out = []
    for _ in range(n):
        out.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    return out


def _cfg(**kw: object) -> RunConfig:
    strategy = kw.pop("strategy", StrategySpec())
    return RunConfig(strategy=strategy, optim=OptimSpec(**kw))  # type: ignore[arg-type]


@pytest.mark.parametrize("lr,lr_min,t_max", [(1e-3, 0.0, 50), (0.1, 1e-4, 7), (0.01, 0.005, 1), (0.3, 0.0, 3)])
def test_cosine_equals_torch_scheduler_exactly(lr: float, lr_min: float, t_max: int) -> None:
    assert cosine_annealing(lr, lr_min, t_max, t_max).tolist() == _torch_cosine(lr, lr_min, t_max, t_max)


def test_cosine_close_to_closed_form() -> None:
    k = np.arange(30)
    closed = 1e-4 + (0.1 - 1e-4) * (1 + np.cos(np.pi * k / 30)) / 2
    np.testing.assert_allclose(cosine_annealing(0.1, 1e-4, 30, 30), closed, rtol=1e-12)


def test_lr_schedule_cosine_per_epoch_is_the_seed_scheduler() -> None:
    cfg = _cfg(lr=1e-3, lr_min=0.0, epochs=12, batch_size=16, schedule="cosine", granularity="epoch")
    n = 50  # 4 steps per epoch, the last one short
    lrs = lr_schedule(cfg, n)
    assert steps_per_epoch(16, n) == 4 and lrs.shape == (48,)
    per_epoch = _torch_cosine(1e-3, 0.0, 12, 12)
    assert lrs.tolist() == [v for v in per_epoch for _ in range(4)]


def test_lr_schedule_cosine_per_iteration() -> None:
    cfg = _cfg(lr=0.05, lr_min=1e-3, epochs=3, batch_size=10, schedule="cosine", granularity="iteration")
    lrs = lr_schedule(cfg, 25)  # 3 steps per epoch -> 9 steps, T_max = 9
    assert lrs.tolist() == _torch_cosine(0.05, 1e-3, 9, 9)


def test_constant_and_batch_cap() -> None:
    cfg = _cfg(lr=0.02, epochs=5, batch_size=500, schedule="constant")
    lrs = lr_schedule(cfg, 30)  # batch capped at 30 rows -> 1 step per epoch
    assert lrs.tolist() == [0.02] * 5


def test_cyclic_per_iteration_is_huang_closed_form() -> None:
    """lr(t) = lr0/2 * (cos(pi * ((t-1) mod ceil(T/M)) / ceil(T/M)) + 1), t = 1..T."""
    lr0, epochs, n, batch, m = 0.1, 10, 40, 8, 3  # T = 50 steps, ceil(50/3) = 17
    cfg = _cfg(optimizer="sgd", lr=lr0, lr_min=0.0, epochs=epochs, batch_size=batch, schedule="cyclic",
               granularity="iteration", strategy=StrategySpec(kind="snapshot", members=1, snapshots=m))
    lrs = lr_schedule(cfg, n)
    big_t = epochs * math.ceil(n / batch)
    c = math.ceil(big_t / m)
    expected = [lr0 / 2 * (math.cos(math.pi * ((t - 1) % c) / c) + 1) for t in range(1, big_t + 1)]
    assert lrs.tolist() == expected
    assert snapshot_steps(cfg, n) == [17, 34, 50]
    assert lrs[0] == lr0 and lrs[17] == lr0 and lrs[34] == lr0  # restarts after each snapshot


def test_cyclic_per_epoch_is_the_seed_form() -> None:
    """Seed: lr_min + 0.5*(lr_max-lr_min)*(1+cos(pi*cycle_epoch/epochs_per_cycle)), set once per epoch."""
    lr_max, lr_min, per_cycle, cycles, n, batch = 0.1, 1e-4, 4, 5, 20, 8
    cfg = _cfg(optimizer="sgd", lr=lr_max, lr_min=lr_min, epochs=per_cycle * cycles, batch_size=batch,
               schedule="cyclic", granularity="epoch",
               strategy=StrategySpec(kind="snapshot", members=1, snapshots=cycles))
    spe = 3
    expected = []
    for epoch in range(per_cycle * cycles):
        cycle_epoch = epoch % per_cycle
        expected += [lr_min + 0.5 * (lr_max - lr_min) * (1 + math.cos(math.pi * cycle_epoch / per_cycle))] * spe
    assert lr_schedule(cfg, n).tolist() == expected
    assert snapshot_steps(cfg, n) == [4 * spe, 8 * spe, 12 * spe, 16 * spe, 20 * spe]


def test_cyclic_fallback_keeps_every_cycle() -> None:
    # ceil(4/3) = 2 would give only 2 cycles; fall back to cycles of 1, 1, 2 epochs
    lrs = cyclic_cosine(0.1, 0.0, 4, 3)
    assert lrs.tolist() == [0.1, 0.1, 0.1, 0.05 * (1 + math.cos(math.pi / 2))]
    cfg = _cfg(optimizer="sgd", lr=0.1, epochs=4, batch_size=10, schedule="cyclic", granularity="epoch",
               strategy=StrategySpec(kind="snapshot", members=1, snapshots=3))
    assert snapshot_steps(cfg, 10) == [1, 2, 4]


def test_no_snapshots_for_other_strategies() -> None:
    cfg = _cfg(lr=0.1, epochs=6, schedule="cyclic", strategy=StrategySpec(kind="independent", snapshots=3))
    assert snapshot_steps(cfg, 10) == []
    assert len(lr_schedule(cfg, 10)) == 6


def test_bad_inputs() -> None:
    with pytest.raises(ValueError, match="n_train"):
        steps_per_epoch(8, 0)
    with pytest.raises(ValueError, match="cycle"):
        cyclic_cosine(0.1, 0.0, 2, 3)
