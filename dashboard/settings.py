"""The typed settings model of one browser session (no Streamlit here: a plain, testable object).

Every page's settings live in one :class:`Settings`: the :class:`RunConfig` that
trains (data spec included) plus what the pages need besides it (the lesson
picked, the race's choices, the Share box's options, what a classroom link
hides).  Widgets are views of it (:func:`dashboard.state.bind`): a widget's
value is written from the model before it is drawn, and a change goes back
into the model through :meth:`Settings.set`, which validates it.  A control
that is not drawn keeps its value, because the value never lived in the widget.

Setting paths are dotted names: the config's own (``"optim.lr"``,
``"data.n"``, ``"seed"``) and the pages' (:data:`PAGE_FIELDS`).
"""

from __future__ import annotations

import dataclasses
import math
import os
from dataclasses import dataclass, field
from typing import Any

from ensemble_core import share
from ensemble_core.config import (
    BUNDLED_CLASSIFICATION,
    BUNDLED_REGRESSION,
    ConfigError,
    DataSpec,
    RunConfig,
)

__all__ = ["CompareSettings", "SweepSettings", "SWEEPABLE", "Settings", "Range", "PAGE_FIELDS", "DATA_SOURCES", "default_config",
           "SNAPSHOT_RECIPE", "SettingError", "CONTROL_RANGES", "EXECUTORS", "EXECUTOR_ENV", "default_executor"]

#: Where the Data page can take data from.
DATA_SOURCES: tuple[str, ...] = ("synthetic", "bundled", "csv")
#: The pages' own settings (besides the config's fields), with their types.
PAGE_FIELDS: dict[str, type | tuple[type, ...]] = {
    "lesson": (str, type(None)),
    "lessons_quick": bool,
    "compare.strategies": tuple,
    "compare.members": (int, type(None)),
    "compare.budget": (int, type(None)),
    "data_view": str,
    "share_hide": tuple,
    "presentation": bool,
    "img_fmt": str,
    "pace": (str, type(None)),
    "executor": (str, type(None)),
}
#: Where training runs: this server's worker processes, or the Ray cluster (``ensemble_core.jobs``'s executors).
EXECUTORS: dict[str, str] = {"process": "this server's worker processes", "ray": "the Ray cluster"}
#: The environment variable that picks the server's default executor (``ensemble_core.jobs.EXECUTOR_ENV``;
#: repeated here so the settings model imports nothing that loads torch).
EXECUTOR_ENV = "LAB_EXECUTOR"


def default_executor() -> str:
    """The executor a session starts with: ``$LAB_EXECUTOR`` when it names one of :data:`EXECUTORS`, else process."""
    value = os.environ.get(EXECUTOR_ENV, "").strip().lower()
    return value if value in EXECUTORS else "process"
#: The snapshot recipe the Train page offers with one click (Adam + cyclic cosine from 0.01 to 0, per
#: iteration, 1 trajectory x 5 snapshots).  See docs/decisions.md: Huang et al.'s SGD at 0.1 overshoots here.
SNAPSHOT_RECIPE: dict[str, Any] = {"optim.optimizer": "adam", "optim.schedule": "cyclic", "optim.lr": 0.01,
                                   "optim.lr_min": 0.0, "optim.granularity": "iteration",
                                   "strategy.members": 1, "strategy.snapshots": 5}


#: The range the pages' controls offer where it is narrower than what ``RunConfig`` accepts (a link
#: asking for more is told so, see :func:`dashboard.links.open_link`), with the words for it.
CONTROL_RANGES: dict[str, tuple[Range, str]] = {}


class SettingError(ConfigError):
    """A value a control cannot take; the message is written for the person who typed it."""


def default_config(data: DataSpec | None = None) -> RunConfig:
    """The config a new session starts from: the paper's toy, 5 members, 300 epochs (long enough to watch)."""
    cfg = RunConfig().replace(**{"optim.epochs": 300})
    return cfg.replace(data=data) if data is not None else cfg


@dataclass(frozen=True)
class Range:
    """The values a typed control accepts: ``lo <= value <= hi`` (and whole numbers when ``integer``)."""

    lo: float
    hi: float
    integer: bool = False

    def check(self, label: str, value: Any) -> Any:
        """``value`` as the control's type, or :class:`SettingError` saying what is allowed."""
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise SettingError(f"{label}: {value!r} is not a number.")
        if self.integer and value != int(value):
            raise SettingError(f"{label}: {value:g} is not a whole number.")
        if value < self.lo:
            raise SettingError(f"{label}: {value:g} is below the smallest allowed value, {self.lo:g}.")
        if value > self.hi:
            raise SettingError(f"{label}: {value:g} is above the largest allowed value, {self.hi:g}.")
        return int(value) if self.integer else float(value)


CONTROL_RANGES.update({
    "data.n": (Range(4, 10_000, integer=True), "training points"),
    "data.noise": (Range(0.0, 10.0), "noise"),
    "optim.momentum": (Range(0.0, 0.99), "momentum"),
})


@dataclass
class CompareSettings:
    """The strategy race's choices (``None``: derived from the config, see ``pages/compare.py``)."""

    strategies: tuple[str, ...] = ("independent", "bootstrap", "snapshot")
    members: int | None = None
    budget: int | None = None


#: The settings the Sweep page offers to sweep: path -> (label, suggested grid values, suggested random range).
SWEEPABLE: dict[str, tuple[str, str, str]] = {
    "optim.lr": ("Learning rate", "0.001, 0.003, 0.01, 0.03", "1e-4:1e-1:log"),
    "optim.weight_decay": ("Weight decay", "0, 0.0001, 0.001", "1e-6:1e-2:log"),
    "strategy.members": ("Members M", "1, 3, 5", "1:8"),
    "model.width": ("Hidden units", "16, 32, 64", "8:128:log"),
    "model.hidden_layers": ("Hidden layers", "1, 2, 3", "1:4"),
    "optim.batch_size": ("Batch size", "16, 32, 64", "8:128:log"),
    "optim.epochs": ("Epochs", "50, 100, 200", "20:300"),
    "seed": ("Seed", "0, 1, 2", "0:1000"),
    "loss.beta": ("β of β-NLL", "0, 0.5, 1", "0:1"),
    "strategy.adversarial_eps": ("Adversarial ε", "0.005, 0.01, 0.02", "0.001:0.05:log"),
}


@dataclass
class SweepSettings:
    """The Sweep page's choices (checked against the config when the sweep is planned, see ``dashboard/sweep_view.py``).

    Attributes:
        mode: ``"grid"`` (every combination of the values) or ``"random"`` (``n`` draws from the ranges).
        params: the swept settings (1-3 paths of :data:`SWEEPABLE`).
        values: per path, the grid values as typed (``"0.001, 0.01"``); unset paths show the suggestion.
        ranges: per path, the random range as typed (``"1e-4:1e-1:log"``).
        n: random trials.
        metric: what the trials are ranked by (``ensemble_core.sweeps.METRICS``).
    """

    mode: str = "grid"
    params: tuple[str, ...] = ("optim.lr",)
    values: dict[str, str] = field(default_factory=dict)
    ranges: dict[str, str] = field(default_factory=dict)
    n: int = 8
    metric: str = "test_nll"

    def get(self, path: str) -> Any:
        """``"mode"``, ``"params"``, ``"n"``, ``"metric"``, ``"values.<setting>"`` or ``"ranges.<setting>"``."""
        kind, _, param = path.partition(".")
        if kind in ("values", "ranges") and param in SWEEPABLE:
            return getattr(self, kind).get(param, SWEEPABLE[param][1 if kind == "values" else 2])
        if kind in ("mode", "params", "n", "metric") and not param:
            return getattr(self, kind)
        raise SettingError(f"sweep.{path}: no such setting.")

    def set(self, path: str, value: Any) -> None:
        """Set one choice (see :meth:`get`); :class:`SettingError` for a value the page cannot take."""
        kind, _, param = path.partition(".")
        if kind in ("values", "ranges") and param in SWEEPABLE:
            if not isinstance(value, str) or len(value) > 300:
                raise SettingError(f"{SWEEPABLE[param][0]}: type the values as text (at most 300 characters).")
            getattr(self, kind)[param] = value
        elif path == "mode" and value in ("grid", "random"):
            self.mode = value
        elif path == "params" and isinstance(value, (tuple, list)):
            if not 1 <= len(value) <= 3 or any(p not in SWEEPABLE for p in value):
                raise SettingError("Settings to sweep: choose one to three.")
            self.params = tuple(value)
        elif path == "n" and isinstance(value, int) and not isinstance(value, bool) and 1 <= value <= 48:
            self.n = value
        elif path == "metric" and isinstance(value, str) and value in _SWEEP_METRICS:
            self.metric = value
        else:
            raise SettingError(f"sweep.{path}: {value!r} is not a valid value.")


#: Mirrors ``ensemble_core.sweeps.METRICS`` (kept here so the settings model imports no torch-side module).
_SWEEP_METRICS = ("test_nll", "val_nll", "test_rmse", "val_rmse", "test_accuracy", "val_accuracy", "test_ece",
                  "val_ece")


def _default_spec(source: str, like: DataSpec) -> DataSpec:
    """A spec of ``source`` for a Data page switching to it, with ``like``'s seed and split."""
    keep = {"seed": like.seed, "val_fraction": like.val_fraction, "test_fraction": like.test_fraction}
    if source == "bundled":
        return DataSpec(source="bundled", name=(BUNDLED_REGRESSION + BUNDLED_CLASSIFICATION)[0], **keep)
    return DataSpec(**keep)


@dataclass
class Settings:
    """One session's settings: the config that trains plus every page's choices.

    Attributes:
        config: the run configuration (``config.data`` is the current data's spec).
        lesson: the lesson picked on the Lessons page (``None``: the first).
        lessons_quick: lessons train at a quarter of their epochs.
        compare: the strategy race's choices.
        data_view: which source the Data page shows (it differs from ``config.data.source`` only
            while "Your CSV" is picked and no file is loaded yet).
        remembered: the last spec used per data source, so switching back restores it.
        hidden: controls (or sections) a classroom link hides; they keep their values.
        presentation: presentation mode (larger type for a projector).
        share_hide: what the Share box's classroom link will hide.
        img_fmt: the format of chart downloads (``"png"`` or ``"svg"``).
        pace: how runs are shown, ``"fast"`` or ``"watchable"`` (the same run, spread over ~9 s); ``None``
            until chosen: then :attr:`effective_pace` follows presentation mode and classroom links.  Not
            part of the config: the pace never changes a result.
        executor: where this session's runs and sweeps train, ``"process"`` (this server's worker
            processes) or ``"ray"`` (the Ray cluster); ``None`` until chosen: then
            :attr:`effective_executor` follows ``$LAB_EXECUTOR``.  Not part of the config: the same
            seeds give the same results on either.
        sweep: the Sweep page's choices (paths ``"sweep.<choice>"``).
        notes: per widget key, a message to show next to that control once (a refused input, or a
            setting that a change had to adjust); the page pops it when it draws the control.
    """

    config: RunConfig = field(default_factory=default_config)
    lesson: str | None = None
    lessons_quick: bool = False
    compare: CompareSettings = field(default_factory=CompareSettings)
    data_view: str = "synthetic"
    remembered: dict[str, DataSpec] = field(default_factory=dict)
    hidden: frozenset[str] = frozenset()
    presentation: bool = False
    share_hide: tuple[str, ...] = ()
    img_fmt: str = "png"
    pace: str | None = None
    executor: str | None = None
    sweep: SweepSettings = field(default_factory=SweepSettings)
    notes: dict[str, tuple[str, str]] = field(default_factory=dict)

    # ------------------------------------------------------------------ reading
    def get(self, path: str) -> Any:
        """The value of the setting ``path`` (a config field such as ``"optim.lr"`` or a page field)."""
        if path.startswith("sweep."):
            return self.sweep.get(path[len("sweep."):])
        if path in PAGE_FIELDS:
            obj: Any = self
            for part in path.split("."):
                obj = getattr(obj, part)
            return obj
        obj = self.config
        for part in path.split("."):
            if not hasattr(obj, part):
                raise SettingError(f"{path}: no such setting.")
            obj = getattr(obj, part)
        return obj

    @property
    def effective_pace(self) -> str:
        """The pace runs are shown at: the chosen one, else watchable in presentation mode or under a
        classroom link, else fast."""
        return self.pace or share.ShareState(hidden=self.hidden, presentation=self.presentation).default_pace

    def effective_executor(self, ray_ok: bool = True) -> str:
        """Where runs train: the chosen executor, else the server's default (:func:`default_executor`);
        ``"process"`` whenever ``ray_ok`` is false (Ray is not installed on this server)."""
        chosen = self.executor or default_executor()
        return chosen if ray_ok or chosen != "ray" else "process"

    def visible(self, control: str) -> bool:
        """Whether ``control`` is shown (a classroom link may hide it or its section)."""
        return share.visible(control, share.ShareState(hidden=self.hidden) if self.hidden else None)

    # ------------------------------------------------------------------ writing
    def set(self, path: str, value: Any) -> list[str]:
        """Set ``path`` to ``value`` after validating it; returns the other settings it had to change.

        A change touches nothing else, except where the config would be invalid otherwise: a snapshot
        ensemble needs the cyclic schedule (and at least one epoch per snapshot), and a CSV target
        cannot also be a feature.  Those adjustments are returned (as dotted paths) so the page can
        say so.

        Raises:
            SettingError: the value is refused; the settings are unchanged.
        """
        if path in PAGE_FIELDS:
            self._set_page(path, value)
            return []
        if path.startswith("sweep."):
            self.sweep.set(path[len("sweep."):], value)
            return []
        changes = {path: value}
        cfg = self.config
        if path == "strategy.kind" and value == "snapshot":
            if cfg.optim.schedule != "cyclic":
                changes["optim.schedule"] = "cyclic"
            if cfg.optim.epochs < cfg.strategy.snapshots:
                changes["optim.epochs"] = cfg.strategy.snapshots
        if path in ("data.source", "data.name", "data.n_classes", "data.target", "data.task") and cfg.data.held_out:
            changes["data.held_out"] = ()  # held-out class indices belong to the data set they were chosen on
        if path == "data.target" and value in cfg.data.features:
            changes["data.features"] = tuple(f for f in cfg.data.features if f != value)
        try:
            new = cfg.replace(**changes)
        except ConfigError as exc:
            raise SettingError(_plain(str(exc))) from None
        self.config = new
        if path.startswith("data."):
            self.remembered[new.data.source] = new.data
        return [p for p in changes if p != path]

    def apply(self, changes: dict[str, Any]) -> None:
        """Set several config fields at once (an explicit recipe); all or nothing (:class:`SettingError`)."""
        try:
            self.config = self.config.replace(**changes)
        except ConfigError as exc:
            raise SettingError(_plain(str(exc))) from None

    def set_data(self, spec: DataSpec) -> None:
        """Make ``spec`` the config's data (the caller loaded it) and the Data page's view."""
        self.config = self.config.replace(data=spec)
        self.remembered[spec.source] = spec
        self.data_view = spec.source

    def spec_for_view(self, source: str) -> DataSpec | None:
        """The spec the Data page switches to when ``source`` is picked (``None``: a CSV not yet uploaded)."""
        if source not in DATA_SOURCES:
            raise SettingError(f"Source: {source!r} is not one of {', '.join(DATA_SOURCES)}.")
        if source == self.config.data.source:
            return self.config.data
        if source in self.remembered:
            return self.remembered[source]
        return None if source == "csv" else _default_spec(source, self.config.data)

    def _set_page(self, path: str, value: Any) -> None:
        expected = PAGE_FIELDS[path]
        if not isinstance(value, expected) or (isinstance(value, bool) and expected in (int, (int, type(None)))):
            raise SettingError(f"{path}: {value!r} is not a valid value.")
        if path == "pace" and value is not None and value not in share.PACES:
            raise SettingError("Pace: choose fast or watchable.")
        if path == "executor" and value is not None and value not in EXECUTORS:
            raise SettingError("Train on: choose this server's worker processes or the Ray cluster.")
        if path == "img_fmt" and value not in ("png", "svg"):
            raise SettingError("Chart downloads: choose PNG or SVG.")
        if path == "data_view" and value not in DATA_SOURCES:
            raise SettingError(f"Source: {value!r} is not one of {', '.join(DATA_SOURCES)}.")
        if path == "share_hide":
            unknown = [h for h in value if h not in share.CONTROLS and h not in share.SECTIONS]
            if unknown:
                raise SettingError(f"Hide: unknown control(s) {', '.join(map(str, unknown))}.")
        if path.startswith("compare."):
            self.compare = dataclasses.replace(self.compare, **{path.split(".", 1)[1]: value})
        else:
            setattr(self, path, value)

    # ------------------------------------------------------------------ links
    def share_state(self, page: str, lesson: str | None = None) -> share.ShareState:
        """What a link to ``page`` carries now (raises ConfigError for a page links do not know)."""
        return share.ShareState(config=self.config, page=page, hidden=self.hidden,
                                presentation=self.presentation, lesson=lesson, pace=self.pace)

    def open_link(self, state: share.ShareState, *, with_config: bool) -> None:
        """Take a link's options (hidden controls, presentation, pace, lesson) and, ``with_config``, its config."""
        self.hidden, self.presentation = state.hidden, state.presentation
        if state.pace is not None:
            self.pace = state.pace
        if state.lesson is not None:
            self.lesson = state.lesson
        if with_config:
            self.config = state.config
            self.remembered[state.config.data.source] = state.config.data
            self.data_view = state.config.data.source


def _plain(message: str) -> str:
    """A config error (``"optim.lr: must be in (0.0, 100.0], got 0"``) as a sentence for the page."""
    name, _, why = message.partition(": ")
    return f"{name}: {why}" if why else message
