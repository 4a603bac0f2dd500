"""optim.keep_best (issue 18 part 6): each member's best-validation weights, engine vs the plain loops."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from conftest import make_cubic, make_three_class

from ensemble_core.config import ConfigError, DataSpec, ModelSpec, OptimSpec, RunConfig, StrategySpec
from ensemble_core.overfit import member_val_scores, overfitting
from ensemble_core.reference import train_reference
from ensemble_core.run import EpochEnd
from ensemble_core.training import TrainingError, train

# a wide net on 37 noisy points for 25 epochs: each member's validation NLL bottoms out around epoch 10
# (at a higher learning rate the plain loops and the engine drift apart by round-off long before 25 epochs)
OVERFIT = dict(model=ModelSpec(hidden_layers=2, width=64), strategy=StrategySpec(kind="independent", members=3),
               optim=OptimSpec(optimizer="adam", lr=0.01, batch_size=8, epochs=25, keep_best=True))


def _diff(run, ref, data) -> float:  # noqa: ANN001
    x = torch.as_tensor(data.scale_x(np.concatenate([data.x_train, data.x_test])), dtype=torch.float32)
    with torch.no_grad():
        ours = run.model(x)
        return max(float((ours[i] - m(x)).abs().max()) / max(1.0, float(m(x).abs().max()))
                   for i, m in enumerate(ref.models))


@pytest.mark.parametrize("kw", [
    {},
    {"strategy": StrategySpec(kind="bootstrap", members=2)},
    {"strategy": StrategySpec(kind="mc_dropout", members=2, dropout=0.1, passes=5)},
    {"loss": None},  # MSE members: squared error is their score
], ids=["independent", "bootstrap", "mc_dropout", "mse"])
def test_engine_keeps_the_same_best_weights_as_the_reference(kw: dict) -> None:
    from ensemble_core.config import LossSpec

    cfg_kw = {**OVERFIT, **kw}
    if "loss" in kw:
        cfg_kw["loss"] = LossSpec(kind="mse")
    cfg = RunConfig(**cfg_kw)  # type: ignore[arg-type]
    if kw:  # 12 epochs: over 25 the plain loops drift from the engine by round-off alone (~1e-3)
        cfg = cfg.replace(**{"optim.epochs": 12})
    data = make_cubic(n_train=37, n_val=12, n_test=8)
    run, ref = train(cfg, data), train_reference(cfg, data)
    assert _diff(run, ref, data) <= 1e-4
    epochs = [m.epoch for m in run.members]
    assert all(1 <= e <= cfg.optim.epochs for e in epochs)
    if kw == {}:  # this setup overfits: some member's best epoch is before the last, so the weights differ
        assert max(epochs) < 25
        last = train(cfg.replace(**{"optim.keep_best": False}), data)
        assert not torch.allclose(last.model.flat_parameters(), run.model.flat_parameters())


def test_classification_keep_best_matches_reference() -> None:
    cfg = RunConfig(data=DataSpec(name="blobs", n_classes=3), **OVERFIT)  # type: ignore[arg-type]
    data = make_three_class(n_train=37, n_val=12, n_test=8)
    assert _diff(train(cfg, data), train_reference(cfg, data), data) <= 1e-4


def test_best_epoch_is_the_argmin_of_the_members_own_scores() -> None:
    """Against the rule itself: record every member's score per epoch (keep_best off) and compare."""
    cfg = RunConfig(**OVERFIT)  # type: ignore[arg-type]
    data = make_cubic(n_train=37, n_val=12, n_test=8)
    scores = []
    x_val = torch.as_tensor(data.scale_x(data.x_val), dtype=torch.float32)
    y_val = torch.as_tensor(data.scale_y(data.y_val), dtype=torch.float32)
    for e in range(1, 26):
        r = train(cfg.replace(**{"optim.keep_best": False, "optim.epochs": e}), data)
        with torch.no_grad():
            scores.append(member_val_scores(r.model(x_val), y_val, "regression", "nll", "softplus").numpy())
    want = (np.argmin(np.array(scores), axis=0) + 1).tolist()
    assert [m.epoch for m in train(cfg, data).members] == want


def test_keep_best_is_validated() -> None:
    with pytest.raises(ConfigError, match="optim.keep_best"):
        RunConfig(strategy=StrategySpec(kind="snapshot", snapshots=2),
                  optim=OptimSpec(schedule="cyclic", keep_best=True))
    cfg = RunConfig(data=DataSpec(val_fraction=0.0), optim=OptimSpec(keep_best=True, epochs=2))
    data = make_cubic(n_train=20, n_val=0, n_test=5)
    with pytest.raises(TrainingError, match="validation split"):
        train(cfg, data)
    assert RunConfig.from_query(RunConfig(optim=OptimSpec(keep_best=True)).to_query()).optim.keep_best


def _epochs(vals: list[float]) -> list[EpochEnd]:
    return [EpochEnd(epoch=i + 1, n_epochs=len(vals), train_loss=[0.0], train_acc=None, val={"nll": v}, lrs=[],
                     elapsed=0.0) for i, v in enumerate(vals)]


def test_overfitting_message() -> None:
    o = overfitting(_epochs([0.9, 0.3, 0.5, 1.1, 1.8]))
    assert o is not None and o.rose and (o.best_epoch, o.best, o.last) == (2, 0.3, 1.8)
    assert "rose from **0.3** nats (epoch 2) to **1.8**" in o.message and "fewer epochs" in o.message
    assert "kept each member's best" in overfitting(_epochs([0.9, 0.3, 1.8]), keep_best=True).message
    flat = overfitting(_epochs([0.9, 0.3, 0.33]))
    assert flat is not None and not flat.rose and "no clear overfitting" in flat.message
    assert not overfitting(_epochs([-2.0, -2.15, -2.1])).rose  # 0.05 nats: noise, not overfitting
    assert overfitting(_epochs([0.5])) is None and overfitting([]) is None
    assert overfitting([{"kind": "epoch", "epoch": 1, "val": {"nll": 1.0}},
                        {"kind": "epoch", "epoch": 2, "val": {"nll": 2.0}}]).rose  # dict events (saved runs)
