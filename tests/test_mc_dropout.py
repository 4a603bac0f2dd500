"""MC dropout (issue 18 part 3): config, engine vs the plain per-network loop, prediction mixture."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from conftest import make_cubic, make_three_class

from ensemble_core.config import ConfigError, DataSpec, ModelSpec, OptimSpec, RunConfig, StrategySpec
from ensemble_core.losses import to_variance
from ensemble_core.models import dropout_masks, dropout_seed
from ensemble_core.predict import member_metrics, predict
from ensemble_core.reference import train_reference
from ensemble_core.training import train, train_lanes

SMALL = ModelSpec(hidden_layers=2, width=16, activation="relu")


def _cfg(**kw: object) -> RunConfig:
    base = dict(model=SMALL, strategy=StrategySpec(kind="mc_dropout", members=2, dropout=0.2, passes=20),
                optim=OptimSpec(optimizer="adam", lr=0.01, batch_size=8, epochs=4))
    base.update(kw)
    return RunConfig(**base)  # type: ignore[arg-type]


def _max_diff(run, ref, data) -> float:  # noqa: ANN001
    x = torch.as_tensor(data.scale_x(np.concatenate([data.x_train, data.x_test])), dtype=torch.float32)
    worst = 0.0
    with torch.no_grad():
        ours = run.model(x)  # the deterministic network (dropout off) of each trajectory
        for i, member in enumerate(ref.models):
            theirs = member(x)
            worst = max(worst, float((ours[i] - theirs).abs().max()) / max(1.0, float(theirs.abs().max())))
    return worst


@pytest.mark.parametrize("kw", [
    {},
    {"model": ModelSpec(hidden_layers=1, width=12, activation="tanh"),
     "optim": OptimSpec(optimizer="sgd", lr=0.02, momentum=0.9, weight_decay=1e-3, batch_size=8, epochs=4,
                        schedule="cosine", granularity="iteration")},
    {"model": ModelSpec(hidden_layers=3, width=10, activation="gelu"),
     "strategy": StrategySpec(kind="mc_dropout", members=3, dropout=0.5, passes=5)},
], ids=["relu-adam", "tanh-sgd-cosine", "gelu-3-layers-p0.5"])
def test_engine_matches_reference_with_the_same_masks(kw: dict) -> None:
    data = make_cubic(n_train=37, n_val=8, n_test=8)
    cfg = _cfg(**kw)
    run = train(cfg, data)
    ref = train_reference(cfg, data)
    assert len(ref.models) == len(run.members) == cfg.strategy.members
    assert _max_diff(run, ref, data) <= 1e-4


def test_classification_engine_matches_reference() -> None:
    data = make_three_class(n_train=37, n_val=8, n_test=8)
    cfg = _cfg(data=DataSpec(name="blobs", n_classes=3))
    assert _max_diff(train(cfg, data), train_reference(cfg, data), data) <= 1e-4


def test_dropout_changes_training_and_the_reference_notices() -> None:
    """The masks matter: without them (plain independent members, same seeds) the weights differ."""
    data = make_cubic(n_train=37, n_val=8, n_test=8)
    cfg = _cfg()
    run = train(cfg, data)
    plain = train_reference(cfg.replace(**{"strategy.kind": "independent"}), data)
    assert _max_diff(run, plain, data) > 1e-2


def test_lanes_equal_their_runs_alone() -> None:
    data = make_cubic(n_train=37, n_val=8, n_test=8)
    cfgs = [_cfg(), _cfg().replace(**{"optim.lr": 0.003, "seed": 4})]
    lanes = train_lanes(cfgs, data)
    for cfg, lane in zip(cfgs, lanes):
        alone = train(cfg, data)
        assert lane.run is not None
        assert torch.allclose(lane.run.model.flat_parameters(), alone.model.flat_parameters(), atol=1e-5)


def test_prediction_is_the_mixture_of_the_passes() -> None:
    """Closed form: mean = mean of the T passes' means, aleatoric = mean of their variances,
    epistemic = (population) variance of their means, from the same masks."""
    data = make_cubic(n_train=37, n_val=8, n_test=8)
    run = train(_cfg(), data)
    x = np.linspace(-6, 6, 13)
    pred = predict(run, x)
    t, m = 20, 2
    assert pred.member_means.shape == (m * t, 13)
    gen = torch.Generator().manual_seed(dropout_seed(run.config.seed, predict=True))
    xs = torch.as_tensor((x[:, None] - run.x_mean) / run.x_std, dtype=torch.float32)
    masks = dropout_masks(gen, m, t * 13, run.model.hidden_widths, 0.2)
    means, variances = [], []
    with torch.no_grad():
        for k in range(m):
            net = run.model.member(k)
            for p in range(t):
                h, hidden = xs, 0
                for layer in net:
                    h = layer(h)
                    if not isinstance(layer, torch.nn.Linear):
                        h = h * masks[hidden][k, p * 13:(p + 1) * 13]
                        hidden += 1
                means.append(h[:, 0].double().numpy() * run.y_std + run.y_mean)
                variances.append(to_variance(h[:, 1].double(), "softplus").numpy() * run.y_std ** 2)
    mu, var = np.array(means), np.array(variances)
    np.testing.assert_allclose(pred.mean, mu.mean(0), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(pred.aleatoric, var.mean(0), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(pred.epistemic, mu.var(0), rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(pred.total, pred.aleatoric + pred.epistemic, rtol=1e-12)
    assert np.all(pred.epistemic > 0)  # the passes disagree
    # deterministic: the same inputs predict the same numbers
    np.testing.assert_array_equal(predict(run, x).mean, pred.mean)


def test_classification_prediction_and_member_table() -> None:
    data = make_three_class(n_train=37, n_val=8, n_test=8)
    run = train(_cfg(data=DataSpec(name="blobs", n_classes=3)), data)
    pred = predict(run, data.x_test)
    assert pred.member_probs.shape == (40, len(data.x_test), 3)
    np.testing.assert_allclose(pred.probs.sum(1), 1.0, rtol=1e-9)
    np.testing.assert_allclose(pred.probs, pred.member_probs.mean(0), rtol=1e-12)
    rows = member_metrics(run, data.x_test, data.y_test)
    assert [r["member"] for r in rows] == ["member 0", "member 1", "ensemble"]


def test_config_validation_and_links() -> None:
    cfg = _cfg()
    assert RunConfig.from_query(cfg.to_query()) == cfg
    assert RunConfig.from_json(cfg.to_json()) == cfg
    for bad, field in (({"dropout": 0.0}, "strategy.dropout"), ({"dropout": 0.95}, "strategy.dropout"),
                       ({"passes": 0}, "strategy.passes"), ({"passes": 5000}, "strategy.passes"),
                       ({"adversarial": True}, "strategy.adversarial")):
        with pytest.raises(ConfigError, match=field):
            StrategySpec(kind="mc_dropout", **bad)  # type: ignore[arg-type]


def test_costs_count_the_masks() -> None:
    from ensemble_core.costs import DataShape, estimate

    shape = DataShape(n_train=500, n_val=100, n_features=4, n_outputs=2)
    plain = RunConfig(strategy=StrategySpec(kind="independent", members=1))
    mc = RunConfig(strategy=StrategySpec(kind="mc_dropout", members=1))
    a, b = estimate(plain, shape), estimate(mc, shape)
    assert b.steps == a.steps
    assert b.cpu_seconds > a.cpu_seconds and b.activation_bytes > a.activation_bytes


def _uci_files(tmp_path):  # noqa: ANN001, ANN202
    import json

    g = np.random.default_rng(0)
    x = g.normal(size=(60, 3))
    y = 5 + 2 * x[:, 0] - x[:, 1] ** 2 + 0.1 * g.normal(size=60)
    csv = tmp_path / "tiny.csv"
    csv.write_text("a,b,c,target\n" + "\n".join(",".join(f"{v:.6f}" for v in row) for row in np.c_[x, y]) + "\n")
    splits = [{"train": p[:50].tolist(), "test": p[50:].tolist()}
              for p in (np.random.default_rng(s).permutation(60) for s in range(2))]
    sp = tmp_path / "tiny_splits.json"
    sp.write_text(json.dumps({"target": "target", "n_hidden": 8, "n_epochs": 3, "splits": splits}))
    return csv, sp


def test_uci_cli_runs_mc_dropout_with_the_same_json_last_line(tmp_path, capsys) -> None:  # noqa: ANN001
    import json

    from ensemble_core.cli import main

    csv, sp = _uci_files(tmp_path)
    assert main(["uci", str(csv), "--splits", str(sp), "--strategy", "mc_dropout", "--passes", "10",
                 "--json"]) == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert set(summary) == {"rmse_mean", "rmse_std", "nll_mean", "nll_std", "n_splits", "seconds"}
    assert summary["n_splits"] == 2 and np.isfinite(summary["nll_mean"])
    assert main(["uci", str(csv), "--splits", str(sp), "--strategy", "mc_dropout", "--dropout", "0.95"]) == 1
    assert "strategy.dropout: must be in (0.0, 0.9]" in capsys.readouterr().err


def test_live_preview_is_the_mc_prediction() -> None:
    """The last live preview of an MC-dropout run shows its T passes: it equals the final prediction."""
    data = make_cubic(n_train=37, n_val=8, n_test=8)
    x = np.linspace(-6, 6, 25)
    run = train(_cfg(), data, preview_x=x, preview_every=2)
    last = [e for e in run.history if getattr(e, "kind", None) == "preview"][-1].prediction
    final = predict(run, x)
    assert last.member_means.shape == final.member_means.shape == (40, 25)
    np.testing.assert_allclose(last.mean, final.mean, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(last.epistemic, final.epistemic, rtol=1e-4, atol=1e-6)
