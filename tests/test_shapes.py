"""ensemble_core.shapes: the sizes it derives are the sizes of the networks actually built."""

from __future__ import annotations

import pytest
from conftest import make_cubic, make_three_class

from ensemble_core.config import DataSpec, LossSpec, ModelSpec, OptimSpec, RunConfig, StrategySpec
from ensemble_core.models import StackedMLP, build_member
from ensemble_core.shapes import layer_sizes, output_size, parameter_count
from ensemble_core.training import train


def test_output_size() -> None:
    assert output_size("regression", LossSpec("nll")) == 2
    assert output_size("regression", LossSpec("beta_nll")) == 2
    assert output_size("regression", LossSpec("mse")) == 1
    assert output_size("classification", LossSpec(), n_classes=4) == 4
    with pytest.raises(ValueError, match="at least 2 classes"):
        output_size("classification", LossSpec(), n_classes=1)
    with pytest.raises(ValueError, match="task must be"):
        output_size("ranking", LossSpec())


@pytest.mark.parametrize("task,loss", [("regression", "nll"), ("regression", "beta_nll"),
                                       ("regression", "mse"), ("classification", "nll")])
def test_output_size_is_the_last_layer_of_the_trained_model(task: str, loss: str) -> None:
    data = make_three_class() if task == "classification" else make_cubic()
    spec = DataSpec(name="blobs", n_classes=3) if task == "classification" else DataSpec()
    cfg = RunConfig(data=spec, model=ModelSpec(hidden_layers=1, width=4), loss=LossSpec(loss),
                    strategy=StrategySpec(members=2), optim=OptimSpec(epochs=1))
    run = train(cfg, data)
    last_weight = list(run.model.weights)[-1]  # [M, fan_in, fan_out]
    assert last_weight.shape[-1] == run.model.out_features == output_size(task, cfg.loss, data.n_classes)


def test_layer_sizes() -> None:
    assert layer_sizes(3, 5, ModelSpec(hidden_layers=0, width=8)) == [(3, 5)]
    assert layer_sizes(3, 5, ModelSpec(hidden_layers=2, width=8)) == [(3, 8), (8, 8), (8, 5)]


@pytest.mark.parametrize("in_features,out_features,hidden_layers,width",
                         [(1, 2, 2, 50), (3, 1, 0, 8), (10, 4, 3, 7), (2, 3, 8, 16)])
def test_parameter_count_is_what_a_real_member_holds(in_features: int, out_features: int, hidden_layers: int,
                                                     width: int) -> None:
    spec = ModelSpec(hidden_layers=hidden_layers, width=width)
    stack = StackedMLP(3, in_features, out_features, spec)
    per_member = sum(p.numel() for p in stack.parameters()) // 3
    plain = sum(p.numel() for p in build_member(in_features, out_features, spec).parameters())
    assert parameter_count(in_features, out_features, spec) == per_member == plain
