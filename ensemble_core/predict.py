"""Combine members into an ensemble prediction with its uncertainty split.

CONTRACT (implementation in progress).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence, Union

import numpy as np


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


Prediction = Union[RegressionPrediction, ClassificationPrediction]


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


def predict(run: "object", x: np.ndarray, members: Sequence[int] | None = None) -> Prediction:
    """Predict raw-unit inputs ``x [N, d]`` with ``run``'s members.

    ``members`` selects a subset (default: every healthy member), so an
    ensemble-size curve needs no retraining.
    """
    raise NotImplementedError
