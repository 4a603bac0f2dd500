"""The size of a member network, derived from the config in one place.

Every module that needs a member's number of outputs, its layer shapes or its
parameter count calls these functions: the engine and the reference loops
(to build the networks), :mod:`ensemble_core.jobs` (the classroom limits,
checked before anything is built) and :mod:`ensemble_core.persistence` (to
check a saved run before its model is rebuilt).  Pure integer arithmetic, no
torch import, so the job pool can size a run without loading torch.
"""

from __future__ import annotations

from .config import LossSpec, ModelSpec

__all__ = ["output_size", "layer_sizes", "parameter_count"]


def output_size(task: str, loss: LossSpec, n_classes: int = 0) -> int:
    """Number of outputs of one member.

    Args:
        task: ``"regression"`` or ``"classification"`` (the data's task: a
            CSV config does not name it, so it is not read from the config).
        loss: the run's loss spec (regression only: MSE has no variance output).
        n_classes: number of classes (classification).

    Returns:
        2 (mean, raw variance) for the NLL losses, 1 for MSE, ``n_classes``
        (logits) for classification.

    Raises:
        ValueError: an unknown task, or fewer than 2 classes.
    """
    if task == "classification":
        if n_classes < 2:
            raise ValueError(f"classification needs at least 2 classes, got {n_classes}")
        return n_classes
    if task == "regression":
        return 1 if loss.kind == "mse" else 2
    raise ValueError(f"task must be 'regression' or 'classification', got {task!r}")


def layer_sizes(in_features: int, out_features: int, spec: ModelSpec) -> list[tuple[int, int]]:
    """``(fan_in, fan_out)`` of every linear layer of a member, input to output."""
    dims = [in_features] + [spec.width] * spec.hidden_layers + [out_features]
    return list(zip(dims[:-1], dims[1:]))


def parameter_count(in_features: int, out_features: int, spec: ModelSpec) -> int:
    """Number of parameters (weights plus biases) of one member.

    Args:
        in_features: input dimension.
        out_features: outputs per member (see :func:`output_size`).
        spec: the model spec (hidden layers and width).

    Returns:
        ``sum(fan_in * fan_out + fan_out)`` over :func:`layer_sizes`.
    """
    return int(sum(fi * fo + fo for fi, fo in layer_sizes(in_features, out_features, spec)))
