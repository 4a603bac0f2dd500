"""Datasets: the ``Dataset`` type, synthetic generators, bundled real sets, CSV parsing.

Public API
----------
- :func:`load_dataset` builds the :class:`Dataset` a :class:`~ensemble_core.config.DataSpec`
  describes (synthetic, bundled or CSV).
- :func:`dataset_from_arrays` wraps arrays you already hold (tests, notebooks).
- :func:`add_training_point` adds one point to a 1-D regression training split.
- :func:`parse_csv` turns uploaded bytes / text / a path into a :class:`CsvTable`;
  :func:`dataset_from_table` picks target and features and splits it.
- :func:`load_uci` reads the UCI regression benchmark format (``../shared/datasets/uci``).
- :func:`describe` gives a one-line human label for a spec.

Every problem with the data raises a subclass of :class:`DataError` whose message
is written for a person (never a Python repr).

Decisions (documented here once)
--------------------------------
- **Noise.** ``DataSpec.noise`` defaults to 3.0, the paper's cubic noise.  For the
  cubic toy it *is* the noise standard deviation.  Every other generator has its own
  reference level (:data:`NOISE_REFERENCE`) and uses ``reference * noise / 3``, so
  the default spec gives each generator its intended look, 0 gives noise-free data
  and 6 doubles the noise.  :func:`effective_noise` returns the level actually used.
- **Synthetic splits.** A 20-point toy cannot afford a split, so the training set is
  ``n`` points and the validation and test sets are fresh draws from the same
  generator with derived seeds, ``max(200, min(n, 10000))`` points each.  The
  validation set follows the training distribution (the gap band removed); the
  *test* set covers the whole input range, gap included, so test metrics show what
  happens in the hole.  ``val_fraction == 0`` (or ``test_fraction == 0``) gives an
  empty validation (test) set; any other value only switches the set on.
- **Real data splits.** Bundled and CSV data are shuffled with ``spec.seed`` and split
  into test (``test_fraction``), validation (``val_fraction``) and training (the rest);
  stratified by class for classification when every split can hold every class.
- **Standardisation** statistics come from the training split only (population std);
  a constant feature gets std 1.0 and a note.
- **CSV.** Limits are checked before parsing (:data:`MAX_CSV_BYTES`, rows, columns).
  Text feature columns are dropped with a note (no one-hot encoding); a text target
  becomes classes.  Rows with a missing or infinite value in a *used* column are
  dropped and counted in :class:`LoadSummary`.  Task inference (:func:`infer_task`):
  text -> classification; whole numbers with at most 10 distinct values (and at most
  half as many as rows) -> classification; other numbers -> regression;
  ``spec.task`` overrides it.  At least :data:`MIN_ROWS` clean rows and at most
  :data:`MAX_CLASSES` classes.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import math
import re
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import numpy as np

if TYPE_CHECKING:  # pandas is imported where CSVs are parsed: the dashboard's first page does not need it
    import pandas as pd

from .config import (
    BUNDLED_CLASSIFICATION,
    BUNDLED_REGRESSION,
    SYNTHETIC_CLASSIFICATION,
    SYNTHETIC_REGRESSION,
    DataSpec,
)

Task = Literal["regression", "classification"]

__all__ = [
    "Task",
    "Dataset",
    "LoadSummary",
    "DataError",
    "EmptyFileError",
    "HeaderOnlyError",
    "TooFewColumnsError",
    "UndecodableError",
    "MalformedCsvError",
    "DuplicateColumnError",
    "UnknownColumnError",
    "NonNumericError",
    "AllMissingError",
    "ConstantTargetError",
    "ClassCountError",
    "TooFewRowsError",
    "TooLargeError",
    "InvalidArrayError",
    "ValueRangeError",
    "MAX_ABS_VALUE",
    "csv_safe",
    "csv_safe_cell",
    "NOISE_REFERENCE",
    "GAP_BANDS",
    "MIN_ROWS",
    "MAX_CLASSES",
    "effective_noise",
    "load_dataset",
    "dataset_from_arrays",
    "add_training_point",
    "describe",
    "ColumnInfo",
    "CsvTable",
    "MAX_CSV_BYTES",
    "MAX_CSV_ROWS",
    "MAX_CSV_COLUMNS",
    "parse_csv",
    "infer_task",
    "dataset_from_table",
    "load_csv",
    "load_uci",
]


# ---------------------------------------------------------------- exceptions
class DataError(ValueError):
    """Data could not be loaded or is unusable; the message says why, for a human."""


class EmptyFileError(DataError):
    """The file has no content at all (or only blank lines)."""


class HeaderOnlyError(DataError):
    """The file has a header row but no data rows."""


class TooFewColumnsError(DataError):
    """Fewer than two columns: no room for a feature and a target."""


class UndecodableError(DataError):
    """The bytes are not text in a supported encoding (binary file, wrong format)."""


class MalformedCsvError(DataError):
    """The text is not a well-formed table (ragged rows, broken quoting, huge field)."""


class DuplicateColumnError(DataError):
    """Two or more columns share a name; ``names`` lists them."""

    def __init__(self, message: str, names: list[str]) -> None:
        super().__init__(message)
        self.names = names


class UnknownColumnError(DataError):
    """A requested target/feature column does not exist; ``column`` names it."""

    def __init__(self, message: str, column: str) -> None:
        super().__init__(message)
        self.column = column


class NonNumericError(DataError):
    """A column that must be numeric holds text."""


class AllMissingError(DataError):
    """A needed column holds no usable (finite) value at all."""


class ConstantTargetError(DataError):
    """The target takes a single value: nothing to learn."""


class ClassCountError(DataError):
    """A classification target has one class only, or more than :data:`MAX_CLASSES`."""


class TooFewRowsError(DataError):
    """Too few usable rows remain; ``remaining`` and ``minimum`` say how many."""

    def __init__(self, message: str, remaining: int, minimum: int) -> None:
        super().__init__(message)
        self.remaining = remaining
        self.minimum = minimum


class TooLargeError(DataError):
    """The input exceeds a size limit (bytes, rows or columns); ``limit`` is that limit."""

    def __init__(self, message: str, limit: int) -> None:
        super().__init__(message)
        self.limit = limit


class InvalidArrayError(DataError):
    """Arrays handed to :func:`dataset_from_arrays` have wrong shapes or values."""


class ValueRangeError(DataError):
    """A used column holds values too large to compute with (beyond :data:`MAX_ABS_VALUE`); ``column`` names it."""

    def __init__(self, message: str, column: str) -> None:
        super().__init__(message)
        self.column = column


# ------------------------------------------------------------------ constants
#: Noise level each generator uses at ``DataSpec.noise == 3`` (the default).
NOISE_REFERENCE: dict[str, float] = {
    "cubic": 3.0,  # std of eps in y = x^3 + eps (the paper)
    "sine": 1.0,  # multiplier of the heteroscedastic std 0.15 + 0.25|x|
    "gap": 0.25,  # std of the noise around the gap curve
    "moons": 0.15,  # std of Gaussian jitter added to each coordinate
    "circles": 0.1,
    "spirals": 0.06,
    "blobs": 0.9,  # std of each blob
    "xor": 0.35,
}

#: Input band removed from the training data by ``DataSpec.gap`` (always for ``"gap"``).
GAP_BANDS: dict[str, tuple[float, float]] = {
    "cubic": (0.5, 2.5),
    "sine": (0.75, 2.5),
    "gap": (-1.5, 1.5),
}

#: Fewest usable rows a real (CSV / array) data set may have.
MIN_ROWS = 10
#: Most classes a classification target may have.
MAX_CLASSES = 50
#: Bounds of the synthetic validation/test draws.
_SYNTH_EVAL_MIN, _SYNTH_EVAL_MAX = 200, 10_000

_PRETTY = {
    "cubic": "Cubic toy",
    "sine": "Heteroscedastic sine",
    "gap": "Gap (in-between)",
    "moons": "Two moons",
    "circles": "Circles",
    "spirals": "Spirals",
    "blobs": "Gaussian blobs",
    "xor": "XOR",
    "diabetes": "Diabetes",
    "wine": "Wine",
    "breast_cancer": "Breast cancer",
    "digits": "Digits (8x8)",
    "iris": "Iris",
}


# -------------------------------------------------------------------- Dataset
@dataclass
class LoadSummary:
    """What happened while loading real data, for the user to read.

    Attributes:
        rows_read: data rows found in the source.
        rows_used: rows left after cleaning (train + val + test).
        rows_dropped: reason -> number of rows dropped for it.
        columns_dropped: column name -> reason it was not used.
        task: the task used.
        task_reason: why that task (inferred or forced).
        encoding: text encoding used (CSV only).
        delimiter: field separator used (CSV only).
        decimal: decimal mark used (CSV only).
        has_header: whether the first row was taken as a header (CSV only).
    """

    rows_read: int = 0
    rows_used: int = 0
    rows_dropped: dict[str, int] = field(default_factory=dict)
    columns_dropped: dict[str, str] = field(default_factory=dict)
    task: str = ""
    task_reason: str = ""
    encoding: str = ""
    delimiter: str = ""
    decimal: str = "."
    has_header: bool = True


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
        summary: structured account of the loading (real data), else ``None``.
        held_out: classes left out of the training and validation rows (``DataSpec.held_out``);
            the test rows keep them.
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
    summary: LoadSummary | None = None
    held_out: tuple[int, ...] = ()

    @property
    def n_features(self) -> int:
        """Number of input columns."""
        return int(self.x_train.shape[1])

    @property
    def n_classes(self) -> int:
        """Number of classes (0 for regression)."""
        return len(self.class_names) if self.class_names else 0

    @property
    def n_train(self) -> int:
        """Number of training rows."""
        return int(self.x_train.shape[0])

    def scale_x(self, x: np.ndarray) -> np.ndarray:
        """Standardise inputs with the training statistics."""
        return (np.asarray(x, dtype=np.float64) - self.x_mean) / self.x_std

    def unscale_x(self, z: np.ndarray) -> np.ndarray:
        """Inverse of :meth:`scale_x`: standardised inputs back to original units."""
        return np.asarray(z, dtype=np.float64) * self.x_std + self.x_mean

    def scale_y(self, y: np.ndarray) -> np.ndarray:
        """Standardise a regression target with the training statistics."""
        return (np.asarray(y, dtype=np.float64) - self.y_mean) / self.y_std

    def unscale_mean(self, mu: np.ndarray) -> np.ndarray:
        """Standardised predicted means back to the target's units."""
        return np.asarray(mu) * self.y_std + self.y_mean

    def unscale_var(self, var: np.ndarray) -> np.ndarray:
        """Standardised predicted variances back to the target's units (times s^2)."""
        return np.asarray(var) * self.y_std**2

    def unscale_std(self, std: np.ndarray) -> np.ndarray:
        """Standardised predicted standard deviations back to the target's units (times s)."""
        return np.asarray(std) * self.y_std


# ------------------------------------------------------------------- helpers
def _rng(seed: int, stream: int) -> np.random.Generator:
    """An independent generator per (seed, stream): 0 train, 1 val, 2 test, 3 split."""
    return np.random.default_rng(np.random.SeedSequence([int(seed), int(stream)]))


def effective_noise(spec: DataSpec) -> float:
    """The noise level a synthetic generator actually uses for ``spec`` (see module doc)."""
    ref = NOISE_REFERENCE.get(spec.name)
    if ref is None:
        return float(spec.noise)
    if spec.name == "cubic":
        return float(spec.noise)
    return ref * float(spec.noise) / 3.0


def _fmt_num(v: float) -> str:
    """Short human number: 3 -> '3', 0.25 -> '0.25', 1e-07 -> '1e-07'."""
    if math.isfinite(v) and float(v).is_integer() and abs(v) < 1e15:
        return str(int(v))
    return f"{v:.4g}"


#: Largest magnitude a feature or regression target may have: the squares that scaling and the metrics
#: take stay far from float64's overflow (about 1.8e308).
MAX_ABS_VALUE = 1e100


def _check_magnitude(arrays: list[np.ndarray], names: list[str]) -> None:
    """Refuse columns with values beyond :data:`MAX_ABS_VALUE`, naming the first such column."""
    stacked = np.concatenate([a.reshape(-1, len(names)) for a in arrays], axis=0)
    if not stacked.size:
        return
    with np.errstate(invalid="ignore"):
        largest = np.nanmax(np.abs(np.where(np.isfinite(stacked), stacked, 0.0)), axis=0)
    for i in np.flatnonzero(largest > MAX_ABS_VALUE):
        raise ValueRangeError(
            f"column '{_short(names[i])}' has values as large as {largest[i]:.3g}; values beyond ±{MAX_ABS_VALUE:.0e} "
            "are too large to use (their squares overflow) — rescale the column, e.g. divide it by a power of ten",
            column=names[i])


def _train_stats(x: np.ndarray, feature_names: list[str], notes: list[str]) -> tuple[np.ndarray, np.ndarray]:
    mean = x.mean(axis=0)
    std = x.std(axis=0)
    const = ~(std > 1e-12 * np.maximum(1.0, np.abs(mean)))
    if const.any():
        names = [feature_names[i] for i in np.flatnonzero(const)]
        shown = ", ".join(repr(n) for n in names[:8]) + (f" and {len(names) - 8} more" if len(names) > 8 else "")
        notes.append(
            f"{len(names)} feature(s) constant in the training data ({shown}): "
            "their scale is set to 1.0 (they carry no information)."
        )
        std = np.where(const, 1.0, std)
    return mean.astype(np.float64), std.astype(np.float64)


def _assemble(
    *,
    name: str,
    task: Task,
    feature_names: list[str],
    target_name: str,
    splits: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray],
    class_names: list[str] | None = None,
    notes: list[str] | None = None,
    **extra: object,
) -> Dataset:
    """Build a :class:`Dataset`: cast dtypes and fit the scaling on the training split."""
    notes = list(notes or [])
    x_tr, y_tr, x_va, y_va, x_te, y_te = splits
    d = x_tr.shape[1]
    xs = [np.ascontiguousarray(a, dtype=np.float64).reshape(-1, d) for a in (x_tr, x_va, x_te)]
    ydt = np.float64 if task == "regression" else np.int64
    ys = [np.ascontiguousarray(a).astype(ydt).reshape(-1) for a in (y_tr, y_va, y_te)]
    _check_magnitude(xs, list(feature_names))
    if task == "regression":
        _check_magnitude(ys, [target_name])
    x_mean, x_std = _train_stats(xs[0], feature_names, notes)
    y_mean, y_std = 0.0, 1.0
    if task == "regression":
        y_mean = float(ys[0].mean())
        y_std = float(ys[0].std())
        if not y_std > 1e-12 * max(1.0, abs(y_mean)):
            raise ConstantTargetError(
                f"target '{target_name}' has a single value {_fmt_value(y_mean)} in the training data — nothing to learn"
            )
    return Dataset(
        name=name,
        task=task,
        feature_names=list(feature_names),
        target_name=target_name,
        x_train=xs[0],
        y_train=ys[0],
        x_val=xs[1],
        y_val=ys[1],
        x_test=xs[2],
        y_test=ys[2],
        x_mean=x_mean,
        x_std=x_std,
        y_mean=y_mean,
        y_std=y_std,
        class_names=class_names,
        notes=notes,
        **extra,  # type: ignore[arg-type]
    )


# ------------------------------------------------------- synthetic regression
@dataclass(frozen=True)
class _Curve:
    f: Callable[[np.ndarray], np.ndarray]
    sd: Callable[[np.ndarray, float], np.ndarray]  # (x, level) -> std
    domain: tuple[float, float]
    plot_range: tuple[float, float]
    formula: str


def _cubic(x: np.ndarray) -> np.ndarray:
    return np.asarray(x, dtype=np.float64) ** 3


def _sine(x: np.ndarray) -> np.ndarray:
    return 3.0 * np.sin(np.asarray(x, dtype=np.float64))


def _gapf(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    return 0.1 * x**3 - x


_CURVES: dict[str, _Curve] = {
    "cubic": _Curve(_cubic, lambda x, s: np.full_like(np.asarray(x, dtype=np.float64), s), (-4.0, 4.0),
                    (-6.0, 6.0), "y = x³ + ε"),
    "sine": _Curve(_sine, lambda x, s: s * (0.15 + 0.25 * np.abs(np.asarray(x, dtype=np.float64))),
                   (-5.0, 5.0), (-8.0, 8.0), "y = 3 sin x + ε, noise grows with |x|"),
    "gap": _Curve(_gapf, lambda x, s: np.full_like(np.asarray(x, dtype=np.float64), s), (-4.0, 4.0),
                  (-6.0, 6.0), "y = 0.1x³ − x + ε, no data in the middle"),
}


def _uniform_excluding(rng: np.random.Generator, n: int, lo: float, hi: float,
                       bands: list[tuple[float, float]]) -> np.ndarray:
    """``n`` uniform draws on ``[lo, hi]`` minus the open ``bands`` (exactly ``n``, no rejection)."""
    pieces: list[tuple[float, float]] = []
    start = lo
    for a, b in sorted(bands):
        a, b = max(a, lo), min(b, hi)
        if a > start:
            pieces.append((start, a))
        start = max(start, b)
    if start < hi:
        pieces.append((start, hi))
    lengths = np.array([b - a for a, b in pieces])
    u = rng.uniform(0.0, lengths.sum(), size=n)
    cum = np.concatenate([[0.0], np.cumsum(lengths)])
    idx = np.clip(np.searchsorted(cum, u, side="right") - 1, 0, len(pieces) - 1)
    starts = np.array([a for a, _ in pieces])
    return starts[idx] + (u - cum[idx])


def _eval_size(spec: DataSpec, fraction: float) -> int:
    if fraction <= 0:
        return 0
    return max(_SYNTH_EVAL_MIN, min(spec.n, _SYNTH_EVAL_MAX))


def _synthetic_regression(spec: DataSpec) -> Dataset:
    curve = _CURVES[spec.name]
    level = effective_noise(spec)
    bands = [GAP_BANDS[spec.name]] if (spec.gap or spec.name == "gap") else []
    lo, hi = curve.domain

    def draw(stream: int, n: int, excl: list[tuple[float, float]]) -> tuple[np.ndarray, np.ndarray]:
        rng = _rng(spec.seed, stream)
        x = _uniform_excluding(rng, n, lo, hi, excl)
        y = curve.f(x) + curve.sd(x, level) * rng.standard_normal(n)
        return x.reshape(-1, 1), y

    x_tr, y_tr = draw(0, spec.n, bands)
    x_va, y_va = draw(1, _eval_size(spec, spec.val_fraction), bands)
    x_te, y_te = draw(2, _eval_size(spec, spec.test_fraction), [])
    notes = [f"{curve.formula}; x ~ U[{_fmt_num(lo)}, {_fmt_num(hi)}]; noise level {_fmt_num(level)}."]
    if bands:
        a, b = bands[0]
        notes.append(f"No training or validation inputs in ({_fmt_num(a)}, {_fmt_num(b)}); "
                     "the test set covers it, to measure in-between uncertainty.")
    notes.append("Validation and test sets are fresh draws from the same generator (derived seeds).")

    def noise_fn(x: np.ndarray, _sd: Callable = curve.sd, _lv: float = level) -> np.ndarray:
        return _sd(np.asarray(x, dtype=np.float64), _lv)

    return _assemble(
        name=describe(spec), task="regression", feature_names=["x"], target_name="y",
        splits=(x_tr, y_tr, x_va, y_va, x_te, y_te), notes=notes,
        true_fn=curve.f, noise_fn=noise_fn, gaps=list(bands), plot_range=curve.plot_range,
    )


# --------------------------------------------------- synthetic classification
def _balanced_labels(rng: np.random.Generator, n: int, k: int) -> np.ndarray:
    return rng.permutation(np.arange(n) % k)


def _draw_classification(name: str, rng: np.random.Generator, n: int, k: int,
                         level: float) -> tuple[np.ndarray, np.ndarray]:
    if name == "moons":
        y = _balanced_labels(rng, n, 2)
        t = rng.uniform(0.0, math.pi, n)
        x = np.where(y[:, None] == 0,
                     np.stack([np.cos(t), np.sin(t)], 1),
                     np.stack([1.0 - np.cos(t), 0.5 - np.sin(t)], 1))
    elif name == "circles":
        y = _balanced_labels(rng, n, 2)
        t = rng.uniform(0.0, 2 * math.pi, n)
        r = np.where(y == 0, 1.0, 0.5)
        x = np.stack([r * np.cos(t), r * np.sin(t)], 1)
    elif name == "spirals":
        y = _balanced_labels(rng, n, k)
        t = np.sqrt(rng.uniform(0.0025, 1.0, n))  # sqrt: spread evenly over the longer outer turns
        theta = 2 * math.pi * y / k + 3.0 * math.pi * t
        x = np.stack([t * np.cos(theta), t * np.sin(theta)], 1)
    elif name == "blobs":
        y = _balanced_labels(rng, n, k)
        ang = 2 * math.pi * np.arange(k) / k + math.pi / 2
        centers = 3.0 * np.stack([np.cos(ang), np.sin(ang)], 1)
        x = centers[y]
    elif name == "xor":
        quad = _balanced_labels(rng, n, 4)
        sx = np.where(quad % 2 == 0, 1.0, -1.0)
        sy = np.where(quad // 2 == 0, 1.0, -1.0)
        x = np.stack([sx, sy], 1)
        y = (sx * sy < 0).astype(np.int64)
    else:  # pragma: no cover - guarded by DataSpec
        raise DataError(f"unknown synthetic classification set '{name}'")
    x = x + level * rng.standard_normal((n, 2))
    return x, y.astype(np.int64)


_CLASS_NAMES: dict[str, list[str]] = {
    "moons": ["upper moon", "lower moon"],
    "circles": ["outer circle", "inner circle"],
    "xor": ["same sign", "opposite sign"],
}


def _synthetic_classification(spec: DataSpec) -> Dataset:
    k = spec.n_classes if spec.name in ("spirals", "blobs") else 2
    level = effective_noise(spec)
    splits = []
    for stream, n in ((0, spec.n), (1, _eval_size(spec, spec.val_fraction)),
                      (2, _eval_size(spec, spec.test_fraction))):
        splits.extend(_draw_classification(spec.name, _rng(spec.seed, stream), n, k, level))
    names = _CLASS_NAMES.get(spec.name) or [f"{'arm' if spec.name == 'spirals' else 'blob'} {i + 1}"
                                           for i in range(k)]
    notes = [f"{k} balanced classes; jitter {_fmt_num(level)}.",
             "Validation and test sets are fresh draws from the same generator (derived seeds)."]
    return _assemble(name=describe(spec), task="classification", feature_names=["x1", "x2"],
                     target_name="class", splits=tuple(splits),  # type: ignore[arg-type]
                     class_names=names, notes=notes)


# -------------------------------------------------------------------- splits
def _split_indices(n: int, val_fraction: float, test_fraction: float, seed: int,
                   labels: np.ndarray | None, notes: list[str]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Shuffle ``range(n)`` with ``seed`` into (train, val, test) index arrays.

    Sizes: ``round(fraction * n)`` (at least 1 when the fraction is positive).
    With ``labels``, each class is split in the same proportions (stratified) when
    every class has at least as many rows as there are non-empty splits; otherwise
    a plain shuffle with a note.
    """
    n_te = max(1, round(test_fraction * n)) if test_fraction > 0 else 0
    n_va = max(1, round(val_fraction * n)) if val_fraction > 0 else 0
    if n - n_te - n_va < 1:
        raise TooFewRowsError(
            f"only {n} usable rows: not enough to hold out validation and test rows and still train "
            f"(need at least {MIN_ROWS})", remaining=n, minimum=MIN_ROWS)
    rng = _rng(seed, 3)
    n_splits = 1 + (n_te > 0) + (n_va > 0)
    if labels is not None and n_splits > 1:
        classes, counts = np.unique(labels, return_counts=True)
        if counts.min() >= n_splits:
            tr: list[np.ndarray] = []
            va: list[np.ndarray] = []
            te: list[np.ndarray] = []
            for c in classes:
                idx = rng.permutation(np.flatnonzero(labels == c))
                m = len(idx)
                k_te = min(max(1, round(test_fraction * m)), m - 1) if n_te else 0
                k_va = min(max(1, round(val_fraction * m)), m - 1 - k_te) if n_va else 0
                te.append(idx[:k_te])
                va.append(idx[k_te:k_te + k_va])
                tr.append(idx[k_te + k_va:])
            return tuple(np.sort(np.concatenate(p)) for p in (tr, va, te))  # type: ignore[return-value]
        notes.append("Split not stratified: some class has too few rows to appear in every split.")
    perm = rng.permutation(n)
    return np.sort(perm[n_te + n_va:]), np.sort(perm[n_te:n_te + n_va]), np.sort(perm[:n_te])


def _check_classes(y_raw: np.ndarray, target: str) -> tuple[np.ndarray, list[str]]:
    """Encode labels as int64 indices 0..k-1 (sorted), with their names."""
    values, codes = np.unique(y_raw, return_inverse=True)
    if len(values) < 2:
        raise ClassCountError(
            f"target '{target}' has a single class {_label(values[0]) if len(values) else ''} — "
            "nothing to learn; a classifier needs at least two classes")
    if len(values) > MAX_CLASSES:
        raise ClassCountError(
            f"target '{target}' has {len(values)} distinct values, more than the {MAX_CLASSES} classes "
            "allowed; if it is a number to predict, choose the regression task")
    return codes.astype(np.int64).reshape(-1), [_label(v) for v in values]


def _label(v: object) -> str:
    if isinstance(v, (float, np.floating)):
        return _fmt_num(float(v))
    if isinstance(v, (np.integer,)):
        return str(int(v))
    return str(v)


# ------------------------------------------------------------------- bundled
def _bundled(spec: DataSpec) -> Dataset:
    from sklearn import datasets as skd  # local import: keeps `import ensemble_core` light

    notes: list[str] = []
    if spec.name == "diabetes":
        b = skd.load_diabetes(scaled=False)
        x, y = np.asarray(b.data, dtype=np.float64), np.asarray(b.target, dtype=np.float64)
        feats, target, task, class_names = list(b.feature_names), "disease progression", "regression", None
        labels = None
    else:
        loader = {"wine": skd.load_wine, "breast_cancer": skd.load_breast_cancer,
                  "digits": skd.load_digits, "iris": skd.load_iris}[spec.name]
        b = loader()
        x, y = np.asarray(b.data, dtype=np.float64), np.asarray(b.target, dtype=np.int64)
        feats = [str(f) for f in getattr(b, "feature_names", [f"x{i + 1}" for i in range(x.shape[1])])]
        target, task = ("digit" if spec.name == "digits" else "class"), "classification"
        class_names = [str(c) for c in b.target_names]
        labels = y
    tr, va, te = _split_indices(len(y), spec.val_fraction, spec.test_fraction, spec.seed, labels, notes)
    notes.insert(0, f"{len(y)} rows from scikit-learn's bundled '{spec.name}' set; split "
                    f"{len(tr)} train / {len(va)} validation / {len(te)} test (seed {spec.seed}).")
    summary = LoadSummary(rows_read=len(y), rows_used=len(y), task=task,
                          task_reason=f"'{spec.name}' is a {task} data set")
    return _assemble(name=describe(spec), task=task, feature_names=feats, target_name=target,  # type: ignore[arg-type]
                     splits=(x[tr], y[tr], x[va], y[va], x[te], y[te]), class_names=class_names,
                     notes=notes, summary=summary)


# -------------------------------------------------------------------- arrays
def _as_2d(a: object, what: str) -> np.ndarray:
    try:
        arr = np.asarray(a, dtype=np.float64)
    except (TypeError, ValueError):
        raise InvalidArrayError(f"{what} must be numbers (could not convert it to floats)") from None
    if arr.ndim == 1:
        arr = arr.reshape(-1, 1)
    if arr.ndim != 2:
        raise InvalidArrayError(f"{what} must be a 2-D array [rows, features], got {arr.ndim} dimensions")
    return arr


def dataset_from_arrays(
    x: np.ndarray,
    y: np.ndarray,
    task: Task,
    *,
    x_val: np.ndarray | None = None,
    y_val: np.ndarray | None = None,
    x_test: np.ndarray | None = None,
    y_test: np.ndarray | None = None,
    val_fraction: float = 0.0,
    test_fraction: float = 0.0,
    seed: int = 0,
    name: str = "arrays",
    feature_names: list[str] | None = None,
    target_name: str = "y",
    class_names: list[str] | None = None,
    **extra: object,
) -> Dataset:
    """Wrap in-memory arrays as a :class:`Dataset` (standardisation fitted on the train part).

    Args:
        x: inputs ``[n, d]`` (a 1-D array is one feature).
        y: targets ``[n]``: numbers for regression; any labels for classification
            (integers ``0..k-1`` are kept as they are when ``class_names`` is given).
        task: ``"regression"`` or ``"classification"``.
        x_val, y_val, x_test, y_test: explicit validation/test sets; when absent they
            are split off ``x``/``y`` by ``val_fraction``/``test_fraction`` with ``seed``.
        name, feature_names, target_name, class_names: labels.
        **extra: other :class:`Dataset` fields (``true_fn``, ``gaps``, ``plot_range`` ...).

    Returns:
        The dataset.

    Raises:
        InvalidArrayError: shapes disagree, values are not finite, or arguments are wrong.
        ConstantTargetError, ClassCountError, TooFewRowsError: unusable targets.
    """
    if task not in ("regression", "classification"):
        raise InvalidArrayError(f"task must be 'regression' or 'classification', got '{task}'")
    parts = {"train": (x, y), "validation": (x_val, y_val), "test": (x_test, y_test)}
    arrays: dict[str, tuple[np.ndarray, np.ndarray] | None] = {}
    d: int | None = None
    for part, (xa, ya) in parts.items():
        if (xa is None) != (ya is None):
            raise InvalidArrayError(f"give both x and y for the {part} set, or neither")
        if xa is None:
            arrays[part] = None
            continue
        xa2 = _as_2d(xa, f"x ({part})")
        ya1 = np.asarray(ya)
        if ya1.ndim == 2 and ya1.shape[1] == 1:
            ya1 = ya1[:, 0]
        if ya1.ndim != 1:
            raise InvalidArrayError(f"y ({part}) must be 1-D, got shape {tuple(ya1.shape)}")
        if len(ya1) != len(xa2):
            raise InvalidArrayError(f"x and y ({part}) have different numbers of rows: {len(xa2)} and {len(ya1)}")
        if d is not None and xa2.shape[1] != d:
            raise InvalidArrayError(f"x ({part}) has {xa2.shape[1]} features but the training x has {d}")
        d = xa2.shape[1] if d is None else d
        if not np.isfinite(xa2).all():
            raise InvalidArrayError(f"x ({part}) contains NaN or infinite values")
        if task == "regression":
            try:
                ya1 = ya1.astype(np.float64)
            except (TypeError, ValueError):
                raise NonNumericError(f"y ({part}) must be numeric for regression") from None
            if not np.isfinite(ya1).all():
                raise InvalidArrayError(f"y ({part}) contains NaN or infinite values")
        arrays[part] = (xa2, ya1)
    x_tr, y_tr = arrays["train"]  # type: ignore[misc]
    if d == 0:
        raise InvalidArrayError("x has no feature columns")
    if feature_names is None:
        feature_names = ["x"] if d == 1 else [f"x{i + 1}" for i in range(d)]  # type: ignore[operator]
    if len(feature_names) != d:
        raise InvalidArrayError(f"{len(feature_names)} feature names for {d} features")
    notes: list[str] = []
    n = len(y_tr)
    if n < 2:
        raise TooFewRowsError(f"only {n} training row(s); at least 2 are needed", remaining=n, minimum=2)

    # encode labels over all parts so indices agree
    if task == "classification":
        all_y = [a[1] for a in arrays.values() if a is not None]
        if class_names is not None:
            k = len(class_names)
            for ya in all_y:
                ok = ya.dtype.kind in "iub" or (ya.dtype.kind == "f" and np.all(np.mod(ya, 1) == 0))
                if not ok or (len(ya) and (ya.min() < 0 or ya.max() >= k)):
                    raise InvalidArrayError(f"with {k} class names, labels must be integers 0..{k - 1}")
            if k < 2 or k > MAX_CLASSES:
                raise ClassCountError(f"{k} classes given; between 2 and {MAX_CLASSES} are supported")
            codes = [ya.astype(np.int64) for ya in all_y]
        else:
            cat = np.concatenate(all_y)
            enc, class_names = _check_classes(cat, target_name)
            codes = np.split(enc, np.cumsum([len(a) for a in all_y])[:-1])
        it = iter(codes)
        for part in arrays:
            if arrays[part] is not None:
                arrays[part] = (arrays[part][0], next(it))  # type: ignore[index]
        x_tr, y_tr = arrays["train"]  # type: ignore[misc]

    if arrays["validation"] is None or arrays["test"] is None:
        labels = y_tr if task == "classification" else None
        vf = val_fraction if arrays["validation"] is None else 0.0
        tf = test_fraction if arrays["test"] is None else 0.0
        tr, va, te = _split_indices(n, vf, tf, seed, labels, notes)
        if arrays["validation"] is None:
            arrays["validation"] = (x_tr[va], y_tr[va])
        if arrays["test"] is None:
            arrays["test"] = (x_tr[te], y_tr[te])
        x_tr, y_tr = x_tr[tr], y_tr[tr]
    x_va, y_va = arrays["validation"]  # type: ignore[misc]
    x_te, y_te = arrays["test"]  # type: ignore[misc]
    return _assemble(name=name, task=task, feature_names=list(feature_names), target_name=target_name,
                     splits=(x_tr, y_tr, x_va, y_va, x_te, y_te), class_names=class_names,
                     notes=notes, **extra)


def add_training_point(dataset: Dataset, x: float, y: float) -> Dataset:
    """A copy of a 1-D regression dataset with the point ``(x, y)`` added to its training split.

    The training statistics (``x_mean``, ``x_std``, ``y_mean``, ``y_std``) are
    refitted on the new training split (a zero std becomes 1.0), and a note
    records the point.  The validation and test splits are unchanged; so is
    ``dataset`` (reset by reloading it from its spec).

    Args:
        dataset: a regression dataset with one input feature.
        x, y: the point, in original units.

    Returns:
        The new dataset.

    Raises:
        ValueError: the dataset is not 1-D regression, or the point is not finite.
    """
    if dataset.task != "regression" or dataset.x_train.shape[1] != 1:
        raise ValueError("points can only be added to a 1-D regression data set")
    if not (np.isfinite(x) and np.isfinite(y)):
        raise ValueError(f"the point must be finite, got ({x}, {y})")
    x_train = np.vstack([dataset.x_train, [[float(x)]]])
    y_train = np.append(dataset.y_train, float(y))
    x_std = x_train.std(axis=0)
    x_std[x_std == 0] = 1.0
    y_std = float(y_train.std()) or 1.0
    return dataclasses.replace(
        dataset, x_train=x_train, y_train=y_train, x_mean=x_train.mean(axis=0), x_std=x_std,
        y_mean=float(y_train.mean()), y_std=y_std,
        notes=[*dataset.notes, f"added a training point at x={x:.3g}, y={y:.3g} by clicking"],
    )


# ------------------------------------------------------------- CSV export
#: Characters that make a spreadsheet read a cell as a formula (OWASP's CSV-injection list).
_FORMULA_LEAD = ("=", "+", "-", "@", "\t", "\r")
_PLAIN_NUMBER = re.compile(r"[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?|[+-]?(inf|nan)", re.IGNORECASE)


def csv_safe_cell(value: object) -> object:
    """``value`` made safe for a CSV cell: text starting with a formula character gets a leading ``'``.

    Numbers (also text holding a plain number such as ``"-3.2"``) and other text are returned unchanged.
    """
    if not isinstance(value, str) or not value.startswith(_FORMULA_LEAD) or _PLAIN_NUMBER.fullmatch(value):
        return value
    return "'" + value


def csv_safe(frame: pd.DataFrame) -> pd.DataFrame:
    """A copy of ``frame`` for any CSV the app produces: formula-leading text cells and names escaped.

    Every text cell and every column name (and index label) that starts with ``=``, ``+``, ``-``,
    ``@``, a tab or a carriage return gets a leading single quote, so a spreadsheet shows it as text
    instead of running it (OWASP's rule for CSV injection).  Numeric columns are untouched: a negative
    number is a number, not a formula.  Use it for tables that show user text (CSV cells, column names)
    wherever they can be downloaded.
    """
    out = frame.copy()
    for i in range(out.shape[1]):
        col = out.iloc[:, i]
        if col.dtype == object or str(col.dtype) in ("string", "str", "category"):
            out.isetitem(i, col.astype(object).map(csv_safe_cell))
    out.columns = [csv_safe_cell(c) for c in out.columns]
    if out.index.dtype == object:
        out.index = [csv_safe_cell(v) for v in out.index]
    return out


# ---------------------------------------------------------------- describe
def describe(spec: DataSpec) -> str:
    """One-line human label, e.g. ``"Cubic toy · 20 points · noise 3"``."""
    pretty = _PRETTY.get(spec.name, spec.name)
    if spec.source == "synthetic":
        bits = [pretty, f"{spec.n} points"]
        if spec.name in ("spirals", "blobs"):
            bits.append(f"{spec.n_classes} classes")
        bits.append(f"noise {_fmt_num(spec.noise)}")
        if spec.gap and spec.name in ("cubic", "sine"):
            bits.append("with a gap")
        return " · ".join(bits)
    if spec.source == "bundled":
        task = "regression" if spec.name in BUNDLED_REGRESSION else "classification"
        return f"{pretty} · {task} (scikit-learn)"
    bits = [spec.name]
    if spec.target:
        bits.append(f"target '{spec.target}'")
    if spec.task != "auto":
        bits.append(spec.task)
    return " · ".join(bits)


# ---------------------------------------------------------------- entry point
def load_dataset(spec: DataSpec, csv_data: bytes | str | Path | None = None) -> Dataset:
    """Build the dataset a :class:`DataSpec` describes.

    Args:
        spec: what to load (see the module docstring for the split rules).
        csv_data: the uploaded file's content (bytes or text) when
            ``spec.source == "csv"``; ignored otherwise.

    Returns:
        The :class:`Dataset`, deterministic given ``spec``.

    Raises:
        DataError: (a subclass of it) with a human message on unusable data.
    """
    if not isinstance(spec, DataSpec):
        raise DataError(f"expected a DataSpec, got {type(spec).__name__}")
    if spec.held_out:
        return hold_out_classes(load_dataset(replace(spec, held_out=()), csv_data), spec.held_out)
    if spec.source == "synthetic":
        if spec.name in SYNTHETIC_REGRESSION:
            if spec.task == "classification":
                raise DataError(f"'{spec.name}' is a regression data set; it cannot be used for classification")
            return _synthetic_regression(spec)
        if spec.name in SYNTHETIC_CLASSIFICATION:
            if spec.task == "regression":
                raise DataError(f"'{spec.name}' is a classification data set; it cannot be used for regression")
            return _synthetic_classification(spec)
    if spec.source == "bundled" and spec.name in BUNDLED_REGRESSION + BUNDLED_CLASSIFICATION:
        natural = "regression" if spec.name in BUNDLED_REGRESSION else "classification"
        if spec.task not in ("auto", natural):
            raise DataError(f"'{spec.name}' is a {natural} data set; it cannot be used for {spec.task}")
        return _bundled(spec)
    if spec.source == "csv":
        if csv_data is None:
            raise EmptyFileError("no CSV file was given: upload a file first")
        return dataset_from_table(parse_csv(csv_data), spec)
    raise DataError(f"unknown data set '{spec.name}' for source '{spec.source}'")


def hold_out_classes(dataset: Dataset, held_out: tuple[int, ...]) -> Dataset:
    """The dataset with the rows of ``held_out`` classes removed from training and validation.

    The test rows keep every class, so the test set mixes seen and unseen
    classes; the model still has one output per class.  The input scaling is
    fitted again on the remaining training rows.

    Raises:
        DataError: a regression set, a class index out of range, fewer than two
            classes left to train on, or no test row of a held-out class.
    """
    held = tuple(sorted({int(c) for c in held_out}))
    if not held:
        return dataset
    if dataset.task != "classification":
        raise DataError("classes can be held out of a classification data set only")
    k = dataset.n_classes
    bad = [c for c in held if not 0 <= c < k]
    if bad:
        raise DataError(f"held-out class {bad[0]} does not exist: this data set has classes 0..{k - 1}")
    if k - len(held) < 2:
        raise DataError(f"holding out {len(held)} of {k} classes leaves fewer than 2 to train on")
    keep_tr = ~np.isin(dataset.y_train, held)
    keep_va = ~np.isin(dataset.y_val, held)
    if not np.isin(dataset.y_test, held).any():
        raise DataError("the test split has no row of a held-out class: raise the test fraction")
    if keep_tr.sum() < 4:
        raise DataError("too few training rows are left once the held-out classes are removed")
    names = dataset.class_names or [str(c) for c in range(k)]
    notes = list(dataset.notes) + [
        f"Held out of training and validation: class{'es' if len(held) > 1 else ''} "
        f"{', '.join(names[c] for c in held)} ({int((~keep_tr).sum())} training and {int((~keep_va).sum())} "
        f"validation rows removed); the test split keeps them as unseen classes."]
    x_mean, x_std = _train_stats(dataset.x_train[keep_tr], list(dataset.feature_names), [])
    return replace(dataset, x_train=dataset.x_train[keep_tr], y_train=dataset.y_train[keep_tr],
                   x_val=dataset.x_val[keep_va], y_val=dataset.y_val[keep_va], x_mean=x_mean, x_std=x_std,
                   notes=notes, held_out=held)


# ------------------------------------------------------------------------ CSV
#: Default limits of :func:`parse_csv` (checked before any parsing work).
MAX_CSV_BYTES = 20 * 1024 * 1024
MAX_CSV_ROWS = 100_000
MAX_CSV_COLUMNS = 500

_DELIMITERS = (",", ";", "\t", "|")
_DELIM_NAMES = {",": "comma", ";": "semicolon", "\t": "tab", "|": "pipe"}
_MISSING = frozenset({"", "na", "n/a", "nan", "null", "none", "?", "-", "--", "#n/a", "missing", "."})
_NUMERIC_SHARE = 0.9  # a column is numeric when at least 90% of its non-missing values parse
_SNIFF_LINES = 64
_ENCODING_NOTES = {
    "cp1252": "The file is not UTF-8; it was read as Windows-1252 (Western European). Check accented names.",
    "latin-1": "The file is not UTF-8; it was read as Latin-1. Check accented names.",
    "utf-16": "The file is UTF-16 encoded (it has a byte-order mark).",
}
_SIGNATURES = (
    (b"PK\x03\x04", "a ZIP archive (an Excel .xlsx or .ods workbook?); save the sheet as CSV first"),
    (b"\xd0\xcf\x11\xe0", "an old Excel/Office file; save the sheet as CSV first"),
    (b"%PDF", "a PDF document, not a table"),
    (b"\x89PNG", "a PNG image, not a table"),
    (b"\xff\xd8\xff", "a JPEG image, not a table"),
    (b"\x1f\x8b", "a gzip archive; unpack it first"),
    (b"SQLite format", "an SQLite database, not a table"),
)


@dataclass
class ColumnInfo:
    """Summary of one CSV column.

    Attributes:
        name: column name.
        kind: ``"numeric"``, ``"text"`` or ``"empty"`` (no value at all).
        n_missing: empty / missing-marker cells (plus, for numeric columns, text cells).
        n_text_in_numeric: cells of a numeric column that held text (counted as missing).
        n_infinite: infinite numbers.
        n_distinct: distinct non-missing values.
        integer: numeric and every finite value is a whole number.
        example: a first non-missing value, as text.
    """

    name: str
    kind: Literal["numeric", "text", "empty"]
    n_missing: int
    n_text_in_numeric: int
    n_infinite: int
    n_distinct: int
    integer: bool
    example: str


@dataclass
class CsvTable:
    """A parsed CSV: every column, typed, plus what was noticed on the way.

    Attributes:
        frame: one column per CSV column; numeric columns are float64 (missing = NaN),
            text columns hold strings (missing = None).
        columns: one :class:`ColumnInfo` per column, in order.
        notes: human notes (encoding, header, separator, dropped rows ...).
        rows_read: data rows found (after the header, blank lines skipped).
        rows_dropped: reason -> rows dropped while parsing (e.g. too many fields).
        encoding, delimiter, decimal, has_header: what was detected.
    """

    frame: pd.DataFrame
    columns: list[ColumnInfo]
    notes: list[str]
    rows_read: int
    rows_dropped: dict[str, int]
    encoding: str
    delimiter: str
    decimal: str
    has_header: bool

    @property
    def column_names(self) -> list[str]:
        """Column names, in file order."""
        return [c.name for c in self.columns]

    def column(self, name: str) -> ColumnInfo:
        """The :class:`ColumnInfo` of ``name`` (raises :class:`UnknownColumnError`)."""
        for c in self.columns:
            if c.name == name:
                return c
        raise UnknownColumnError(f"no column named '{_short(name)}'; the columns are: {_name_list(self.column_names)}",
                                 column=name)

    @property
    def numeric_columns(self) -> list[str]:
        """Names of the numeric columns."""
        return [c.name for c in self.columns if c.kind == "numeric"]


def _short(name: str, width: int = 40) -> str:
    """A user-supplied name cut to ``width`` characters for messages."""
    return name if len(name) <= width else name[: width - 1] + "…"


def _name_list(names: list[str], limit: int = 12) -> str:
    shown = ", ".join(f"'{_short(n)}'" for n in names[:limit])
    return shown + (f" and {len(names) - limit} more" if len(names) > limit else "")


def _read_input(data: bytes | bytearray | str | Path, max_bytes: int) -> bytes | str:
    """The raw content, refusing anything over ``max_bytes`` before reading it all."""
    limit_txt = _human_bytes(max_bytes)
    if isinstance(data, Path):
        try:
            size = data.stat().st_size
        except OSError:
            raise DataError(f"cannot open the file '{data.name}' (it does not exist or is not readable)") from None
        if not data.is_file():
            raise DataError(f"'{data.name}' is not a file")
        if size > max_bytes:
            raise TooLargeError(f"the file is {_human_bytes(size)}, over the {limit_txt} limit", limit=max_bytes)
        try:
            with data.open("rb") as fh:
                raw = fh.read(max_bytes + 1)
        except OSError:
            raise DataError(f"cannot read the file '{data.name}'") from None
        if len(raw) > max_bytes:
            raise TooLargeError(f"the file is over the {limit_txt} limit", limit=max_bytes)
        return raw
    if isinstance(data, (bytes, bytearray, memoryview)):
        if len(data) > max_bytes:
            raise TooLargeError(f"the file is {_human_bytes(len(data))}, over the {limit_txt} limit", limit=max_bytes)
        return bytes(data)
    if isinstance(data, str):
        if len(data) > max_bytes:
            raise TooLargeError(f"the text is {len(data):,} characters, over the {limit_txt} limit", limit=max_bytes)
        return data
    raise DataError(f"expected CSV content as bytes, text or a path, got {type(data).__name__}")


def _human_bytes(n: int) -> str:
    if n >= 1024 * 1024:
        return f"{n / (1024 * 1024):.1f} MB".replace(".0 MB", " MB")
    if n >= 1024:
        return f"{n / 1024:.1f} KB".replace(".0 KB", " KB")
    return f"{n} bytes"


def _looks_utf16(raw: bytes) -> bool:
    """Whether BOM-less bytes look like UTF-16 text: NUL in (nearly) every other byte, the others not NUL."""
    sample = raw[:4096]
    even, odd = sample[0::2], sample[1::2]
    if len(odd) < 8:
        return False
    for zeros, other in ((odd, even), (even, odd)):  # little endian (ASCII, NUL), big endian (NUL, ASCII)
        if zeros.count(0) >= 0.9 * len(zeros) and other.count(0) <= 0.1 * len(other):
            return True
    return False


def _decode(raw: bytes) -> tuple[str, str]:
    """Decode bytes: UTF-16 (BOM), UTF-8 (BOM optional), Windows-1252, then Latin-1."""
    for sig, what in _SIGNATURES:
        if raw.startswith(sig):
            raise UndecodableError(f"this is not a CSV file: it looks like {what}")
    if raw.startswith((b"\xff\xfe", b"\xfe\xff")):
        try:
            return raw.decode("utf-16"), "utf-16"
        except UnicodeDecodeError:
            raise UndecodableError("the file claims to be UTF-16 but is not valid UTF-16 text") from None
    if b"\x00" in raw:
        if _looks_utf16(raw):
            raise UndecodableError("this looks like UTF-16 text without a byte-order mark, which cannot be read "
                                   "reliably: save the file as UTF-8 (e.g. \"CSV UTF-8\") and upload it again")
        raise UndecodableError("this is not a text file (it contains NUL bytes): upload a CSV text file")
    try:
        return raw.decode("utf-8-sig"), "utf-8"
    except UnicodeDecodeError:
        pass
    try:
        return raw.decode("cp1252"), "cp1252"
    except UnicodeDecodeError:
        return raw.decode("latin-1"), "latin-1"


_CONTROL_CHARS = re.compile("[\x00-\x08\x0e-\x1f\x7f-\x9f\ufffd]")


def _check_text(text: str) -> None:
    """Refuse text that is mostly control characters (binary data that happened to decode)."""
    if "\x00" in text:
        raise UndecodableError("this is not a text file (it contains NUL characters): upload a CSV text file")
    sample = text[:200_000]
    bad = len(_CONTROL_CHARS.findall(sample))
    if bad > max(2, 0.01 * len(sample)):
        raise UndecodableError(
            "the file does not look like text (it is full of control characters): is it a binary file? "
            "Upload a CSV text file")


def _rows(lines: list[str], delimiter: str) -> list[list[str]]:
    """Non-blank records of ``lines``; stops quietly at the first malformed record."""
    out: list[list[str]] = []
    reader = csv.reader(lines, delimiter=delimiter, quotechar='"', strict=False)
    try:
        for r in reader:
            if any(f.strip() for f in r):
                out.append(r)
    except csv.Error:
        pass
    if not out and lines:  # broken from the first record on: split the raw first line
        out.append(lines[0].split(delimiter))
    return out


def _unterminated_quote(text: str, line: int, delimiter: str) -> bool:
    """Whether the record starting at (1-based) ``line`` opens a quote that the file never closes."""
    import itertools

    rest = itertools.islice(io.StringIO(text, newline=""), line - 1, None)
    try:
        for _ in csv.reader(rest, delimiter=delimiter, quotechar='"', strict=True):
            pass
    except csv.Error as exc:
        return "unexpected end of data" in str(exc)
    return False


def _sniff(text: str) -> str:
    """Pick the separator among , ; tab | that splits the first lines most consistently."""
    lines: list[str] = []
    for line in io.StringIO(text, newline=""):
        if line.strip():
            lines.append(line)
            if len(lines) >= _SNIFF_LINES:
                break
    best: tuple[float, int, int, int] | None = None
    best_d = ","
    for prio, d in enumerate(_DELIMITERS):
        rows = _rows(lines, d)
        if not rows:
            continue
        counts = [len(r) for r in rows]
        mode = max(set(counts), key=lambda c: (counts.count(c), c))
        if mode < 2:
            continue
        share = counts.count(mode) / len(counts)
        # most consistent first; then a non-comma separator (commas may be decimal marks); then more fields
        score = (round(share, 3), 1 if d != "," else 0, mode, -prio)
        if best is None or score > best:
            best, best_d = score, d
    if best is None:
        first = lines[0].strip() if lines else ""
        shown = first[:40] + ("…" if len(first) > 40 else "")
        raise TooFewColumnsError(
            f"only one column was found (first line: '{shown}'); a data set needs at least one feature and a "
            "target. Separate the columns with commas, semicolons, tabs or |")
    return best_d


_NUM_COMMA = re.compile(r"^[+-]?\d*,\d+(?:[eE][+-]?\d+)?$")
_NUM_DOT = re.compile(r"^[+-]?\d*\.\d+(?:[eE][+-]?\d+)?$")


def _to_numbers(values: list[str], decimal: str) -> np.ndarray:
    import pandas as pd

    s = pd.Series(values, dtype=object)
    if decimal == ",":
        s = s.str.replace(",", ".", regex=False)
    out = pd.to_numeric(s, errors="coerce")
    return np.array(out, dtype=np.float64)  # a writable copy


def _has_header(rows: list[list[str]], decimal: str) -> bool:
    """Is the first row a header?

    No when every cell is a number; no when some column is numeric in the rows
    below and *every* such column also has a number in the first row (a header-less
    file with a text label column, like iris); yes otherwise.
    """

    def numbers(cells: list[str]) -> np.ndarray:
        ok = np.isfinite(_to_numbers(cells, decimal))
        return ok & np.array([c.lower() not in _MISSING for c in cells], dtype=bool)

    first = [c.strip() for c in rows[0]]
    first_ok = numbers(first)
    if first_ok.all():
        return False
    sample = rows[1:201]
    numeric_cols = []
    for j in range(len(first)):
        cells = [r[j].strip() for r in sample if j < len(r) and r[j].strip().lower() not in _MISSING]
        if cells and numbers(cells).sum() >= _NUMERIC_SHARE * len(cells):
            numeric_cols.append(j)
    return not (numeric_cols and all(first_ok[j] for j in numeric_cols))


def parse_csv(
    data: bytes | str | Path,
    *,
    max_bytes: int = MAX_CSV_BYTES,
    max_rows: int = MAX_CSV_ROWS,
    max_columns: int = MAX_CSV_COLUMNS,
) -> CsvTable:
    """Parse CSV content into a typed :class:`CsvTable`.

    Detects the encoding (UTF-8 with or without BOM, UTF-16 with BOM, else
    Windows-1252/Latin-1 with a note), the separator (``,`` ``;`` tab ``|``),
    the decimal mark (``,`` when the separator is not a comma and numbers are
    written ``1,5``) and the header (the first row is data when every cell is a
    number; columns are then named ``column_1`` ...).  Quoted fields may contain
    separators and line breaks.  Missing markers (empty, NA, NaN, null, ?, -)
    become missing values; a column is numeric when at least 90% of its other
    cells are numbers (the rest count as missing, with a note).

    Args:
        data: bytes (an upload), text, or a :class:`pathlib.Path`.  A ``str`` is
            the CSV *content*, never a file name.
        max_bytes: size limit, checked before parsing.
        max_rows: most data rows accepted.
        max_columns: most columns accepted.

    Returns:
        The table, with a summary per column and notes.

    Raises:
        DataError: a subclass naming the problem (empty file, header only, one
            column, binary data, duplicate names, limits ...).
    """
    import pandas as pd

    raw = _read_input(data, max_bytes)
    notes: list[str] = []
    if isinstance(raw, bytes):
        if not raw.strip():
            raise EmptyFileError("the file is empty")
        text, encoding = _decode(raw)
        if encoding in _ENCODING_NOTES:
            notes.append(_ENCODING_NOTES[encoding])
    else:
        text, encoding = raw.lstrip("\ufeff"), "text"
    _check_text(text)
    if not text.strip():
        raise EmptyFileError("the file is empty (it contains only blank lines)")

    delimiter = _sniff(text)
    first_line = next((ln for ln in io.StringIO(text, newline="") if ln.strip()), "")
    if first_line.count(delimiter) + 1 > max_columns:
        raise TooLargeError(f"the file has {first_line.count(delimiter) + 1:,} columns; at most "
                            f"{max_columns:,} are allowed", limit=max_columns)

    rows: list[list[str]] = []
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, quotechar='"', strict=False)
    last_start, line_before = 1, 0
    try:
        for rec in reader:
            start, line_before = line_before + 1, reader.line_num
            if not "".join(rec).strip():
                continue
            rows.append(rec)  # cells are stripped per column below
            last_start = start
            if len(rows) > max_rows + 1:
                raise TooLargeError(f"the file has more than {max_rows:,} rows; at most {max_rows:,} are allowed",
                                    limit=max_rows)
    except csv.Error as exc:
        what = "a field is too long" if "larger than field limit" in str(exc) else "the quoting is broken"
        raise MalformedCsvError(f"the file could not be read as a table near line {reader.line_num}: {what}") from None

    if not rows:
        raise EmptyFileError("the file has no values: only separators and blank cells")
    if any("\n" in f or "\r" in f for f in rows[-1]) and _unterminated_quote(text, last_start, delimiter):
        raise MalformedCsvError(f"a quote (\") in line {last_start:,} is never closed, so everything after it "
                                "was read as one cell: close the quote or remove it")

    decimal = "."
    if delimiter != ",":
        cells = [f.strip() for r in rows[:200] for f in r]
        if any(_NUM_COMMA.match(f) for f in cells) and not any(_NUM_DOT.match(f) for f in cells):
            decimal = ","
            notes.append("Numbers use a decimal comma (e.g. 1,5); they were read as 1.5.")

    has_header = _has_header(rows, decimal)
    width = max(len(rows[0]), 1)
    if has_header:
        header, body = [c.strip() for c in rows[0]], rows[1:]
    else:
        header, body = [""] * len(rows[0]), rows
        notes.append("The first row holds numbers only, so it was read as data: the columns are named "
                     "column_1, column_2, …")
    if not body:
        raise HeaderOnlyError(f"the file has a header ({_name_list(header, 6)}) but no data rows")

    # ragged rows: drop trailing empty cells, pad short rows, drop rows with too many cells
    rows_dropped: dict[str, int] = {}
    fixed: list[list[str]] = []
    too_long = 0
    first_long = 0
    for i, r in enumerate(body):
        if len(r) > width:
            if "".join(r[width:]).strip():
                too_long += 1
                first_long = first_long or (i + 2 if has_header else i + 1)
                continue
            r = r[:width]
        elif len(r) < width:
            r = r + [""] * (width - len(r))
        fixed.append(r)
    if too_long:
        if too_long > len(body) / 2:
            raise MalformedCsvError(
                f"{too_long} of {len(body)} rows have more fields than the header's {width} (first: row "
                f"{first_long}); is the separator right? Detected: {_DELIM_NAMES[delimiter]}")
        rows_dropped["more fields than the header"] = too_long
        notes.append(f"{too_long} row(s) with more fields than the header were dropped (first: row {first_long}).")
    if not fixed:
        raise HeaderOnlyError("the file has a header but no usable data rows")
    cols = list(zip(*fixed, strict=True))

    # names
    names: list[str] = []
    unnamed: list[str] = []
    keep: list[int] = []
    for j, h in enumerate(header):
        if not h:
            if not "".join(cols[j]).strip():
                continue  # an empty, unnamed column (e.g. a trailing separator): ignore quietly
            h = f"column_{j + 1}"
            if has_header:
                unnamed.append(h)
        names.append(h)
        keep.append(j)
    if unnamed:
        notes.append(f"Columns without a name were called {_name_list(unnamed)}.")
    seen: dict[str, list[int]] = {}
    for j, h in zip(keep, names, strict=True):
        seen.setdefault(h, []).append(j + 1)
    dups = {h: pos for h, pos in seen.items() if len(pos) > 1}
    if dups:
        desc = "; ".join(f"'{h}' (columns {', '.join(map(str, pos))})" for h, pos in dups.items())
        raise DuplicateColumnError(f"duplicate column names: {desc}; rename them so each is unique",
                                   names=list(dups))
    if len(names) < 2:
        raise TooFewColumnsError(
            f"only one column was found ({_name_list(names)}); a data set needs at least one feature and a "
            "target. Separate the columns with commas, semicolons, tabs or |")

    frame_cols: dict[str, object] = {}
    infos: list[ColumnInfo] = []
    for j, name in zip(keep, names, strict=True):
        vals = list(cols[j])
        nums = _to_numbers(vals, decimal)
        # only cells that did not parse need a closer look (whitespace, missing markers, text)
        unparsed = np.flatnonzero(np.isnan(nums))
        if len(unparsed):
            stripped = [vals[i].strip() for i in unparsed]
            nums[unparsed] = _to_numbers(stripped, decimal)
        missing = np.zeros(len(vals), dtype=bool)
        for i in unparsed:
            missing[i] = vals[i].strip().lower() in _MISSING
        nums[missing] = np.nan
        n_present = int(len(vals) - missing.sum())
        if not n_present:
            infos.append(ColumnInfo(name, "empty", len(vals), 0, 0, 0, False, ""))
            frame_cols[name] = np.full(len(vals), np.nan)
            continue
        example = vals[int(np.argmin(missing))].strip()
        parsed = ~np.isnan(nums)
        n_parsed = int(parsed.sum())
        if n_parsed >= _NUMERIC_SHARE * n_present:
            n_text = n_present - n_parsed
            finite = nums[np.isfinite(nums)]
            infos.append(ColumnInfo(
                name, "numeric", int(len(vals) - n_parsed), n_text, int(np.isinf(nums).sum()),
                int(len(np.unique(finite))) + int(np.isposinf(nums).any()) + int(np.isneginf(nums).any()),
                bool(len(finite) and np.all(np.mod(finite, 1) == 0)), example))
            if n_text:
                bad = vals[int(np.flatnonzero(~parsed & ~missing)[0])].strip()
                notes.append(f"Column '{name}': {n_text} non-numeric value(s) (e.g. '{bad[:30]}') were treated "
                             "as missing.")
            frame_cols[name] = nums
        else:
            clean = [None if m else v.strip() for v, m in zip(vals, missing, strict=True)]
            arr = np.array(clean, dtype=object)
            n_distinct = len(set(clean) - {None})
            infos.append(ColumnInfo(name, "text", int(missing.sum()), 0, 0, n_distinct, False, example))
            frame_cols[name] = arr
    frame = pd.DataFrame({k: pd.Series(v, dtype=np.float64 if isinstance(v, np.ndarray) and v.dtype.kind == "f"
                                       else object) for k, v in frame_cols.items()})
    if delimiter != ",":
        notes.insert(0, f"Columns are separated by a {_DELIM_NAMES[delimiter]}.")
    return CsvTable(frame=frame, columns=infos, notes=notes, rows_read=len(body), rows_dropped=rows_dropped,
                    encoding=encoding, delimiter=delimiter, decimal=decimal, has_header=has_header)


def _fmt_value(v: object) -> str:
    """A target value for a message: numbers as 3.0 / 0.25, text quoted."""
    if isinstance(v, (float, int, np.floating, np.integer)) and not isinstance(v, bool):
        s = f"{float(v):.6g}"
        return s if any(c in s for c in ".eni") else s + ".0"
    return f"'{v}'"


def infer_task(info: ColumnInfo, n_rows: int) -> tuple[Task, str]:
    """Infer the task from the target column's summary.

    Rule: text -> classification; numbers that are all whole and take at most
    10 distinct values (and at most half as many as there are rows) ->
    classification; any other numbers -> regression.

    Returns:
        ``(task, reason)`` with a human reason.
    """
    if info.kind == "text":
        return "classification", f"target '{info.name}' is text ({info.n_distinct} distinct values)"
    if info.integer and info.n_distinct <= 10 and info.n_distinct <= max(2, n_rows // 2):
        return "classification", (f"target '{info.name}' holds whole numbers with only {info.n_distinct} "
                                  "distinct values")
    return "regression", f"target '{info.name}' is numeric with {info.n_distinct} distinct values"


def dataset_from_table(table: CsvTable, spec: DataSpec) -> Dataset:
    """Choose target and features of a parsed CSV, clean the rows and split them.

    ``spec.target`` ("" = last column), ``spec.features`` (empty = every numeric
    column but the target; text and empty columns are dropped with a note),
    ``spec.task`` ("auto" = :func:`infer_task`), ``spec.val_fraction``,
    ``spec.test_fraction`` and ``spec.seed`` are used.  Rows with a missing or
    infinite value in a used column are dropped and counted.

    Raises:
        UnknownColumnError, NonNumericError, AllMissingError, ConstantTargetError,
        ClassCountError, TooFewRowsError: with a message naming the column / count.
    """
    names = table.column_names
    target = spec.target or names[-1]
    tinfo = table.column(target)
    notes = list(table.notes)
    columns_dropped: dict[str, str] = {}
    if tinfo.kind == "empty":
        raise AllMissingError(f"target '{target}' has no values (every cell is empty or missing)")

    if spec.features:
        features = list(spec.features)
        if len(set(features)) != len(features):
            raise DuplicateColumnError("a feature was chosen twice", names=[f for f in features
                                                                             if features.count(f) > 1])
        for f in features:
            info = table.column(f)
            if f == target:
                raise DataError(f"'{f}' is the target; it cannot also be a feature")
            if info.kind == "empty":
                raise AllMissingError(f"feature '{f}' has no values (every cell is empty or missing)")
            if info.kind == "text":
                raise NonNumericError(f"feature '{f}' is text (e.g. '{info.example[:30]}'); only numeric "
                                      "features are supported — leave it out")
        for c in table.columns:
            if c.name not in features and c.name != target:
                columns_dropped[c.name] = "not chosen as a feature"
    else:
        features = []
        for c in table.columns:
            if c.name == target:
                continue
            if c.kind == "numeric":
                features.append(c.name)
            else:
                columns_dropped[c.name] = ("text: not used as a feature (one-hot encoding is not supported)"
                                           if c.kind == "text" else "no values")
        text_cols = [n for n, why in columns_dropped.items() if why.startswith("text")]
        empty_cols = [n for n, why in columns_dropped.items() if why == "no values"]
        if text_cols:
            notes.append(f"Text column(s) {_name_list(text_cols)} are not used as features (only numbers are).")
        if empty_cols:
            notes.append(f"Empty column(s) {_name_list(empty_cols)} were dropped.")
        if not features:
            raise NonNumericError(f"no numeric feature columns besides the target '{target}'"
                                  + (f" (text columns: {_name_list(text_cols)})" if text_cols else ""))

    df = table.frame
    x_all = df[features].to_numpy(dtype=np.float64)
    t = df[target]
    rows_dropped = dict(table.rows_dropped)
    if tinfo.kind == "numeric":
        y_num = t.to_numpy(dtype=np.float64)
        bad_missing = np.isnan(x_all).any(axis=1) | np.isnan(y_num)
        bad_inf = ~bad_missing & (np.isinf(x_all).any(axis=1) | np.isinf(y_num))
    else:
        y_obj = t.to_numpy(dtype=object)
        bad_missing = np.isnan(x_all).any(axis=1) | np.array([v is None for v in y_obj], dtype=bool)
        bad_inf = ~bad_missing & np.isinf(x_all).any(axis=1)
    keep = ~(bad_missing | bad_inf)
    for why, mask in (("a missing or non-numeric value", bad_missing), ("an infinite value", bad_inf)):
        if mask.any():
            rows_dropped[why] = int(mask.sum())
            notes.append(f"{int(mask.sum())} row(s) with {why} in a used column were dropped.")
    n = int(keep.sum())
    if n < MIN_ROWS:
        dropped = int((~keep).sum())
        raise TooFewRowsError(
            f"only {n} usable row(s) remain" + (f" after dropping {dropped} with missing or infinite values"
                                                if dropped else "") + f"; at least {MIN_ROWS} are needed",
            remaining=n, minimum=MIN_ROWS)
    x = x_all[keep]
    y_raw = (y_num if tinfo.kind == "numeric" else y_obj)[keep]
    distinct = np.unique(y_raw.astype(str) if tinfo.kind == "text" else y_raw)
    if len(distinct) == 1:
        raise ConstantTargetError(f"target '{target}' has a single value {_fmt_value(distinct[0])} — nothing to learn")

    kept_info = ColumnInfo(tinfo.name, tinfo.kind, 0, 0, 0, len(distinct),
                           bool(tinfo.kind == "numeric" and np.all(np.mod(y_raw, 1) == 0)), tinfo.example)
    if spec.task == "auto":
        task, reason = infer_task(kept_info, n)
        reason = "inferred: " + reason
    else:
        task, reason = spec.task, f"chosen: {spec.task}"  # type: ignore[assignment]
    notes.append(f"Task {task} ({reason}).")
    class_names: list[str] | None = None
    if task == "regression":
        if tinfo.kind != "numeric":
            raise NonNumericError(f"target '{target}' is text (e.g. '{tinfo.example[:30]}'); regression needs a "
                                  "numeric target — choose classification or another column")
        y = y_raw.astype(np.float64)
        labels = None
    else:
        y, class_names = _check_classes(y_raw.astype(str) if tinfo.kind == "text" else y_raw, target)
        labels = y
    tr, va, te = _split_indices(n, spec.val_fraction, spec.test_fraction, spec.seed, labels, notes)
    summary = LoadSummary(rows_read=table.rows_read, rows_used=n, rows_dropped=rows_dropped,
                          columns_dropped=columns_dropped, task=task, task_reason=reason,
                          encoding=table.encoding, delimiter=table.delimiter, decimal=table.decimal,
                          has_header=table.has_header)
    notes.insert(0, f"{table.rows_read} row(s) read, {n} used: {len(tr)} train / {len(va)} validation / "
                    f"{len(te)} test.")
    return _assemble(name=spec.name, task=task, feature_names=features, target_name=target,
                     splits=(x[tr], y[tr], x[va], y[va], x[te], y[te]), class_names=class_names,
                     notes=notes, summary=summary)


def load_csv(data: bytes | str | Path, spec: DataSpec | None = None, **limits: int) -> Dataset:
    """Parse CSV content and build the dataset ``spec`` asks for (a shortcut).

    Args:
        data: bytes, text or a path (see :func:`parse_csv`).
        spec: target/features/task/splits; default: a CSV spec named after the file.
        **limits: ``max_bytes``, ``max_rows``, ``max_columns`` for :func:`parse_csv`.
    """
    if spec is None:
        spec = DataSpec(source="csv", name=data.name if isinstance(data, Path) else "uploaded.csv")
    return dataset_from_table(parse_csv(data, **limits), spec)


# ------------------------------------------------------------------------ UCI
def load_uci(csv_path: str | Path, splits_path: str | Path, split: int, *,
             val_fraction: float = 0.0, seed: int = 0) -> Dataset:
    """Load one split of a UCI regression benchmark (format of ``../shared/datasets/uci``).

    The CSV has a header and numeric columns; the target is the last column. The
    splits JSON holds ``{"splits": [{"train": [...], "test": [...]}, ...]}`` with
    0-based row indices.  Inputs and target are standardised with the training
    split's statistics.

    Args:
        csv_path: the data file.
        splits_path: the splits JSON.
        split: which split (0-based).
        val_fraction: share of the *training* rows held out for validation (default none).
        seed: seed of that hold-out.

    Raises:
        DataError: missing/unreadable files, a split that does not exist, bad indices,
            non-numeric or missing values.
    """
    csv_path, splits_path = Path(csv_path), Path(splits_path)
    table = parse_csv(csv_path, max_bytes=64 * 1024 * 1024, max_rows=1_000_000)
    if not table.has_header:
        raise DataError(f"'{csv_path.name}' has no header row; the UCI format needs one")
    text_cols = [c.name for c in table.columns if c.kind != "numeric"]
    if text_cols:
        raise NonNumericError(f"'{csv_path.name}': column(s) {_name_list(text_cols)} are not numeric")
    values = table.frame.to_numpy(dtype=np.float64)
    if table.rows_dropped or not np.isfinite(values).all():
        raise DataError(f"'{csv_path.name}' has missing, infinite or malformed rows; the split indices would "
                        "no longer match")
    try:
        with splits_path.open("rb") as fh:
            meta = json.loads(fh.read(256 * 1024 * 1024))
    except OSError:
        raise DataError(f"cannot open the splits file '{splits_path.name}'") from None
    except (ValueError, UnicodeDecodeError):
        raise DataError(f"the splits file '{splits_path.name}' is not valid JSON") from None
    splits = meta.get("splits") if isinstance(meta, dict) else None
    if not isinstance(splits, list) or not splits:
        raise DataError(f"the splits file '{splits_path.name}' has no 'splits' list")
    if not isinstance(split, int) or isinstance(split, bool) or not 0 <= split < len(splits):
        raise DataError(f"split {split} does not exist; '{splits_path.name}' has {len(splits)} splits "
                        f"(0 to {len(splits) - 1})")
    n = len(values)
    idx: dict[str, np.ndarray] = {}
    for part in ("train", "test"):
        raw_idx = splits[split].get(part) if isinstance(splits[split], dict) else None
        try:
            arr = np.asarray(raw_idx, dtype=np.int64).reshape(-1)
        except (TypeError, ValueError):
            arr = None
        if arr is None or raw_idx is None or len(arr) == 0:
            raise DataError(f"split {split} has no valid '{part}' index list")
        if arr.min() < 0 or arr.max() >= n:
            raise DataError(f"split {split}: a '{part}' index is outside the {n} rows of '{csv_path.name}'")
        idx[part] = arr
    if np.intersect1d(idx["train"], idx["test"]).size:
        raise DataError(f"split {split}: some rows are in both the train and the test set")
    x, y = values[:, :-1], values[:, -1]
    tr, te = idx["train"], idx["test"]
    va = np.empty(0, dtype=np.int64)
    notes = [f"UCI split {split} of {len(splits)}: {len(tr)} train / {len(te)} test rows."]
    if val_fraction > 0:
        sub_tr, sub_va, _ = _split_indices(len(tr), val_fraction, 0.0, seed, None, notes)
        tr, va = tr[sub_tr], tr[sub_va]
    names = table.column_names
    return _assemble(name=f"{csv_path.stem} (split {split})", task="regression", feature_names=names[:-1],
                     target_name=names[-1], splits=(x[tr], y[tr], x[va], y[va], x[te], y[te]), notes=notes,
                     summary=LoadSummary(rows_read=n, rows_used=n, task="regression",
                                         task_reason="UCI regression benchmark: the last column is the target",
                                         encoding=table.encoding, delimiter=table.delimiter))
