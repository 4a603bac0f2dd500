"""What a training run produces: the :class:`Run` and the events of its stream.

:func:`ensemble_core.training.train` emits the events (:data:`Event`) while it
trains and returns a :class:`Run`; :mod:`ensemble_core.predict` combines a
run's members, :mod:`ensemble_core.persistence` saves and loads runs and
:mod:`ensemble_core.worker` sends events and runs between processes (pickled:
both sides import this module).  These types live here, apart from the engine,
so that ``training`` (which uses ``predict``) and ``predict`` (which reads a
``Run``) do not import each other.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import numpy as np

from .config import RunConfig

__all__ = ["MemberInfo", "EpochEnd", "SnapshotTaken", "MemberDiverged", "Done", "Preview", "Event", "Run"]


@dataclass(frozen=True)
class MemberInfo:
    """One member of the final ensemble.

    Attributes:
        index: position in the ensemble (0..ensemble_size-1).
        trajectory: which independently seeded trajectory produced it.
        snapshot: snapshot number within the trajectory (0 for non-snapshot).
        seed: the member's (trajectory's) init/data-order seed.
        epoch: the epoch at which its weights were taken (1-based).
        status: ``"ok"`` or ``"diverged"`` (excluded from predictions).
        reason: why it diverged, else ``""``.
    """

    index: int
    trajectory: int
    snapshot: int
    seed: int
    epoch: int
    status: Literal["ok", "diverged"] = "ok"
    reason: str = ""


@dataclass(frozen=True)
class EpochEnd:
    """Emitted after every epoch.

    Attributes:
        epoch: 1-based epoch just finished; ``n_epochs`` total planned.
        train_loss: mean training loss of each trajectory this epoch
            (``nan`` for a diverged trajectory).
        train_acc: per-trajectory training accuracy (classification) else None.
        val: ensemble validation metrics of the members available so far,
            in original units (``{"nll": .., "rmse": ..}`` or
            ``{"nll": .., "accuracy": ..}``); empty when there is no val split.
        lrs: the learning rate of every optimiser step taken this epoch.
        elapsed: seconds since training started.
    """

    epoch: int
    n_epochs: int
    train_loss: list[float]
    train_acc: list[float] | None
    val: dict[str, float]
    lrs: list[float]
    elapsed: float
    kind: Literal["epoch"] = "epoch"


@dataclass(frozen=True)
class SnapshotTaken:
    """A snapshot was stored (snapshot strategy).

    ``epoch`` is the 1-based epoch during which it was taken; ``step`` is the
    1-based count of optimiser steps done when it was taken, the same numbering
    as :func:`ensemble_core.schedules.snapshot_steps` (its learning rate is
    ``lr_trace[step - 1]``).
    """

    trajectory: int
    snapshot: int
    epoch: int
    step: int
    kind: Literal["snapshot"] = "snapshot"


@dataclass(frozen=True)
class MemberDiverged:
    """A trajectory produced a non-finite loss or weights and was frozen/excluded."""

    trajectory: int
    epoch: int
    reason: str
    kind: Literal["diverged"] = "diverged"


@dataclass(frozen=True)
class Done:
    """Training ended: ``stopped`` is True when ``should_stop`` ended it early."""

    epochs_done: int
    stopped: bool
    seconds: float
    kind: Literal["done"] = "done"


@dataclass(frozen=True)
class Preview:
    """The current ensemble's prediction on the caller's ``preview_x`` (live plots).

    ``prediction`` is a :class:`ensemble_core.predict.RegressionPrediction` or
    ``ClassificationPrediction`` in original units, made from the current
    weights of every healthy trajectory (plus snapshots taken so far).
    """

    epoch: int
    prediction: object
    kind: Literal["preview"] = "preview"


Event = EpochEnd | SnapshotTaken | MemberDiverged | Preview | Done


@dataclass
class Run:
    """A trained (possibly partial) ensemble plus its history.

    Attributes:
        config: the config it was trained with.
        task: regression or classification.
        model: the stacked-members module (``ensemble_core.models``), in eval mode,
            on CPU, holding the weights of *every* final member (diverged ones too).
        members: one :class:`MemberInfo` per ensemble member.
        history: every event emitted, in order.
        lr_trace: learning rate of every optimiser step actually taken.
        epochs_done, stopped, seconds: as in :class:`Done`.
        x_mean, x_std, y_mean, y_std: training-split scaling (predict un-scales).
        n_classes: number of classes (classification) else 0.
        feature_names, target_name, class_names: copied from the dataset.
    """

    config: RunConfig
    task: Literal["regression", "classification"]
    model: object
    members: list[MemberInfo]
    history: list[Event]
    lr_trace: np.ndarray
    epochs_done: int
    stopped: bool
    seconds: float
    x_mean: np.ndarray
    x_std: np.ndarray
    y_mean: float
    y_std: float
    n_classes: int = 0
    feature_names: list[str] = field(default_factory=list)
    target_name: str = ""
    class_names: list[str] | None = None

    @property
    def healthy(self) -> list[int]:
        """Indices of members that did not diverge."""
        return [m.index for m in self.members if m.status == "ok"]
