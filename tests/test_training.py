"""The engine's behaviour: schedule use, determinism, events, stop, divergence, guards."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from conftest import make_cubic, make_three_class, make_two_class
from torch.utils.data import DataLoader, TensorDataset

from ensemble_core.config import DataSpec, LossSpec, ModelSpec, OptimSpec, RunConfig, StrategySpec
from ensemble_core.data import Dataset
from ensemble_core.models import StackedMLP
from ensemble_core.predict import combine_regression
from ensemble_core.run import Done, EpochEnd, MemberDiverged, Preview, Run, SnapshotTaken
from ensemble_core.schedules import lr_schedule, snapshot_steps, steps_per_epoch
from ensemble_core.strategies import (
    DataStreams,
    bootstrap_indices,
    dataloader_epoch_order,
    fgsm_eps,
    member_seed,
)
from ensemble_core.training import TrainingError, train

SMALL = ModelSpec(hidden_layers=2, width=16)


def _cfg(**kw: object) -> RunConfig:
    kw.setdefault("model", SMALL)
    kw.setdefault("optim", OptimSpec(batch_size=8, epochs=3, lr=0.01))
    return RunConfig(**kw)  # type: ignore[arg-type]


def _weights(run: Run) -> list[torch.Tensor]:
    return [p.detach().clone() for p in run.model.parameters()]  # type: ignore[attr-defined]


def _std_x(data: Dataset, x: np.ndarray) -> torch.Tensor:
    return torch.as_tensor(data.scale_x(x), dtype=torch.float32)


# ------------------------------------------------------------------ strategies
def test_dataloader_epoch_order_matches_a_real_dataloader() -> None:
    n = 23
    loader = DataLoader(TensorDataset(torch.arange(n)), batch_size=5, shuffle=True,
                        generator=torch.Generator().manual_seed(42))
    g = torch.Generator().manual_seed(42)
    for _ in range(3):
        seen = torch.cat([b[0] for b in loader])
        assert torch.equal(seen, dataloader_epoch_order(g, n))


def test_streams_seeds_and_bootstrap() -> None:
    cfg = _cfg(seed=3, strategy=StrategySpec(kind="bootstrap", members=3))
    assert [member_seed(cfg, k) for k in range(3)] == [3000, 3001, 3002]
    streams = DataStreams(cfg, 20)
    order = streams.next_epoch()
    assert order.shape == (3, 20)
    for k in range(3):
        rows = bootstrap_indices(3000 + k, 20)
        assert np.array_equal(rows, np.random.default_rng(3000 + k).choice(20, 20, replace=True))
        # each epoch is a permutation of the member's own resample
        assert sorted(order[k].tolist()) == sorted(rows.tolist())
    assert not torch.equal(order[0], order[1])
    independent = DataStreams(_cfg(strategy=StrategySpec(members=2)), 20).next_epoch()
    assert sorted(independent[0].tolist()) == list(range(20))


def test_fgsm_eps_is_fraction_of_standardised_range() -> None:
    x = np.array([[0.0, 5.0], [2.0, 5.0], [1.0, 5.0]])
    assert np.allclose(fgsm_eps(x, 0.01), [0.02, 0.0])


# ------------------------------------------------------------- schedule use
@pytest.mark.parametrize("kind,schedule,gran", [("independent", "cosine", "epoch"),
                                                ("bootstrap", "constant", "iteration"),
                                                ("snapshot", "cyclic", "iteration"),
                                                ("snapshot", "cyclic", "epoch")])
def test_lr_trace_is_lr_schedule(kind: str, schedule: str, gran: str) -> None:
    data = make_cubic(n_train=21)
    cfg = _cfg(strategy=StrategySpec(kind=kind, members=2, snapshots=2),  # type: ignore[arg-type]
               optim=OptimSpec(optimizer="sgd", lr=0.05, lr_min=1e-3, batch_size=8, epochs=4,
                               schedule=schedule, granularity=gran))  # type: ignore[arg-type]
    events: list = []
    run = train(cfg, data, on_event=events.append)
    expected = lr_schedule(cfg, 21)
    assert len(expected) == 4 * steps_per_epoch(8, 21) == 12
    assert np.array_equal(run.lr_trace, expected)
    epochs = [e for e in events if isinstance(e, EpochEnd)]
    assert np.array_equal(np.concatenate([e.lrs for e in epochs]), expected)
    if kind == "snapshot":
        snaps = [e for e in events if isinstance(e, SnapshotTaken)]
        assert sorted({e.step for e in snaps}) == snapshot_steps(cfg, 21)
        assert len(snaps) == 2 * 2 and len(run.members) == 4
        assert [(m.trajectory, m.snapshot) for m in run.members] == [(0, 0), (0, 1), (1, 0), (1, 1)]


# -------------------------------------------------------------- determinism
def test_same_config_twice_gives_identical_weights_and_no_global_rng_leak() -> None:
    data = make_cubic()
    cfg = _cfg(strategy=StrategySpec(kind="bootstrap", members=3))
    torch.manual_seed(0)
    state = torch.get_rng_state()
    a = train(cfg, data)
    assert torch.equal(torch.get_rng_state(), state), "train() must not consume the global torch RNG"
    b = train(cfg, data)
    for pa, pb in zip(_weights(a), _weights(b)):
        assert torch.equal(pa, pb)


def test_different_seeds_give_different_members() -> None:
    data = make_cubic()
    a = train(_cfg(seed=1, strategy=StrategySpec(members=2)), data)
    b = train(_cfg(seed=2, strategy=StrategySpec(members=2)), data)
    x = _std_x(data, data.x_test)
    with torch.no_grad():
        out_a, out_b = a.model(x), b.model(x)
    assert float((out_a - out_b).abs().max()) > 1e-3
    assert float((out_a[0] - out_a[1]).abs().max()) > 1e-3  # members of one run differ too
    assert [m.seed for m in a.members] == [1000, 1001]


def test_ensemble_of_one_member_is_that_member() -> None:
    data = make_cubic()
    run = train(_cfg(strategy=StrategySpec(members=1)), data)
    assert len(run.members) == 1 and run.healthy == [0]
    x = _std_x(data, data.x_test)
    member = run.model.member(0)  # type: ignore[attr-defined]
    with torch.no_grad():
        out = member(x).double()
    mean = data.unscale_mean(out[:, 0].numpy())
    var = data.unscale_var((torch.nn.functional.softplus(out[:, 1]) + 1e-6).numpy())
    pred = combine_regression(mean[None], var[None])
    assert np.array_equal(pred.mean, mean)
    assert np.array_equal(pred.aleatoric, var)
    assert np.array_equal(pred.epistemic, np.zeros_like(mean))
    # and the last EpochEnd's validation metrics are this member's
    from ensemble_core import metrics

    last = [e for e in run.history if isinstance(e, EpochEnd)][-1]
    with torch.no_grad():
        ov = member(_std_x(data, data.x_val)).double()
    mv = data.unscale_mean(ov[:, 0].numpy())
    vv = data.unscale_var((torch.nn.functional.softplus(ov[:, 1]) + 1e-6).numpy())
    assert last.val["rmse"] == pytest.approx(metrics.rmse(data.y_val, mv), rel=1e-5)
    assert last.val["nll"] == pytest.approx(metrics.gaussian_nll(data.y_val, mv, vv), rel=1e-5)


# -------------------------------------------------------------------- events
def test_events_and_run_fields_classification() -> None:
    data = make_three_class()
    events: list = []
    cfg = _cfg(data=DataSpec(name="blobs", n_classes=3), strategy=StrategySpec(members=2))
    run = train(cfg, data, on_event=events.append)
    assert events == run.history
    kinds = [e.kind for e in events]
    assert kinds == ["epoch"] * 3 + ["done"]
    e = events[0]
    assert isinstance(e, EpochEnd) and e.epoch == 1 and e.n_epochs == 3
    assert len(e.train_loss) == 2 and e.train_acc is not None and len(e.train_acc) == 2
    assert all(0.0 <= a <= 1.0 for a in e.train_acc)
    assert set(e.val) == {"nll", "accuracy"}
    assert len(e.lrs) == steps_per_epoch(8, len(data.x_train))
    assert events[-1] == Done(epochs_done=3, stopped=False, seconds=events[-1].seconds)
    assert run.task == "classification" and run.n_classes == 3 and run.class_names == ["0", "1", "2"]
    assert not run.model.training  # type: ignore[attr-defined]
    assert next(run.model.parameters()).device.type == "cpu"  # type: ignore[attr-defined]
    assert run.epochs_done == 3 and not run.stopped


def test_epoch_loss_is_the_mean_training_loss() -> None:
    from ensemble_core.reference import train_reference

    data = make_cubic(n_train=37)
    cfg = _cfg(strategy=StrategySpec(members=2), optim=OptimSpec(batch_size=8, epochs=2, lr=0.01))
    run = train(cfg, data)
    ref = train_reference(cfg, data)
    losses = np.array([e.train_loss for e in run.history if isinstance(e, EpochEnd)])
    np.testing.assert_allclose(losses.T, np.array(ref.epoch_losses), rtol=1e-4)


def test_previews() -> None:
    data = make_cubic()
    grid = np.linspace(-6, 6, 11)
    run = train(_cfg(optim=OptimSpec(batch_size=8, epochs=5)), data, preview_x=grid, preview_every=2)
    previews = [e for e in run.history if isinstance(e, Preview)]
    assert [p.epoch for p in previews] == [2, 4, 5]
    pred = previews[-1].prediction
    assert pred.mean.shape == (11,) and np.all(pred.total > 0)  # type: ignore[attr-defined]
    with pytest.raises(TrainingError, match="preview_x"):
        train(_cfg(), data, preview_x=np.zeros((3, 2)), preview_every=1)


# ---------------------------------------------------------------------- stop
def test_should_stop_after_k_batches_gives_a_valid_partial_run() -> None:
    data = make_cubic(n_train=40)  # 5 batches per epoch
    calls = {"n": 0}

    def stop_after_7() -> bool:
        calls["n"] += 1
        return calls["n"] > 7

    cfg = _cfg(strategy=StrategySpec(members=3), optim=OptimSpec(batch_size=8, epochs=10))
    run = train(cfg, data, should_stop=stop_after_7)
    assert run.stopped and run.epochs_done == 1
    assert len(run.lr_trace) == 7
    assert isinstance(run.history[-1], Done) and run.history[-1].stopped
    assert len(run.members) == 3 and run.healthy == [0, 1, 2]
    x = _std_x(data, data.x_test)
    with torch.no_grad():
        out = run.model(x)
    assert torch.isfinite(out).all()
    # the partial run equals a run of the same config stopped at the same step
    again = train(cfg, data, should_stop=iter([False] * 7 + [True]).__next__)
    for pa, pb in zip(_weights(run), _weights(again)):
        assert torch.equal(pa, pb)


def test_stop_in_snapshot_run_keeps_snapshots_taken() -> None:
    data = make_cubic(n_train=16)  # 2 batches per epoch
    cfg = _cfg(strategy=StrategySpec(kind="snapshot", members=2, snapshots=3),
               optim=OptimSpec(optimizer="sgd", lr=0.05, batch_size=8, epochs=6, schedule="cyclic",
                               granularity="epoch"))
    steps = snapshot_steps(cfg, 16)  # [4, 8, 12]
    run = train(cfg, data, should_stop=iter([False] * (steps[1] + 1) + [True] * 100).__next__)
    assert run.stopped
    assert [(m.trajectory, m.snapshot) for m in run.members] == [(0, 0), (0, 1), (1, 0), (1, 1)]
    assert [m.epoch for m in run.members] == [2, 4, 2, 4]
    # before any snapshot: the current weights
    early = train(cfg, data, should_stop=iter([False] * 3 + [True] * 100).__next__)
    assert early.stopped and len(early.members) == 2 and early.healthy == [0, 1]


# --------------------------------------------------------------- divergence
def _poison_member(k: int):  # noqa: ANN202
    def hook(model: StackedMLP) -> None:
        with torch.no_grad():
            model.weights[1][k].fill_(float("nan"))

    return hook


def test_poisoned_member_is_flagged_and_others_finish() -> None:
    data = make_cubic()
    events: list = []
    cfg = _cfg(strategy=StrategySpec(members=3))
    run = train(cfg, data, on_event=events.append, init_hook=_poison_member(1))
    div = [e for e in events if isinstance(e, MemberDiverged)]
    assert len(div) == 1 and div[0].trajectory == 1 and div[0].epoch == 1
    assert div[0].reason == "the loss became NaN at epoch 1 (learning rate too high?)"
    assert run.healthy == [0, 2]
    assert run.members[1].status == "diverged" and "NaN" in run.members[1].reason
    x = _std_x(data, data.x_test)
    with torch.no_grad():
        out = run.model(x)
    assert torch.isfinite(out[[0, 2]]).all()
    ep = [e for e in events if isinstance(e, EpochEnd)]
    assert all(np.isnan(e.train_loss[1]) and np.isfinite(e.train_loss[0]) for e in ep)
    assert all(np.isfinite(v) for v in ep[-1].val.values())
    # healthy members are exactly what they would be without the poisoned neighbour
    clean = train(cfg, data)
    with torch.no_grad():
        assert torch.equal(clean.model(x)[[0, 2]], out[[0, 2]])


def test_divergence_in_a_stopped_partial_epoch_is_reported() -> None:
    data = make_cubic(n_train=40)  # 5 batches per epoch
    run = train(_cfg(strategy=StrategySpec(members=2)), data, init_hook=_poison_member(0),
                should_stop=iter([False, False, True]).__next__)
    assert run.stopped and run.epochs_done == 0 and len(run.lr_trace) == 2
    div = [e for e in run.history if isinstance(e, MemberDiverged)]
    assert [(e.trajectory, e.epoch) for e in div] == [(0, 1)]
    assert [m.status for m in run.members] == ["diverged", "ok"] and run.healthy == [1]


def test_huge_learning_rate_diverges() -> None:
    data = make_cubic()
    events: list = []
    cfg = _cfg(strategy=StrategySpec(members=2),
               optim=OptimSpec(optimizer="sgd", lr=100.0, momentum=0.9, batch_size=8, epochs=20))
    try:
        run = train(cfg, data, on_event=events.append)
    except TrainingError as exc:  # every member diverged: allowed, with the human message
        assert "lower the learning rate" in str(exc)
        run = None
    div = [e for e in events if isinstance(e, MemberDiverged)]
    assert div, "SGD with lr=100 must make at least one member diverge"
    assert all(e.reason.endswith(f"at epoch {e.epoch} (learning rate too high?)") for e in div)
    if run is not None:  # the survivors are finite and usable
        assert run.healthy and len(run.healthy) == 2 - len(div)
        with torch.no_grad():
            assert torch.isfinite(run.model(_std_x(data, data.x_test))[run.healthy]).all()


def test_all_members_diverged_raises_after_the_events() -> None:
    data = make_cubic()
    events: list = []

    def poison_all(model: StackedMLP) -> None:
        with torch.no_grad():
            model.biases[0].fill_(float("inf"))

    with pytest.raises(TrainingError, match=r"all 3 members diverged \(member 0: the loss became NaN at epoch 1 "
                                            r"\(learning rate too high\?\);.*\); lower the learning rate"):
        train(_cfg(strategy=StrategySpec(members=3)), data, on_event=events.append, init_hook=poison_all)
    assert [e.trajectory for e in events if isinstance(e, MemberDiverged)] == [0, 1, 2]
    assert not any(isinstance(e, Done) for e in events)
    assert len([e for e in events if isinstance(e, EpochEnd)]) == 1  # stops once nothing is left to train


def test_snapshot_trajectory_diverging_keeps_other_trajectory() -> None:
    data = make_cubic(n_train=16)
    cfg = _cfg(strategy=StrategySpec(kind="snapshot", members=2, snapshots=2),
               optim=OptimSpec(optimizer="sgd", lr=0.05, batch_size=8, epochs=4, schedule="cyclic"))
    run = train(cfg, data, init_hook=_poison_member(0))
    assert [m.status for m in run.members] == ["diverged", "diverged", "ok", "ok"]
    assert run.healthy == [2, 3]
    assert sum(isinstance(e, SnapshotTaken) for e in run.history) == 2  # only the healthy trajectory's


# ------------------------------------------------------------------- guards
def test_regression_loss_on_classification_data_is_refused() -> None:
    data = make_two_class()
    cfg = _cfg(data=DataSpec(name="moons"), loss=LossSpec(kind="mse"))
    with pytest.raises(TrainingError, match="loss 'mse' is a regression loss; classification always trains "
                                            "with cross-entropy"):
        train(cfg, data)
    with pytest.raises(TrainingError, match="'beta_nll' is a regression loss"):
        train(cfg.replace(**{"loss.kind": "beta_nll"}), data)


def test_task_mismatch_is_refused() -> None:
    with pytest.raises(TrainingError, match=r"config describes a regression data set \('cubic'\) but the data "
                                            "is a classification task"):
        train(_cfg(), make_two_class())


def _with(data: Dataset, **changes: object) -> Dataset:
    import dataclasses

    return dataclasses.replace(data, **changes)


def test_bad_data_is_refused_with_clear_messages() -> None:
    cubic = make_cubic()
    cfg = _cfg()
    x_nan = cubic.x_train.copy()
    x_nan[3, 0] = np.nan
    with pytest.raises(TrainingError, match="training inputs contain NaN or infinite values"):
        train(cfg, _with(cubic, x_train=x_nan))
    with pytest.raises(TrainingError, match="training split is empty"):
        train(cfg, _with(cubic, x_train=np.zeros((0, 1)), y_train=np.zeros(0)))
    with pytest.raises(TrainingError, match="target is constant"):
        train(cfg, _with(cubic, y_std=0.0))
    with pytest.raises(TrainingError, match="must be a Dataset"):
        train(cfg, {"x": 1})  # type: ignore[arg-type]
    blobs = make_two_class()
    cls_cfg = _cfg(data=DataSpec(name="moons"))
    with pytest.raises(TrainingError, match="at least 2 classes, got 1"):
        train(cls_cfg, _with(blobs, class_names=["0"]))
    bad = blobs.y_train.copy()
    bad[0] = 5
    with pytest.raises(TrainingError, match=r"training labels must be class indices 0..1"):
        train(cls_cfg, _with(blobs, y_train=bad))


def test_batch_larger_than_data_and_tiny_data() -> None:
    data = make_cubic(n_train=5, n_val=0, n_test=2)
    run = train(_cfg(optim=OptimSpec(batch_size=512, epochs=3)), data)
    assert len(run.lr_trace) == 3  # one (capped) batch per epoch
    assert all(e.val == {} for e in run.history if isinstance(e, EpochEnd))


# -------------------------------------------------------------- adversarial
def test_adversarial_training_runs_and_differs() -> None:
    data = make_cubic()
    plain = train(_cfg(strategy=StrategySpec(members=2)), data)
    adv = train(_cfg(strategy=StrategySpec(members=2, adversarial=True, adversarial_eps=0.05)), data)
    x = _std_x(data, data.x_test)
    with torch.no_grad():
        a, b = plain.model(x), adv.model(x)
    assert torch.isfinite(b).all()
    assert float((a - b).abs().max()) > 1e-4


def test_mse_ensemble_and_device_auto() -> None:
    data = make_cubic()
    run = train(_cfg(loss=LossSpec(kind="mse"), device="auto"), data)
    assert run.model.out_features == 1  # type: ignore[attr-defined]
    last = [e for e in run.history if isinstance(e, EpochEnd)][-1]
    assert np.isfinite(last.val["nll"]) and last.val["rmse"] > 0
    assert next(run.model.parameters()).device.type == "cpu"  # type: ignore[attr-defined]


def test_previews_are_spaced_in_time() -> None:
    """``preview_min_s`` drops the previews due within that time of the last one; the last epoch's stays."""
    data = make_cubic()
    grid = np.linspace(-6, 6, 9)[:, None]
    cfg = _cfg(optim=OptimSpec(batch_size=8, epochs=6))
    every = train(cfg, data, preview_x=grid, preview_every=1, preview_min_s=0.0)
    assert [e.epoch for e in every.history if isinstance(e, Preview)] == [1, 2, 3, 4, 5, 6]
    spaced = train(cfg, data, preview_x=grid, preview_every=1, preview_min_s=3600.0)
    assert [e.epoch for e in spaced.history if isinstance(e, Preview)] == [1, 6]  # the first, then only the last
    last = [e for e in spaced.history if isinstance(e, Preview)][-1].prediction
    ref = [e for e in every.history if isinstance(e, Preview)][-1].prediction
    np.testing.assert_allclose(last.mean, ref.mean, rtol=1e-6)  # fewer previews, same training


# ------------------------------------------ validation metrics from one shared forward pass
@pytest.mark.parametrize("kind", ["independent", "snapshot"])
def test_epoch_validation_metrics_equal_running_each_lanes_members_alone(kind: str, monkeypatch) -> None:
    """Each epoch's validation metrics reuse the divergence check's outputs of all lanes (and each snapshot's,
    computed once); they equal running the members of each lane on the validation set themselves (the old way)."""
    from ensemble_core import training as tr

    data = make_cubic()
    optim = OptimSpec(epochs=7, lr=0.01, schedule="cyclic" if kind == "snapshot" else "constant")  # type: ignore[arg-type]
    base = _cfg(strategy=StrategySpec(kind=kind, members=2, snapshots=3), optim=optim)  # type: ignore[arg-type]
    configs = [base.replace(**{"optim.lr": lr, "seed": s}) for lr, s in ((0.01, 0), (0.003, 5), (0.03, 9))]

    def vals() -> list[list[dict]]:
        results = tr.train_lanes(configs, data)
        return [[e.val for e in r.run.history if isinstance(e, EpochEnd)] for r in results]

    shared = vals()
    original = tr._Engine._val_outputs

    def alone(self, lane):  # the members of the lane run by themselves, as before the shared pass
        self._val_out = None
        return original(self, lane)

    monkeypatch.setattr(tr._Engine, "_val_outputs", alone)
    separate = vals()
    assert len(shared) == 3 and all(len(v) == 7 for v in shared)
    for a_lane, b_lane in zip(shared, separate):
        for a, b in zip(a_lane, b_lane):
            assert a.keys() == b.keys() == {"nll", "rmse"}
            for key in a:
                assert a[key] == pytest.approx(b[key], rel=1e-6), (key, a, b)
