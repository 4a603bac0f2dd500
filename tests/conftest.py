"""Shared fixtures: tiny toy :class:`~ensemble_core.data.Dataset` builders built from numpy arrays.

They do not depend on ``load_dataset`` so core tests run on their own.  Use the
plain functions (``make_cubic``, ``make_two_class``, ``make_three_class``) when a
test needs other sizes, or the fixtures for the defaults.
"""

from __future__ import annotations

import numpy as np
import pytest

from ensemble_core.data import Dataset


def _split(x: np.ndarray, y: np.ndarray, n_val: int, n_test: int) -> tuple[np.ndarray, ...]:
    n_train = len(x) - n_val - n_test
    return (x[:n_train], y[:n_train], x[n_train:n_train + n_val], y[n_train:n_train + n_val],
            x[n_train + n_val:], y[n_train + n_val:])


def make_cubic(n_train: int = 40, n_val: int = 10, n_test: int = 10, noise: float = 3.0,
               seed: int = 0) -> Dataset:
    """The paper's toy ``y = x^3 + N(0, noise^2)``, ``x ~ U[-4, 4]``, standardised on train."""
    rng = np.random.default_rng(seed)
    n = n_train + n_val + n_test
    x = rng.uniform(-4, 4, size=(n, 1))
    y = x[:, 0] ** 3 + rng.normal(0, noise, size=n)
    xtr, ytr, xva, yva, xte, yte = _split(x, y, n_val, n_test)
    return Dataset(
        name="cubic", task="regression", feature_names=["x"], target_name="y",
        x_train=xtr, y_train=ytr, x_val=xva, y_val=yva, x_test=xte, y_test=yte,
        x_mean=xtr.mean(axis=0), x_std=xtr.std(axis=0), y_mean=float(ytr.mean()), y_std=float(ytr.std()),
        true_fn=lambda v: v**3, noise_fn=lambda v: np.full_like(v, noise), plot_range=(-6.0, 6.0),
    )


def make_two_class(n_train: int = 40, n_val: int = 10, n_test: int = 10, seed: int = 0) -> Dataset:
    """Two overlapping Gaussian blobs in 2-D (classes 0 and 1)."""
    return make_blobs(n_classes=2, n_train=n_train, n_val=n_val, n_test=n_test, seed=seed)


def make_three_class(n_train: int = 45, n_val: int = 15, n_test: int = 15, seed: int = 0) -> Dataset:
    """Three Gaussian blobs in 2-D."""
    return make_blobs(n_classes=3, n_train=n_train, n_val=n_val, n_test=n_test, seed=seed)


def make_blobs(n_classes: int, n_train: int, n_val: int, n_test: int, seed: int = 0) -> Dataset:
    """``n_classes`` unit-variance Gaussian blobs on a circle of radius 2 in 2-D."""
    rng = np.random.default_rng(seed)
    n = n_train + n_val + n_test
    y = rng.integers(0, n_classes, size=n)
    y[:n_classes] = np.arange(n_classes)  # every class present in train
    angle = 2 * np.pi * y / n_classes
    x = np.stack([2 * np.cos(angle), 2 * np.sin(angle)], axis=1) + rng.normal(0, 1.0, size=(n, 2))
    xtr, ytr, xva, yva, xte, yte = _split(x, y.astype(np.int64), n_val, n_test)
    return Dataset(
        name=f"blobs{n_classes}", task="classification", feature_names=["x1", "x2"], target_name="class",
        x_train=xtr, y_train=ytr, x_val=xva, y_val=yva, x_test=xte, y_test=yte,
        x_mean=xtr.mean(axis=0), x_std=xtr.std(axis=0), y_mean=0.0, y_std=1.0,
        class_names=[str(c) for c in range(n_classes)],
    )


@pytest.fixture
def cubic() -> Dataset:
    """40 training points of the cubic toy (10 val, 10 test)."""
    return make_cubic()


@pytest.fixture
def two_class() -> Dataset:
    """40 training points of a 2-class 2-D toy (10 val, 10 test)."""
    return make_two_class()


@pytest.fixture
def three_class() -> Dataset:
    """45 training points of a 3-class 2-D toy (15 val, 15 test)."""
    return make_three_class()
