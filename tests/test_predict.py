"""predict(): scaling, member selection, un-standardised outputs, size curve, members table.

The members here are a hand-built stacked *linear* model that follows the
StackedMLP contract (``[N, d] -> [M, N, out]``), so every expected number is
computed by hand in numpy from its weights.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from ensemble_core import metrics
from ensemble_core.config import RunConfig
from ensemble_core.predict import (
    combine_classification,
    combine_regression,
    ensemble_size_curve,
    member_metrics,
    predict,
)
from ensemble_core.run import MemberInfo, Run


class StackedLinear(torch.nn.Module):
    """``out[m] = x @ W[m] + b[m]``: the StackedMLP contract with no hidden layer."""

    def __init__(self, w: np.ndarray, b: np.ndarray):
        super().__init__()
        self.w = torch.nn.Parameter(torch.tensor(w, dtype=torch.float64))
        self.b = torch.nn.Parameter(torch.tensor(b, dtype=torch.float64))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.einsum("nd,mdo->mno", x, self.w) + self.b[:, None, :]


def make_run(task="regression", M=4, d=2, out=2, loss="nll", variance="softplus", diverged=(), seed=0):
    g = np.random.default_rng(seed)
    w, b = g.normal(size=(M, d, out)), g.normal(size=(M, out))
    cfg = RunConfig().replace(**{"loss.kind": loss, "loss.variance": variance, "strategy.members": M})
    members = [MemberInfo(index=i, trajectory=i, snapshot=0, seed=i, epoch=10,
                          status="diverged" if i in diverged else "ok",
                          reason="loss was nan" if i in diverged else "") for i in range(M)]
    return Run(config=cfg, task=task, model=StackedLinear(w, b), members=members, history=[],
               lr_trace=np.zeros(0), epochs_done=10, stopped=False, seconds=0.1,
               x_mean=np.array([1.0, -2.0][:d]), x_std=np.array([2.0, 0.5][:d]),
               y_mean=10.0 if task == "regression" else 0.0, y_std=3.0 if task == "regression" else 1.0,
               n_classes=out if task == "classification" else 0), w, b


X = np.array([[0.0, 0.0], [1.0, -2.0], [3.0, 1.0], [-1.5, 4.0]])


def _softplus(z):
    return np.log1p(np.exp(z)) + 1e-6


def test_regression_prediction_is_in_original_units():
    run, w, b = make_run()
    pred = predict(run, X)
    xs = (X - run.x_mean) / run.x_std
    raw = np.einsum("nd,mdo->mno", xs, w) + b[:, None, :]
    mu = raw[..., 0] * 3.0 + 10.0
    var = _softplus(raw[..., 1]) * 9.0
    np.testing.assert_allclose(pred.member_means, mu, rtol=1e-12)
    np.testing.assert_allclose(pred.member_vars, var, rtol=1e-12)
    np.testing.assert_allclose(pred.mean, mu.mean(0), rtol=1e-12)
    np.testing.assert_allclose(pred.total, (var + mu**2).mean(0) - mu.mean(0) ** 2, rtol=1e-9)
    np.testing.assert_allclose(pred.aleatoric + pred.epistemic, pred.total, rtol=1e-12)
    assert pred.members == [0, 1, 2, 3]


def test_logvar_head_and_mse_members():
    run, w, b = make_run(variance="logvar")
    raw = np.einsum("nd,mdo->mno", (X - run.x_mean) / run.x_std, w) + b[:, None, :]
    np.testing.assert_allclose(predict(run, X).member_vars, np.exp(raw[..., 1]) * 9.0, rtol=1e-12)
    run, w, b = make_run(loss="mse", out=1)
    pred = predict(run, X)
    assert np.all(pred.member_vars == 0) and np.all(pred.aleatoric == 0)
    np.testing.assert_allclose(pred.total, pred.member_means.var(axis=0), rtol=1e-9)


def test_one_member_reduces_exactly_to_that_member():
    run, _, _ = make_run()
    full = predict(run, X)
    one = predict(run, X, members=[2])
    np.testing.assert_array_equal(one.mean, full.member_means[2])
    np.testing.assert_array_equal(one.total, full.member_vars[2])
    assert np.all(one.epistemic == 0) and one.members == [2]


def test_subset_equals_combining_those_members():
    run, _, _ = make_run()
    full = predict(run, X)
    sub = predict(run, X, members=[3, 1])
    ref = combine_regression(full.member_means[[3, 1]], full.member_vars[[3, 1]])
    np.testing.assert_allclose(sub.mean, ref.mean, rtol=1e-12)
    np.testing.assert_allclose(sub.total, ref.total, rtol=1e-12)
    assert sub.members == [3, 1]


def test_classification_averages_softmax_probabilities():
    run, w, b = make_run(task="classification", out=3)
    pred = predict(run, X)
    logits = np.einsum("nd,mdo->mno", (X - run.x_mean) / run.x_std, w) + b[:, None, :]
    p = np.exp(logits - logits.max(-1, keepdims=True))
    p /= p.sum(-1, keepdims=True)
    np.testing.assert_allclose(pred.member_probs, p, rtol=1e-12)
    np.testing.assert_allclose(pred.probs, p.mean(0), rtol=1e-12)
    ref = combine_classification(p)
    np.testing.assert_allclose(pred.epistemic, ref.epistemic, atol=1e-12)


def test_default_uses_healthy_members_and_guards():
    run, _, _ = make_run(diverged=(1,))
    assert predict(run, X).members == [0, 2, 3]
    with pytest.raises(ValueError, match="members: member 1 diverged"):
        predict(run, X, members=[0, 1])
    with pytest.raises(ValueError, match="members: index 7 is out of range"):
        predict(run, X, members=[7])
    with pytest.raises(ValueError, match="members: select at least one"):
        predict(run, X, members=[])
    with pytest.raises(ValueError, match="only once"):
        predict(run, X, members=[0, 0])
    with pytest.raises(ValueError, match=r"x: must be \[N, 2\]"):
        predict(run, X[:, :1])
    with pytest.raises(ValueError, match="x: contains NaN"):
        predict(run, np.array([[np.nan, 0.0]]))
    dead, _, _ = make_run(diverged=(0, 1, 2, 3))
    with pytest.raises(ValueError, match="every member of this run diverged"):
        predict(dead, X)


def test_one_feature_accepts_a_flat_vector():
    run, _, _ = make_run(d=1)
    np.testing.assert_array_equal(predict(run, X[:, 0]).mean, predict(run, X[:, :1]).mean)


def test_ensemble_size_curve_and_member_table():
    run, _, _ = make_run(diverged=(2,))
    y = np.array([10.0, 8.0, 15.0, 11.0])
    curve = ensemble_size_curve(run, X, y, metric="rmse")
    assert [m for m, _ in curve] == [1, 2, 3]
    for m, value in curve:
        assert value == pytest.approx(metrics.rmse(y, predict(run, X, members=[0, 1, 3][:m]).mean))
    with pytest.raises(ValueError, match="metric: must be one of"):
        ensemble_size_curve(run, X, y, metric="accuracy")
    rows = member_metrics(run, X, y)
    assert [r["member"] for r in rows] == ["member 0", "member 1", "member 3", "ensemble"]
    assert rows[-1]["index"] is None
    assert rows[-1]["nll"] == pytest.approx(metrics.evaluate(predict(run, X), y)["nll"])
    assert rows[1]["crps"] == pytest.approx(metrics.evaluate(predict(run, X, members=[1]), y)["crps"])


def test_member_table_classification_has_brier_and_ece():
    run, _, _ = make_run(task="classification", out=3, M=2)
    rows = member_metrics(run, X, np.array([0, 1, 2, 1]))
    assert len(rows) == 3 and set(metrics.CLASSIFICATION_METRICS) <= set(rows[0])


# ------------------------------------------------- against the real engine
@pytest.mark.parametrize("loss", ["nll", "mse"])
def test_predict_agrees_with_the_engines_validation_metrics_regression(cubic, loss):
    from ensemble_core.predict import evaluate_run
    from ensemble_core.run import EpochEnd
    from ensemble_core.training import train

    cfg = RunConfig().replace(**{"strategy.members": 3, "optim.epochs": 4, "model.width": 16, "loss.kind": loss})
    run = train(cfg, cubic)
    last = [e for e in run.history if isinstance(e, EpochEnd)][-1]
    scores = evaluate_run(run, cubic.x_val, cubic.y_val)
    assert scores["nll"] == pytest.approx(last.val["nll"], rel=1e-6)
    assert scores["rmse"] == pytest.approx(last.val["rmse"], rel=1e-6)


def test_predict_agrees_with_the_engines_validation_metrics_classification(three_class):
    from ensemble_core.predict import evaluate_run
    from ensemble_core.run import EpochEnd
    from ensemble_core.training import train

    cfg = RunConfig().replace(**{"data.name": "blobs", "strategy.members": 3, "optim.epochs": 4, "model.width": 16})
    run = train(cfg, three_class)
    last = [e for e in run.history if isinstance(e, EpochEnd)][-1]
    scores = evaluate_run(run, three_class.x_val, three_class.y_val)
    assert scores["nll"] == pytest.approx(last.val["nll"], rel=1e-6)
    assert scores["accuracy"] == last.val["accuracy"]
    assert predict(run, three_class.x_val, members=[1]).probs.shape == (15, 3)


def test_large_inputs_are_predicted_in_chunks_with_the_same_result(monkeypatch):
    import ensemble_core.predict as P

    run, _, _ = make_run()
    x = np.random.default_rng(3).normal(size=(103, 2))
    whole = predict(run, x)
    monkeypatch.setattr(P, "_CHUNK_ELEMENTS", 4 * 7)  # 7 rows per pass for 4 members
    chunked = predict(run, x)
    np.testing.assert_array_equal(chunked.member_means, whole.member_means)
    np.testing.assert_array_equal(chunked.total, whole.total)
    assert predict(run, np.zeros((0, 2))).mean.shape == (0,)
