"""Datasets: the ``Dataset`` type, synthetic generators, bundled real sets, CSV parsing.

CONTRACT (shared by every module; implementation in progress): see the
dataclass and function signatures below.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Literal

import numpy as np

from .config import DataSpec

Task = Literal["regression", "classification"]


class DataError(ValueError):
    """Data could not be loaded or is unusable; the message says why, for a human."""


@dataclass
class Dataset:
    """A ready-to-train data set with train/val/test splits in original units.

    Arrays: ``x_*`` are float64 ``[n, d]``; ``y_*`` are float64 ``[n]`` for
    regression and int64 class indices ``[n]`` for classification.
    Standardisation statistics are fitted on the training split only.

    Attributes:
        name: display name.
        task: ``"regression"`` or ``"classification"``.
        feature_names: one name per input column.
        target_name: name of the target.
        class_names: class labels (classification) else ``None``.
        x_mean, x_std: per-feature mean/std of the training inputs (std of a
            constant feature is stored as 1.0).
        y_mean, y_std: mean/std of the training target (regression; 0/1 for
            classification).
        true_fn: for synthetic 1-D regression, the noise-free function
            ``f(x[:, 0]) -> y`` (for plotting); else ``None``.
        noise_fn: for synthetic regression, the true noise std as a function of
            ``x[:, 0]``; else ``None``.
        gaps: input intervals ``(lo, hi)`` with no training data by design (the
            gap set), for shading; empty otherwise.
        plot_range: for 1-D sets the x-range to draw predictions over (wider than
            the data, to show uncertainty growing away from it).
        notes: human-readable notes on what was dropped or converted while loading.
    """

    name: str
    task: Task
    feature_names: list[str]
    target_name: str
    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    x_mean: np.ndarray
    x_std: np.ndarray
    y_mean: float = 0.0
    y_std: float = 1.0
    class_names: list[str] | None = None
    true_fn: Callable[[np.ndarray], np.ndarray] | None = None
    noise_fn: Callable[[np.ndarray], np.ndarray] | None = None
    gaps: list[tuple[float, float]] = field(default_factory=list)
    plot_range: tuple[float, float] | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def n_features(self) -> int:
        return int(self.x_train.shape[1])

    @property
    def n_classes(self) -> int:
        return len(self.class_names) if self.class_names else 0

    def scale_x(self, x: np.ndarray) -> np.ndarray:
        """Standardise inputs with the training statistics."""
        return (np.asarray(x, dtype=np.float64) - self.x_mean) / self.x_std

    def scale_y(self, y: np.ndarray) -> np.ndarray:
        """Standardise a regression target with the training statistics."""
        return (np.asarray(y, dtype=np.float64) - self.y_mean) / self.y_std

    def unscale_mean(self, mu: np.ndarray) -> np.ndarray:
        """Standardised predicted means back to the target's units."""
        return np.asarray(mu) * self.y_std + self.y_mean

    def unscale_var(self, var: np.ndarray) -> np.ndarray:
        """Standardised predicted variances back to the target's units (times s^2)."""
        return np.asarray(var) * self.y_std**2


def load_dataset(spec: DataSpec, csv_data: bytes | str | None = None) -> Dataset:
    """Build the dataset a :class:`DataSpec` describes.

    ``csv_data`` is the uploaded file's content when ``spec.source == "csv"``.
    Raises :class:`DataError` with a human message on unusable data.
    """
    raise NotImplementedError
