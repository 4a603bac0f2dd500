"""A sweep's trials trained as one stacked program equal their separate runs, member by member.

Oracles: the engine's own separate run of each trial (``train``) and the seed's
plain loops (``reference.train_reference``).  Every trial's members must agree
to 1e-4 relative (float32 round-off: a different learning rate, weight decay,
seed, eps or beta would show far above that), with the same learning-rate
trace and the same events.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from conftest import make_cubic, make_three_class

from ensemble_core.config import (
    ConfigError,
    DataSpec,
    LossSpec,
    ModelSpec,
    OptimSpec,
    RunConfig,
    StrategySpec,
)
from ensemble_core.costs import estimate, shape_of
from ensemble_core.data import Dataset
from ensemble_core.jobs import LimitError, Limits, check_limits
from ensemble_core.reference import train_reference
from ensemble_core.run import Done, EpochEnd, MemberDiverged, SnapshotTaken
from ensemble_core.sweep import NOT_RUN, group_cost, plan_sweep, run_sweep, stacked_config, sweep_costs
from ensemble_core.training import TrainingError, train

SMALL = ModelSpec(hidden_layers=2, width=16)
ADAM_COSINE = OptimSpec(optimizer="adam", lr=0.01, weight_decay=1e-4, batch_size=8, epochs=4, schedule="cosine",
                        granularity="iteration", lr_min=1e-4)


def _x(data: Dataset) -> torch.Tensor:
    return torch.as_tensor(data.scale_x(np.concatenate([data.x_train, data.x_test])), dtype=torch.float32)


def _assert_members_equal(ours: torch.Tensor, theirs: torch.Tensor, what: str) -> None:
    scale = max(1.0, float(theirs.abs().max()))
    diff = float((ours - theirs).abs().max())
    assert diff <= 1e-4 * scale, f"{what}: max |batched - separate| = {diff:.3g}"


def _assert_same_as_separate(trial_run, separate, data: Dataset) -> None:  # noqa: ANN001
    """Member by member, the trial's run equals its separate engine run (weights, trace, events)."""
    assert np.array_equal(trial_run.lr_trace, separate.lr_trace)
    assert [(m.trajectory, m.snapshot, m.seed, m.epoch, m.status) for m in trial_run.members] == \
        [(m.trajectory, m.snapshot, m.seed, m.epoch, m.status) for m in separate.members]
    x = _x(data)
    with torch.no_grad():
        ours, theirs = trial_run.model(x), separate.model(x)
    for i in range(len(separate.members)):
        _assert_members_equal(ours[i], theirs[i], f"member {i}")
    kinds = [type(e).__name__ for e in trial_run.history]
    assert kinds == [type(e).__name__ for e in separate.history]
    for a, b in zip(trial_run.history, separate.history):
        if isinstance(a, EpochEnd):
            assert a.epoch == b.epoch and a.lrs == b.lrs
            np.testing.assert_allclose(a.train_loss, b.train_loss, rtol=1e-4)
            assert a.val.keys() == b.val.keys()
            for k in a.val:
                assert a.val[k] == pytest.approx(b.val[k], rel=1e-4, abs=1e-6)
        elif isinstance(a, SnapshotTaken | MemberDiverged):
            assert (a.trajectory, a.epoch) == (b.trajectory, b.epoch)


def _check_sweep(base: RunConfig, trials: list[dict], data: Dataset, *, groups: list[tuple[int, ...]]) -> list:
    plan = plan_sweep(base, trials)
    assert [g.trials for g in plan.groups] == groups
    seen: dict[int, list] = {}
    result = run_sweep(plan, data, on_event=lambda i, e: seen.setdefault(i, []).append(e))
    assert [t.trial.index for t in result.trials] == list(range(len(trials)))
    for t in result.trials:
        assert t.status == "done", t.error
        assert t.run.config == base.replace(**trials[t.trial.index])
        assert seen[t.trial.index] == t.run.history  # the events went to the right trial
        assert isinstance(t.run.history[-1], Done)
        _assert_same_as_separate(t.run, train(t.run.config, data), data)
    return result.trials


def test_learning_rate_sweep_is_one_program_equal_to_separate_runs() -> None:
    data = make_cubic(n_train=37, n_val=8, n_test=8)
    base = RunConfig(model=SMALL, strategy=StrategySpec(members=3), optim=ADAM_COSINE)
    trials = [{"optim.lr": lr} for lr in (0.001, 0.003, 0.01, 0.03)]
    out = _check_sweep(base, trials, data, groups=[(0, 1, 2, 3)])
    assert all(t.batched for t in out)
    # the learning rate really differs between the trials' members
    x = _x(data)
    with torch.no_grad():
        assert float((out[0].run.model(x) - out[3].run.model(x)).abs().max()) > 1e-2


def test_learning_rate_sweep_equals_the_reference_loops() -> None:
    data = make_cubic(n_train=37, n_val=8, n_test=8)
    base = RunConfig(model=SMALL, strategy=StrategySpec(members=2), optim=ADAM_COSINE)
    result = run_sweep(plan_sweep(base, [{"optim.lr": 0.002}, {"optim.lr": 0.02, "seed": 4}]), data)
    x = _x(data)
    for t in result.trials:
        ref = train_reference(t.run.config, data)
        assert np.array_equal(t.run.lr_trace, ref.lr_trace)
        with torch.no_grad():
            ours = t.run.model(x)
            for i, member in enumerate(ref.models):
                _assert_members_equal(ours[i], member(x), f"trial {t.trial.index} member {i} vs reference")


def test_weight_decay_seed_and_lr_min_sweep_with_sgd() -> None:
    data = make_cubic(n_train=37, n_val=8, n_test=8)
    base = RunConfig(model=SMALL, strategy=StrategySpec(kind="bootstrap", members=2),
                     optim=OptimSpec(optimizer="sgd", lr=0.02, momentum=0.9, batch_size=8, epochs=4,
                                     schedule="cosine", granularity="epoch"))
    trials = [{"optim.weight_decay": 0.0}, {"optim.weight_decay": 0.05, "seed": 7},
              {"seed": 2, "optim.lr_min": 0.01}, {"optim.weight_decay": 0.01, "optim.lr": 0.05}]
    out = _check_sweep(base, trials, data, groups=[(0, 1, 2, 3)])
    assert out[1].run.members[0].seed == 7000 and out[2].run.members[1].seed == 2001


def test_adversarial_eps_sweep() -> None:
    data = make_cubic(n_train=37, n_val=8, n_test=8)
    base = RunConfig(model=SMALL, strategy=StrategySpec(members=2, adversarial=True),
                     optim=OptimSpec(lr=0.01, batch_size=8, epochs=3))
    _check_sweep(base, [{"strategy.adversarial_eps": e} for e in (0.01, 0.05, 0.2)], data, groups=[(0, 1, 2)])


def test_beta_nll_beta_sweep() -> None:
    data = make_cubic(n_train=37, n_val=8, n_test=8)
    base = RunConfig(model=SMALL, loss=LossSpec(kind="beta_nll", beta=0.5), strategy=StrategySpec(members=2),
                     optim=OptimSpec(lr=0.01, batch_size=8, epochs=3))
    _check_sweep(base, [{"loss.beta": b} for b in (0.0, 0.5, 1.0)], data, groups=[(0, 1, 2)])


def test_snapshot_learning_rate_sweep() -> None:
    data = make_cubic(n_train=37, n_val=8, n_test=8)
    base = RunConfig(model=SMALL, strategy=StrategySpec(kind="snapshot", members=2, snapshots=3),
                     optim=OptimSpec(optimizer="sgd", lr=0.05, lr_min=1e-4, batch_size=8, epochs=6,
                                     schedule="cyclic", granularity="epoch"))
    out = _check_sweep(base, [{"optim.lr": lr} for lr in (0.01, 0.05)], data, groups=[(0, 1)])
    assert len(out[0].run.members) == 6


def test_classification_sweep() -> None:
    data = make_three_class(n_train=37, n_val=8, n_test=8)
    base = RunConfig(data=DataSpec(name="blobs", n_classes=3), model=SMALL, strategy=StrategySpec(members=2),
                     optim=OptimSpec(optimizer="adam", lr=0.01, batch_size=8, epochs=3))
    _check_sweep(base, [{"optim.lr": 0.003}, {"optim.lr": 0.03, "optim.weight_decay": 1e-3}], data,
                 groups=[(0, 1)])


def test_trials_that_change_the_program_run_on_their_own() -> None:
    data = make_cubic(n_train=37, n_val=8, n_test=8)
    base = RunConfig(model=SMALL, strategy=StrategySpec(members=2), optim=OptimSpec(lr=0.01, batch_size=8, epochs=2))
    trials = [{"optim.lr": 0.01}, {"model.width": 8}, {"optim.lr": 0.003}, {"strategy.members": 3},
              {"optim.batch_size": 4}, {"model.width": 8, "optim.lr": 0.1}]
    out = _check_sweep(base, trials, data, groups=[(0, 2), (1, 5), (3,), (4,)])
    assert [t.batched for t in out] == [True, True, True, False, False, True]
    # unbatched plan: every trial alone
    assert [g.trials for g in plan_sweep(base, trials, batched=False).groups] == [(i,) for i in range(6)]
    # groups are split to hold at most max_group_trajectories
    split = plan_sweep(base, [{"optim.lr": 0.001 * (i + 1)} for i in range(5)], max_group_trajectories=4)
    assert [g.trials for g in split.groups] == [(0, 1), (2, 3), (4,)]


def test_stop_ends_the_sweep_and_keeps_the_partial_trials() -> None:
    data = make_cubic(n_train=40, n_val=8, n_test=8)  # 5 steps per epoch
    base = RunConfig(model=SMALL, strategy=StrategySpec(members=2), optim=OptimSpec(lr=0.01, batch_size=8, epochs=4))
    trials = [{"optim.lr": 0.01}, {"optim.lr": 0.02}, {"model.width": 8}]
    calls = iter([False] * 7 + [True] * 100)
    result = run_sweep(plan_sweep(base, trials), data, should_stop=calls.__next__)
    assert result.stopped
    assert [t.status for t in result.trials] == ["stopped", "stopped", "not run"]
    assert result.trials[2].error == NOT_RUN and result.trials[2].run is None
    for t in result.trials[:2]:
        assert len(t.run.lr_trace) == 7 and t.run.epochs_done == 1
        alone = train(t.run.config, data, should_stop=iter([False] * 7 + [True]).__next__)
        _assert_same_as_separate(t.run, alone, data)


def test_a_diverging_trial_fails_alone() -> None:
    data = make_cubic(n_train=37, n_val=8, n_test=8)
    base = RunConfig(model=ModelSpec(hidden_layers=2, width=16, activation="tanh"), loss=LossSpec(kind="mse"),
                     strategy=StrategySpec(members=2),
                     optim=OptimSpec(optimizer="sgd", lr=0.01, momentum=0.9, batch_size=8, epochs=4))
    # lr 90: the loss becomes infinite in epoch 2; the other trials then step through the masked path
    trials = [{"optim.lr": 0.01}, {"optim.lr": 90.0}, {"optim.lr": 0.02}]
    seen: dict[int, list] = {}
    result = run_sweep(plan_sweep(base, trials), data, on_event=lambda i, e: seen.setdefault(i, []).append(e))
    assert [t.status for t in result.trials] == ["done", "failed", "done"]
    alone: list = []
    with pytest.raises(TrainingError) as exc:
        train(base.replace(**trials[1]), data, on_event=alone.append)
    assert result.trials[1].error == str(exc.value)
    # the failed trial's events are its own run's: they end where that run ended
    assert [(type(e).__name__, getattr(e, "epoch", None)) for e in seen[1]] == \
        [(type(e).__name__, getattr(e, "epoch", None)) for e in alone]
    for i in (0, 2):
        _assert_same_as_separate(result.trials[i].run, train(base.replace(**trials[i]), data), data)


def test_costs_are_the_stacked_programs() -> None:
    data = make_cubic(n_train=1000, n_val=8, n_test=8)
    base = RunConfig(model=ModelSpec(hidden_layers=2, width=50), strategy=StrategySpec(members=5),
                     optim=OptimSpec(batch_size=64, epochs=100))
    plan = plan_sweep(base, [{"optim.lr": 0.001 * (i + 1)} for i in range(8)] + [{"model.width": 20}])
    costs = sweep_costs(plan, data)
    alone = estimate(base, shape_of(base, data))
    assert costs[0].members == 40 and costs[0].steps == alone.steps
    assert costs[0].cpu_seconds > 2 * alone.cpu_seconds and costs[0].peak_bytes > alone.peak_bytes
    assert costs[1] == group_cost(plan.groups[1], data) and costs[1].members == 5
    assert stacked_config(plan.groups[1]) == plan.groups[1].configs[0]
    # the limits apply to the stacked program: each trial fits, the group of 8 does not
    limits = Limits(max_work=1.2 * 5 * 2851 * 100 * 1000)
    check_limits(base, data, limits)
    with pytest.raises(LimitError, match="40 members"):
        check_limits(stacked_config(plan.groups[0]), data, limits)


def test_bad_trials_are_refused_with_the_trial_named() -> None:
    base = RunConfig()
    with pytest.raises(ConfigError, match="trial 2: optim.lr"):
        plan_sweep(base, [{"optim.lr": 0.1}, {"optim.lr": -1.0}])
    with pytest.raises(ConfigError, match="trial 1: .*unknown"):
        plan_sweep(base, [{"optim.nope": 1}])
    with pytest.raises(ConfigError, match="list"):
        plan_sweep(base, {"optim.lr": 0.1})  # type: ignore[arg-type]
