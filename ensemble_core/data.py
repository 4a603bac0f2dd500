"""Datasets: the ``Dataset`` type, synthetic generators, bundled real sets, CSV parsing.

Public API
----------
- :func:`load_dataset` builds the :class:`Dataset` a :class:`~ensemble_core.config.DataSpec`
  describes (synthetic, bundled or CSV).
- :func:`dataset_from_arrays` wraps arrays you already hold (tests, notebooks).
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
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

import numpy as np

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
    "NOISE_REFERENCE",
    "GAP_BANDS",
    "MIN_ROWS",
    "MAX_CLASSES",
    "effective_noise",
    "load_dataset",
    "dataset_from_arrays",
    "describe",
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


# ------------------------------------------------------------------ constants
#: Noise level each generator uses at ``DataSpec.noise == 3`` (the default).
NOISE_REFERENCE: dict[str, float] = {
    "cubic": 3.0,  # std of eps in y = x^3 + eps (the paper)
    "sine": 1.0,  # multiplier of the heteroscedastic std 0.15 + 0.25|x|
    "gap": 0.25,  # std of the noise around the gap curve
    "moons": 0.15,  # std of Gaussian jitter added to each coordinate
    "circles": 0.08,
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
    x_mean, x_std = _train_stats(xs[0], feature_names, notes)
    y_mean, y_std = 0.0, 1.0
    if task == "regression":
        y_mean = float(ys[0].mean())
        y_std = float(ys[0].std())
        if not y_std > 1e-12 * max(1.0, abs(y_mean)):
            raise ConstantTargetError(
                f"target '{target_name}' has a single value {_fmt_num(y_mean)} in the training data — nothing to learn"
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
def load_dataset(spec: DataSpec, csv_data: bytes | str | None = None) -> Dataset:
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


def parse_csv(data: object, **kwargs: object) -> object:  # placeholder, replaced below
    """CSV parsing (in progress)."""
    raise DataError("CSV loading is not available yet")


def dataset_from_table(table: object, spec: DataSpec) -> Dataset:  # placeholder
    """CSV to dataset (in progress)."""
    raise DataError("CSV loading is not available yet")
