"""Combine members into an ensemble prediction with its uncertainty split.

``combine_*`` are pure functions on member outputs; :func:`predict` runs a
trained :class:`~ensemble_core.run.Run`'s members on raw inputs and
returns the prediction in the target's original units.  Because any subset of
members can be combined, :func:`ensemble_size_curve` and
:func:`member_metrics` need no retraining.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from . import metrics as _metrics
from .losses import to_variance
from .models import dropout_masks, dropout_seed
from .run import Run


@dataclass
class RegressionPrediction:
    """Uniform Gaussian mixture of the members, moment-matched, in original units.

    Attributes:
        mean: ensemble mean ``[N]``.
        aleatoric: mean of member variances ``[N]`` (0 for MSE members).
        epistemic: variance of member means ``[N]``.
        total: ``aleatoric + epistemic`` ``[N]``.
        member_means, member_vars: ``[M, N]`` per member.
        members: the member indices combined.
    """

    mean: np.ndarray
    aleatoric: np.ndarray
    epistemic: np.ndarray
    total: np.ndarray
    member_means: np.ndarray
    member_vars: np.ndarray
    members: list[int]

    @property
    def std(self) -> np.ndarray:
        return np.sqrt(self.total)


@dataclass
class ClassificationPrediction:
    """Averaged member probabilities and the entropy decomposition (nats).

    Attributes:
        probs: ensemble probabilities ``[N, C]``.
        total: entropy of the mean ``[N]``.
        aleatoric: mean member entropy ``[N]``.
        epistemic: mutual information = total - aleatoric ``[N]``.
        member_probs: ``[M, N, C]``.
        members: the member indices combined.
    """

    probs: np.ndarray
    total: np.ndarray
    aleatoric: np.ndarray
    epistemic: np.ndarray
    member_probs: np.ndarray
    members: list[int]

    @property
    def label(self) -> np.ndarray:
        return self.probs.argmax(axis=1)


Prediction = RegressionPrediction | ClassificationPrediction


def combine_regression(member_means: np.ndarray, member_vars: np.ndarray, members: Sequence[int] | None = None) -> RegressionPrediction:
    """Moment-matched uniform mixture of ``[M, N]`` Gaussians.

    ``mu* = mean_m mu_m``; aleatoric ``= mean_m var_m``; epistemic ``= var_m(mu_m)``
    (population variance); total = aleatoric + epistemic
    ``= mean_m(var_m + mu_m^2) - mu*^2``.
    """
    mm = np.asarray(member_means, dtype=np.float64)
    mv = np.asarray(member_vars, dtype=np.float64)
    if mm.ndim != 2 or mm.shape != mv.shape:
        raise ValueError(f"member_means and member_vars must both be [M, N]; got {mm.shape} and {mv.shape}")
    if mm.shape[0] == 0:
        raise ValueError("cannot combine an ensemble of zero members")
    mean = mm.mean(axis=0)
    aleatoric = mv.mean(axis=0)
    epistemic = ((mm - mean) ** 2).mean(axis=0)
    idx = list(range(mm.shape[0])) if members is None else list(members)
    return RegressionPrediction(mean, aleatoric, epistemic, aleatoric + epistemic, mm, mv, idx)


def combine_classification(member_probs: np.ndarray, members: Sequence[int] | None = None) -> ClassificationPrediction:
    """Average ``[M, N, C]`` member probabilities and split the entropy.

    total = H(mean_m p_m); aleatoric = mean_m H(p_m); epistemic = total - aleatoric
    (the mutual information, >= 0 up to rounding; clipped at 0).
    """
    mp = np.asarray(member_probs, dtype=np.float64)
    if mp.ndim != 3:
        raise ValueError(f"member_probs must be [M, N, C]; got shape {mp.shape}")
    if mp.shape[0] == 0:
        raise ValueError("cannot combine an ensemble of zero members")
    probs = mp.mean(axis=0)
    total = _entropy(probs)
    aleatoric = _entropy(mp).mean(axis=0)
    epistemic = np.clip(total - aleatoric, 0.0, None)
    idx = list(range(mp.shape[0])) if members is None else list(members)
    return ClassificationPrediction(probs, total, aleatoric, epistemic, mp, idx)


def _entropy(p: np.ndarray) -> np.ndarray:
    """Entropy in nats along the last axis (0 log 0 = 0)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return -np.where(p > 0, p * np.log(p), 0.0).sum(axis=-1)


def select_members(run: Run, members: Sequence[int] | None = None) -> list[int]:
    """Validate a member selection (default: every healthy member).

    Args:
        run: a trained run.
        members: member indices, or ``None`` for ``run.healthy``.

    Returns:
        The indices as a list of ``int``, in the order given.

    Raises:
        ValueError: no healthy member, an empty selection, an index out of range
            or repeated, or a member that diverged.
    """
    n = len(run.members)
    if members is None:
        idx = list(run.healthy)
        if not idx:
            raise ValueError("members: every member of this run diverged; there is nothing to predict with")
        return idx
    idx = []
    for m in members:
        if isinstance(m, bool) or not isinstance(m, (int, np.integer)):
            raise ValueError(f"members: indices must be integers, got {m!r}")
        idx.append(int(m))
    if not idx:
        raise ValueError("members: select at least one member")
    bad = [m for m in idx if not 0 <= m < n]
    if bad:
        raise ValueError(f"members: index {bad[0]} is out of range (this run has members 0..{n - 1})")
    if len(set(idx)) != len(idx):
        raise ValueError("members: each member may be selected only once")
    by_index = {info.index: info for info in run.members}
    for m in idx:
        info = by_index.get(m)
        if info is not None and info.status != "ok":
            raise ValueError(f"members: member {m} diverged ({info.reason or 'non-finite values'}) "
                             "and cannot be used")
    return idx


def _check_x(run: Run, x_raw: Any) -> np.ndarray:
    d = int(np.asarray(run.x_mean).reshape(-1).shape[0])
    try:
        x = np.asarray(x_raw, dtype=np.float64)
    except (TypeError, ValueError):
        raise ValueError(f"x: must be numeric, got {type(x_raw).__name__}") from None
    if x.ndim == 1 and d == 1:
        x = x[:, None]
    if x.ndim != 2 or x.shape[1] != d:
        raise ValueError(f"x: must be [N, {d}] (one column per feature), got shape {x.shape}")
    if not np.all(np.isfinite(x)):
        raise ValueError("x: contains NaN or infinite values")
    return x


#: Rows per forward pass are chosen so one hidden activation ``[M, rows, width]`` stays
#: near this many elements (64 MB in float32): a 200 x 200 class map of 40 wide members
#: would otherwise need gigabytes at once.
_CHUNK_ELEMENTS = 1 << 24


def mc_passes(run: Run) -> int:
    """Stochastic passes per network of an MC-dropout run (0 for every other strategy)."""
    s = run.config.strategy
    return s.passes if s.kind == "mc_dropout" else 0


def _forward(run: Run, x_raw: Any) -> torch.Tensor:
    """Raw outputs of every member ``[M_all, N, out]`` (float64, CPU) on standardised ``x``.

    MC dropout: ``[M, T, N, out]``, each network's ``T`` stochastic passes (:func:`_forward_mc`).
    """
    if mc_passes(run):
        return _forward_mc(run, x_raw)
    x = _check_x(run, x_raw)
    xs = (x - np.asarray(run.x_mean, dtype=np.float64)) / np.asarray(run.x_std, dtype=np.float64)
    model = run.model
    param = next(iter(model.parameters()), None)
    dtype = param.dtype if param is not None else torch.float32
    device = param.device if param is not None else torch.device("cpu")
    spec = getattr(model, "spec", None)
    width = max(getattr(spec, "width", 1), getattr(model, "out_features", 1), x.shape[1], 1)
    rows = max(1, _CHUNK_ELEMENTS // (max(len(run.members), 1) * width))
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            parts = [model(torch.as_tensor(xs[i:i + rows], dtype=dtype, device=device)).to("cpu", torch.float64)
                     for i in range(0, len(xs), rows)]
    finally:
        model.train(was_training)
    if not parts:  # no rows: ask the model for its output width on one dummy row
        with torch.no_grad():
            probe = model(torch.zeros(1, x.shape[1], dtype=dtype, device=device))
        return probe.to("cpu", torch.float64)[:, :0]
    return torch.cat(parts, dim=1)


def _forward_mc(run: Run, x_raw: Any) -> torch.Tensor:
    """MC dropout: ``T`` stochastic passes of each network, ``[M, T, N, out]`` (float64, CPU).

    Each pass draws its own inverted-dropout masks (rate ``strategy.dropout``, independently per
    row, pass and unit) from a generator seeded by :func:`~ensemble_core.models.dropout_seed` of
    the run's seed, so predicting the same inputs twice gives the same numbers.
    """
    x = _check_x(run, x_raw)
    xs = (x - np.asarray(run.x_mean, dtype=np.float64)) / np.asarray(run.x_std, dtype=np.float64)
    model, strat = run.model, run.config.strategy
    param = next(iter(model.parameters()))
    return mc_forward(model, list(model.weights), list(model.biases),
                      torch.as_tensor(xs, dtype=param.dtype, device=param.device), strat.passes, strat.dropout,
                      dropout_seed(run.config.seed, predict=True))


def mc_forward(model: Any, weights: Sequence[torch.Tensor], biases: Sequence[torch.Tensor], xs: torch.Tensor,
               passes: int, rate: float, seed: int) -> torch.Tensor:
    """``passes`` stochastic passes of a stack's members on standardised ``xs [N, d]``: ``[M, T, N, out]``.

    The masks come from a generator seeded with ``seed`` and are drawn chunk by chunk of rows
    (each chunk ``[M, T*rows, width]`` per hidden layer), so the same call gives the same numbers;
    the engine's live previews of an MC-dropout run use it with the prediction seed, so a run's
    last preview is its final prediction.
    """
    t, m = int(passes), int(weights[0].shape[0])
    width = max(model.spec.width, model.out_features, xs.shape[1], 1)
    rows = max(1, _CHUNK_ELEMENTS // (m * t * width))
    gen = torch.Generator(device=xs.device).manual_seed(int(seed))
    widths = [int(w.shape[2]) for w in weights[:-1]]
    parts = []
    with torch.no_grad():
        for i in range(0, xs.shape[0], rows):
            chunk = xs[i:i + rows]
            n = chunk.shape[0]
            masks = dropout_masks(gen, m, t * n, widths, rate, xs.dtype)
            out = model.forward_with(chunk.repeat(t, 1), weights, biases, masks)
            parts.append(out.view(m, t, n, -1).to("cpu", torch.float64))
    if not parts:
        return torch.zeros(m, t, 0, model.out_features, dtype=torch.float64)
    return torch.cat(parts, dim=2)


def _combine(run: Run, out: torch.Tensor, idx: list[int]) -> Prediction:
    """Turn raw member outputs (already selected) into a prediction in original units.

    MC dropout (``out`` is ``[m, T, N, out]``): every stochastic pass of the selected networks is
    one component of the mixture; the prediction's ``members`` then number the passes ``0..m*T-1``.
    """
    if out.dim() == 4:
        out = out.reshape(-1, out.shape[2], out.shape[3])
        idx = list(range(out.shape[0]))
    if run.task == "classification":
        probs = torch.softmax(out, dim=-1).numpy()
        return combine_classification(probs, idx)
    y_mean, y_std = float(run.y_mean), float(run.y_std)
    mean = out[..., 0].numpy() * y_std + y_mean
    if run.config.loss.kind == "mse" or out.shape[-1] == 1:
        var = np.zeros_like(mean)
    else:
        var = to_variance(out[..., 1], run.config.loss.variance).numpy() * y_std**2
    return combine_regression(mean, var, idx)


def predict(run: Run, x_raw: np.ndarray, members: Sequence[int] | None = None) -> Prediction:
    """Predict raw-unit inputs with ``run``'s members, in the target's original units.

    Inputs are standardised with the run's training statistics, the selected
    members are run, regression means are un-standardised (``* y_std + y_mean``)
    and variances scaled by ``y_std**2``; classification logits become
    probabilities (softmax) and are averaged.

    Args:
        run: a trained (possibly partial) run.
        x_raw: inputs ``[N, d]`` in original units (``[N]`` if ``d == 1``).
        members: member indices to combine (default: every healthy member), so
            an ensemble-size curve needs no retraining.

    Returns:
        A :class:`RegressionPrediction` or :class:`ClassificationPrediction`.

    Raises:
        ValueError: bad ``x`` (shape, NaN) or a bad member selection.
    """
    idx = select_members(run, members)
    out = _forward(run, x_raw)
    return _combine(run, out[idx], idx)


#: Variance floor, in standardised units, when scoring mean-only (MSE) members; the engine's
#: validation metrics use the same floor, so live curves and final tables agree.
VAR_FLOOR = 1e-6


def evaluate_run(run: Run, x: np.ndarray, y: np.ndarray, members: Sequence[int] | None = None) -> dict[str, float]:
    """:func:`ensemble_core.metrics.evaluate` of :func:`predict`, in original units.

    The predictive variance is floored at ``VAR_FLOOR * y_std**2`` so an
    ensemble of mean-only (MSE) members, whose variance can be 0, gets a
    finite NLL (Gaussian-NLL members never come near that floor).

    Args:
        run: a trained run.
        x: inputs ``[N, d]`` in original units.
        y: targets ``[N]`` (original units) or class indices.
        members: member indices (default: every healthy member).

    Returns:
        ``{metric: value}`` for the run's task.
    """
    return _metrics.evaluate(predict(run, x, members), y, var_floor=_var_floor(run))


def _var_floor(run: Run) -> float:
    return VAR_FLOOR * float(run.y_std) ** 2 if run.task == "regression" else 0.0


def _metric_names(run: Run) -> tuple[str, ...]:
    return _metrics.CLASSIFICATION_METRICS if run.task == "classification" else _metrics.REGRESSION_METRICS


def ensemble_size_curve(
    run: Run, x: np.ndarray, y: np.ndarray, metric: str = "nll", members: Sequence[int] | None = None
) -> list[tuple[int, float]]:
    """A metric of the ensemble of the first ``m`` members, for ``m = 1..M``.

    The members are run once; each prefix is combined without retraining.

    Args:
        run: a trained run.
        x: inputs ``[N, d]`` in original units.
        y: targets ``[N]`` (original units) or class indices.
        metric: a key of :func:`ensemble_core.metrics.evaluate` for this task
            (e.g. ``"nll"``, ``"rmse"``, ``"accuracy"``).
        members: the member order to grow through (default: the healthy ones).

    Returns:
        ``[(m, value), ...]`` for ``m = 1..len(members)``.
    """
    names = _metric_names(run)
    if metric not in names:
        raise ValueError(f"metric: must be one of {', '.join(names)} for {run.task}; got {metric!r}")
    idx = select_members(run, members)
    out = _forward(run, x)
    curve = []
    for m in range(1, len(idx) + 1):
        pred = _combine(run, out[idx[:m]], idx[:m])
        curve.append((m, _metrics.evaluate(pred, y, var_floor=_var_floor(run))[metric]))
    return curve


def member_metrics(run: Run, x: np.ndarray, y: np.ndarray) -> list[dict[str, Any]]:
    """Each healthy member alone, then the ensemble: the "members vs ensemble" table.

    Args:
        run: a trained run.
        x: inputs ``[N, d]`` in original units.
        y: targets ``[N]`` (original units) or class indices.

    Returns:
        One dict per row: ``member`` (``"member i"`` or ``"ensemble"``),
        ``index`` (the member index, ``None`` for the ensemble) and every
        metric of :func:`ensemble_core.metrics.evaluate` (regression: NLL,
        RMSE, MAE, CRPS, coverage, miscalibration area; classification: NLL,
        accuracy, Brier, ECE).
    """
    idx = select_members(run, None)
    out = _forward(run, x)
    rows: list[dict[str, Any]] = []
    for m in idx:
        pred = _combine(run, out[[m]], [m])
        rows.append({"member": f"member {m}", "index": m, **_metrics.evaluate(pred, y, var_floor=_var_floor(run))})
    pred = _combine(run, out[idx], idx)
    rows.append({"member": "ensemble", "index": None, **_metrics.evaluate(pred, y, var_floor=_var_floor(run))})
    return rows
