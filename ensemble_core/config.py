"""RunConfig: one frozen, serialisable description of a training run.

A ``RunConfig`` describes a run completely (dataset spec, architecture, loss,
strategy, optimiser, schedule, seed).  It round-trips losslessly through a
plain ``dict``, JSON and URL query parameters so that a link can reopen the
exact setup.  Every field is validated on construction; errors name the
field and the allowed values.
"""

from __future__ import annotations

import dataclasses
import json
import math
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from typing import Any, Literal

__all__ = [
    "ConfigError",
    "DataSpec",
    "ModelSpec",
    "LossSpec",
    "StrategySpec",
    "OptimSpec",
    "RunConfig",
    "SYNTHETIC_REGRESSION",
    "SYNTHETIC_CLASSIFICATION",
    "BUNDLED_REGRESSION",
    "BUNDLED_CLASSIFICATION",
    "STRATEGY_KINDS",
]

Task = Literal["regression", "classification"]

#: Synthetic generators offered by :mod:`ensemble_core.data`.
SYNTHETIC_REGRESSION = ("cubic", "sine", "gap")
SYNTHETIC_CLASSIFICATION = ("moons", "circles", "spirals", "blobs", "xor")
#: Real data sets bundled with scikit-learn (no download needed).
BUNDLED_REGRESSION = ("diabetes",)
BUNDLED_CLASSIFICATION = ("wine", "breast_cancer", "digits", "iris")
#: How an ensemble's members are obtained (:class:`StrategySpec`).
STRATEGY_KINDS = ("independent", "bootstrap", "snapshot", "mc_dropout")


class ConfigError(ValueError):
    """A configuration value is invalid; the message names the field."""


def _check(cond: bool, field_name: str, msg: str) -> None:
    if not cond:
        raise ConfigError(f"{field_name}: {msg}")


def _check_int(value: Any, name: str, lo: int, hi: int) -> None:
    _check(isinstance(value, int) and not isinstance(value, bool), name,
           f"must be an integer, got {value!r}")
    _check(lo <= value <= hi, name, f"must be between {lo} and {hi}, got {value}")


def _check_float(value: Any, name: str, lo: float, hi: float, *, lo_open: bool = False) -> None:
    _check(isinstance(value, (int, float)) and not isinstance(value, bool), name,
           f"must be a number, got {value!r}")
    _check(math.isfinite(value), name, f"must be finite, got {value}")
    ok = (lo < value if lo_open else lo <= value) and value <= hi
    bracket = "(" if lo_open else "["
    _check(ok, name, f"must be in {bracket}{lo}, {hi}], got {value}")


def _check_choice(value: Any, name: str, choices: tuple[str, ...]) -> None:
    _check(value in choices, name, f"must be one of {', '.join(map(repr, choices))}; got {value!r}")


@dataclass(frozen=True)
class DataSpec:
    """Which data to train on and how to split it.

    Attributes:
        source: ``"synthetic"`` (a generator), ``"bundled"`` (a real set shipped
            with scikit-learn) or ``"csv"`` (an uploaded file, held by the caller).
        name: generator / bundled set name, or the CSV file's display name.
        n: number of training points for synthetic sets.
        noise: generator noise (standard deviation for regression, jitter for
            classification).
        seed: seed of the data generator and of the split.
        gap: synthetic 1-D regression only: remove a band of inputs from the
            training data (to show in-between uncertainty).
        n_classes: number of classes for ``blobs`` and ``spirals``.
        val_fraction: fraction of rows held out for validation.
        test_fraction: fraction of rows held out for testing.
        target: CSV only: the target column ("" = last column).
        features: CSV only: the feature columns (empty = all but the target).
        task: ``"auto"`` to infer, or force ``"regression"``/``"classification"``.
        held_out: classification only: class indices (0-based, sorted, unique) left out of the
            training and validation rows; the test rows keep them (unseen classes, to test whether the
            uncertainty flags them).
    """

    source: Literal["synthetic", "bundled", "csv"] = "synthetic"
    name: str = "cubic"
    n: int = 20
    noise: float = 3.0
    seed: int = 0
    gap: bool = False
    n_classes: int = 3
    val_fraction: float = 0.2
    test_fraction: float = 0.2
    target: str = ""
    features: tuple[str, ...] = ()
    task: Literal["auto", "regression", "classification"] = "auto"
    held_out: tuple[int, ...] = ()

    def __post_init__(self) -> None:
        _check_choice(self.source, "data.source", ("synthetic", "bundled", "csv"))
        if self.source == "synthetic":
            _check_choice(self.name, "data.name", SYNTHETIC_REGRESSION + SYNTHETIC_CLASSIFICATION)
        elif self.source == "bundled":
            _check_choice(self.name, "data.name", BUNDLED_REGRESSION + BUNDLED_CLASSIFICATION)
        else:
            _check(isinstance(self.name, str) and 0 < len(self.name) <= 200, "data.name",
                   "must be a non-empty file name of at most 200 characters")
        _check_int(self.n, "data.n", 4, 100_000)
        _check_float(self.noise, "data.noise", 0.0, 100.0)
        _check_int(self.seed, "data.seed", 0, 2**31 - 1)
        _check(isinstance(self.gap, bool), "data.gap", f"must be true or false, got {self.gap!r}")
        _check_int(self.n_classes, "data.n_classes", 2, 10)
        _check_float(self.val_fraction, "data.val_fraction", 0.0, 0.5)
        _check_float(self.test_fraction, "data.test_fraction", 0.0, 0.5)
        _check(self.val_fraction + self.test_fraction <= 0.8, "data.val_fraction",
               "validation and test fractions together must leave at least 20% for training")
        _check(isinstance(self.target, str), "data.target", "must be a column name")
        _check(isinstance(self.features, tuple) and all(isinstance(f, str) for f in self.features),
               "data.features", "must be a tuple of column names")
        _check_choice(self.task, "data.task", ("auto", "regression", "classification"))
        _check(isinstance(self.held_out, tuple) and all(isinstance(c, int) and not isinstance(c, bool)
                                                        and 0 <= c < 100 for c in self.held_out)
               and list(self.held_out) == sorted(set(self.held_out)), "data.held_out",
               f"must be sorted, distinct class indices 0..99, got {self.held_out!r}")
        _check(not self.held_out or self.inferred_task != "regression", "data.held_out",
               "classes can be held out of a classification data set only")

    @property
    def inferred_task(self) -> Task | None:
        """The task implied by the spec alone (``None`` for CSV with ``task="auto"``)."""
        if self.task != "auto":
            return self.task  # type: ignore[return-value]
        if self.name in SYNTHETIC_REGRESSION + BUNDLED_REGRESSION:
            return "regression"
        if self.name in SYNTHETIC_CLASSIFICATION + BUNDLED_CLASSIFICATION:
            return "classification"
        return None


@dataclass(frozen=True)
class ModelSpec:
    """Architecture of every member: an MLP.

    Attributes:
        hidden_layers: number of hidden layers (0 = linear model).
        width: units per hidden layer.
        activation: hidden non-linearity.
    """

    hidden_layers: int = 2
    width: int = 64
    activation: Literal["relu", "tanh", "gelu", "silu"] = "relu"

    def __post_init__(self) -> None:
        _check_int(self.hidden_layers, "model.hidden_layers", 0, 8)
        _check_int(self.width, "model.width", 1, 1024)
        _check_choice(self.activation, "model.activation", ("relu", "tanh", "gelu", "silu"))


@dataclass(frozen=True)
class LossSpec:
    """Regression loss (classification always uses cross-entropy).

    Attributes:
        kind: ``"nll"`` Gaussian NLL, ``"beta_nll"`` (Seitzer et al. 2022) or
            ``"mse"`` (mean-only members: the paper's MSE-ensemble baseline).
        beta: exponent of the beta-NLL weighting ``var.detach() ** beta``.
        variance: ``"softplus"`` (paper: ``softplus(raw) + 1e-6``) or
            ``"logvar"`` (the seed's ``exp(logvar)``).
    """

    kind: Literal["nll", "beta_nll", "mse"] = "nll"
    beta: float = 0.5
    variance: Literal["softplus", "logvar"] = "softplus"

    def __post_init__(self) -> None:
        _check_choice(self.kind, "loss.kind", ("nll", "beta_nll", "mse"))
        _check_float(self.beta, "loss.beta", 0.0, 1.0)
        _check_choice(self.variance, "loss.variance", ("softplus", "logvar"))


@dataclass(frozen=True)
class StrategySpec:
    """How the ensemble's members are obtained.

    Attributes:
        kind: ``"independent"``: ``members`` networks from different seeds;
            ``"bootstrap"``: the same, each on its own bootstrap resample;
            ``"snapshot"``: ``members`` trajectories (usually 1), each with a
            cyclic cosine schedule and one snapshot at the end of each of its
            ``snapshots`` cycles (ensemble size ``members * snapshots``).
        members: number of independently seeded trajectories (1-20).
        snapshots: cycles (= snapshots) per trajectory; snapshot kind only.
        adversarial: add FGSM adversarial training (Lakshminarayanan et al.).
        adversarial_eps: FGSM step as a fraction of each input's range.
        dropout: MC-dropout kind only: the probability that a hidden unit is dropped,
            in training and in each stochastic pass at prediction (Gal & Ghahramani 2016).
        passes: MC-dropout kind only: stochastic forward passes ``T`` per network at
            prediction; each pass is one component of the predictive mixture.

    ``"mc_dropout"``: ``members`` networks (usually 1) trained with dropout after
    every hidden layer; prediction combines ``members x passes`` stochastic passes
    exactly as an ensemble combines its members (mixture mean, aleatoric = mean of
    the passes' variances, epistemic = variance of their means).
    """

    kind: Literal["independent", "bootstrap", "snapshot", "mc_dropout"] = "independent"
    members: int = 5
    snapshots: int = 5
    adversarial: bool = False
    adversarial_eps: float = 0.01
    dropout: float = 0.05
    passes: int = 100

    def __post_init__(self) -> None:
        _check_choice(self.kind, "strategy.kind", STRATEGY_KINDS)
        _check_int(self.members, "strategy.members", 1, 20)
        _check_int(self.snapshots, "strategy.snapshots", 1, 20)
        _check(isinstance(self.adversarial, bool), "strategy.adversarial", "must be true or false")
        _check_float(self.adversarial_eps, "strategy.adversarial_eps", 0.0, 1.0, lo_open=True)
        _check_float(self.dropout, "strategy.dropout", 0.0, 0.9, lo_open=True)
        _check_int(self.passes, "strategy.passes", 1, 1000)
        if self.kind == "mc_dropout":
            _check(not self.adversarial, "strategy.adversarial",
                   "MC dropout trains without adversarial examples (turn adversarial training off)")
        if self.kind == "snapshot":
            _check(self.members * self.snapshots <= 40, "strategy.snapshots",
                   "members x snapshots must be at most 40")

    @property
    def ensemble_size(self) -> int:
        """Number of members in the final ensemble."""
        return self.members * (self.snapshots if self.kind == "snapshot" else 1)


@dataclass(frozen=True)
class OptimSpec:
    """Optimiser and learning-rate schedule.

    Attributes:
        optimizer: ``"adam"`` or ``"sgd"`` (SGD uses ``momentum``).
        lr: initial / maximum learning rate.
        lr_min: minimum learning rate of the cosine schedules.
        weight_decay: L2 weight decay (coupled, as in ``torch.optim``).
        momentum: SGD momentum.
        batch_size: mini-batch size (capped at the number of training rows).
        epochs: total training epochs (for snapshots: over all cycles).
        schedule: ``"constant"``, ``"cosine"`` (annealed from ``lr`` to
            ``lr_min`` over the run, the seed's ``CosineAnnealingLR``) or
            ``"cyclic"`` (Huang et al.'s cyclic cosine: one cycle per snapshot).
        granularity: whether the schedule is stepped per ``"epoch"`` or per
            ``"iteration"`` (mini-batch).
        keep_best: keep each member's best-validation weights: after every epoch each
            member's own validation NLL (standardised units; MSE members: squared error)
            is computed, and the member ends with the weights of its lowest one (off by
            default, as in the paper; needs a validation split; not for snapshots).
    """

    optimizer: Literal["adam", "sgd"] = "adam"
    lr: float = 0.01
    lr_min: float = 0.0
    weight_decay: float = 0.0
    momentum: float = 0.9
    batch_size: int = 32
    epochs: int = 100
    schedule: Literal["constant", "cosine", "cyclic"] = "constant"
    granularity: Literal["epoch", "iteration"] = "iteration"
    keep_best: bool = False

    def __post_init__(self) -> None:
        _check_choice(self.optimizer, "optim.optimizer", ("adam", "sgd"))
        _check_float(self.lr, "optim.lr", 0.0, 100.0, lo_open=True)
        _check_float(self.lr_min, "optim.lr_min", 0.0, 100.0)
        _check(self.lr_min <= self.lr, "optim.lr_min", f"must not exceed optim.lr ({self.lr}), got {self.lr_min}")
        _check_float(self.weight_decay, "optim.weight_decay", 0.0, 1.0)
        _check_float(self.momentum, "optim.momentum", 0.0, 0.999)
        _check_int(self.batch_size, "optim.batch_size", 1, 100_000)
        _check_int(self.epochs, "optim.epochs", 1, 5000)
        _check_choice(self.schedule, "optim.schedule", ("constant", "cosine", "cyclic"))
        _check_choice(self.granularity, "optim.granularity", ("epoch", "iteration"))
        _check(isinstance(self.keep_best, bool), "optim.keep_best", f"must be true or false, got {self.keep_best!r}")


@dataclass(frozen=True)
class RunConfig:
    """Everything that defines a run.  Same config + same data = same result."""

    data: DataSpec = field(default_factory=DataSpec)
    model: ModelSpec = field(default_factory=ModelSpec)
    loss: LossSpec = field(default_factory=LossSpec)
    strategy: StrategySpec = field(default_factory=StrategySpec)
    optim: OptimSpec = field(default_factory=OptimSpec)
    seed: int = 0
    device: Literal["cpu", "cuda", "auto"] = "cpu"

    def __post_init__(self) -> None:
        for name, cls in (("data", DataSpec), ("model", ModelSpec), ("loss", LossSpec),
                          ("strategy", StrategySpec), ("optim", OptimSpec)):
            _check(isinstance(getattr(self, name), cls), name, f"must be a {cls.__name__}")
        _check_int(self.seed, "seed", 0, 2**31 - 1)
        _check_choice(self.device, "device", ("cpu", "cuda", "auto"))
        if self.strategy.kind == "snapshot":
            _check(not self.optim.keep_best, "optim.keep_best",
                   "snapshot ensembles keep one copy per cycle; keeping the best-validation weights is for "
                   "independent, bootstrap and MC-dropout members")
            _check(self.optim.schedule == "cyclic", "optim.schedule",
                   "snapshot ensembles need the 'cyclic' schedule (one cosine cycle per snapshot)")
        if self.optim.schedule == "cyclic":  # one cycle per snapshot, at least one epoch each
            _check(self.optim.epochs >= self.strategy.snapshots, "optim.epochs",
                   f"must be at least the number of snapshots ({self.strategy.snapshots}): the cyclic "
                   "schedule restarts once per snapshot")

    # ------------------------------------------------------------------ helpers
    def replace(self, **sections: Any) -> "RunConfig":
        """Return a copy with whole sections or dotted fields replaced.

        ``cfg.replace(**{"optim.lr": 0.1, "strategy.members": 3})`` or
        ``cfg.replace(optim=OptimSpec(...))``.  All changes are applied together and the result is
        validated once, so changes that are only valid together (a snapshot strategy and its cyclic
        schedule) can be made in one call.

        Raises:
            ConfigError: a field is unknown or the resulting config is invalid.
        """
        parts: dict[str, Any] = {}
        top: dict[str, Any] = {}
        for key, value in sections.items():
            if "." in key:
                sec, name = key.split(".", 1)
                parts.setdefault(sec, {})[name] = value
            else:
                top[key] = value
        for sec, changes in parts.items():
            _check(sec in _SECTIONS, sec, f"unknown section; expected one of {', '.join(_SECTIONS)}")
            top[sec] = replace(top.get(sec, getattr(self, sec)), **changes)
        return dataclasses.replace(self, **top) if top else self

    @property
    def task(self) -> Task | None:
        """The task implied by the data spec (``None`` when only the data can tell)."""
        return self.data.inferred_task

    # ------------------------------------------------------------ dict / JSON
    def to_dict(self) -> dict[str, Any]:
        """Plain nested dict (JSON-serialisable)."""
        out = dataclasses.asdict(self)
        out["data"]["features"] = list(self.data.features)
        return out

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "RunConfig":
        """Build from a nested dict; unknown keys raise :class:`ConfigError`."""
        if not isinstance(d, Mapping):
            raise ConfigError(f"config: expected an object, got {type(d).__name__}")
        kwargs: dict[str, Any] = {}
        for key, value in d.items():
            if key in _SECTIONS:
                sec_cls = _SECTIONS[key]
                if not isinstance(value, Mapping):
                    raise ConfigError(f"{key}: expected an object, got {type(value).__name__}")
                kwargs[key] = _build(sec_cls, key, value)
            elif key in ("seed", "device"):
                kwargs[key] = _coerce(key, _top_types()[key], value)
            else:
                raise ConfigError(f"{key}: unknown setting")
        return cls(**kwargs)

    def to_json(self, indent: int | None = 2) -> str:
        """JSON text of :meth:`to_dict`."""
        return json.dumps(self.to_dict(), indent=indent, sort_keys=True)

    @classmethod
    def from_json(cls, text: str | bytes) -> "RunConfig":
        """Parse JSON produced by :meth:`to_json` (or written by hand)."""
        try:
            d = json.loads(text)
        except (ValueError, UnicodeDecodeError) as exc:
            raise ConfigError(f"config: not valid JSON ({exc})") from None
        return cls.from_dict(d)

    # -------------------------------------------------------------------- URL
    def to_query(self, *, only_changed: bool = True) -> dict[str, str]:
        """Flat ``{"optim.lr": "0.01", ...}`` query parameters.

        With ``only_changed`` (default) fields equal to the default are left out
        so links stay short; :meth:`from_query` restores them.
        """
        default = _flatten(RunConfig()) if only_changed else {}
        return {key: _encode(value) for key, value in _flatten(self).items()
                if not (only_changed and default.get(key) == value)}

    @classmethod
    def from_query(cls, params: Mapping[str, Any], *, strict: bool = False) -> "RunConfig":
        """Rebuild from query parameters made by :meth:`to_query`.

        Keys that are not config fields are ignored unless ``strict`` (other
        parameters such as a page name may share the URL).  A value that does
        not parse raises :class:`ConfigError` naming the field.
        """
        nested: dict[str, dict[str, Any]] = {}
        top: dict[str, Any] = {}
        for key, raw in params.items():
            if isinstance(raw, (list, tuple)):
                raw = raw[-1] if raw else ""
            if "." in key:
                sec, name = key.split(".", 1)
                if sec in _SECTIONS and name in _field_types(_SECTIONS[sec]):
                    typ = _field_types(_SECTIONS[sec])[name]
                    nested.setdefault(sec, {})[name] = _decode(key, typ, str(raw))
                    continue
            elif key in _top_types():
                top[key] = _decode(key, _top_types()[key], str(raw))
                continue
            if strict:
                raise ConfigError(f"{key}: unknown setting")
        d: dict[str, Any] = dict(top)
        d.update(nested)
        return cls.from_dict(d)


_SECTIONS: dict[str, type] = {
    "data": DataSpec,
    "model": ModelSpec,
    "loss": LossSpec,
    "strategy": StrategySpec,
    "optim": OptimSpec,
}


def _field_types(cls: type) -> dict[str, Any]:
    hints = typing.get_type_hints(cls)
    return {f.name: hints[f.name] for f in fields(cls)}


def _top_types() -> dict[str, Any]:
    hints = typing.get_type_hints(RunConfig)
    return {"seed": hints["seed"], "device": hints["device"]}


def _coerce(name: str, typ: Any, value: Any) -> Any:
    origin = typing.get_origin(typ)
    if typ is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if origin is tuple and isinstance(value, list):
        return tuple(value)
    return value


def _build(cls: type, sec: str, values: Mapping[str, Any]) -> Any:
    types = _field_types(cls)
    kwargs = {}
    for key, value in values.items():
        if key not in types:
            raise ConfigError(f"{sec}.{key}: unknown setting")
        kwargs[key] = _coerce(f"{sec}.{key}", types[key], value)
    return cls(**kwargs)


def _flatten(cfg: RunConfig) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for sec in _SECTIONS:
        for f in fields(getattr(cfg, sec)):
            out[f"{sec}.{f.name}"] = getattr(getattr(cfg, sec), f.name)
    out["seed"] = cfg.seed
    out["device"] = cfg.device
    return out


def _encode(value: Any) -> str:
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, tuple):
        return json.dumps(list(value))
    return str(value)


def _decode(name: str, typ: Any, raw: str) -> Any:
    origin = typing.get_origin(typ)
    try:
        if typ is bool:
            if raw.lower() in ("1", "true", "yes", "on"):
                return True
            if raw.lower() in ("0", "false", "no", "off"):
                return False
            raise ValueError(raw)
        if typ is int:
            return int(raw)
        if typ is float:
            return float(raw)
        if origin is tuple:
            value = json.loads(raw)
            if not isinstance(value, list):
                raise ValueError(raw)
            if typing.get_args(typ)[:1] == (int,):
                if not all(isinstance(v, int) and not isinstance(v, bool) for v in value):
                    raise ValueError(raw)
                return tuple(value)
            return tuple(str(v) for v in value)
    except ValueError:
        raise ConfigError(f"{name}: cannot read {raw!r} as {getattr(typ, '__name__', typ)}") from None
    return raw
