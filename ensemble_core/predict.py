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
    """Moment-matched uniform mixture of ``[M, N]`` Gaussians."""
    raise NotImplementedError


def combine_classification(member_probs: np.ndarray, members: Sequence[int] | None = None) -> ClassificationPrediction:
    """Average ``[M, N, C]`` member probabilities and split the entropy."""
    raise NotImplementedError


def predict(run: "object", x: np.ndarray, members: Sequence[int] | None = None) -> Prediction:
    """Predict raw-unit inputs ``x [N, d]`` with ``run``'s members.

    ``members`` selects a subset (default: every healthy member), so an
    ensemble-size curve needs no retraining.
    """
    raise NotImplementedError
