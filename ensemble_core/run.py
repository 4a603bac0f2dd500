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

import dataclasses
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from .config import RunConfig

__all__ = ["MemberInfo", "EpochEnd", "SnapshotTaken", "MemberDiverged", "Done", "Preview", "Event", "Run",
           "PACES", "Pace", "WATCHABLE_S", "pace_seconds", "REPLAY_FRAMES", "MAX_REPLAY_FRAMES",
           "MAX_REPLAY_MEMBERS", "MAX_REPLAY_BYTES", "preview_every", "slim_prediction", "prediction_nbytes",
           "record_replay", "thin_frames"]

#: How fast a run is shown: ``"fast"`` (as fast as possible) or ``"watchable"`` (the same run, its epochs
#: spread over about :data:`WATCHABLE_S` seconds by waiting between them; the result is the same bit for bit).
Pace = Literal["fast", "watchable"]
PACES: tuple[str, ...] = ("fast", "watchable")
#: Seconds a watchable run is spread over (a run that trains slower than this is not slowed at all).
WATCHABLE_S = 9.0

#: Previews a run asks for (the replay's frames; see :func:`preview_every`).
REPLAY_FRAMES = 50
#: Most previews a run keeps for its replay (more are thinned evenly, the last one kept).
MAX_REPLAY_FRAMES = 64
#: Most member curves a kept preview holds (regression member means; the ensemble statistics cover all).
MAX_REPLAY_MEMBERS = 10
#: Most bytes of arrays a run's replay holds (frames beyond it are thinned evenly): 16 MiB.
MAX_REPLAY_BYTES = 16 * 2**20


def pace_seconds(pace: str) -> float:
    """Seconds a run of ``pace`` is spread over: 0 for ``"fast"``, :data:`WATCHABLE_S` for ``"watchable"``.

    Raises:
        ValueError: an unknown pace.
    """
    if pace not in PACES:
        raise ValueError(f"pace: must be one of {', '.join(PACES)}, got {pace!r}")
    return WATCHABLE_S if pace == "watchable" else 0.0


def preview_every(epochs: int, frames: int = REPLAY_FRAMES) -> int:
    """Epochs between two previews so that a run of ``epochs`` records about ``frames`` of them."""
    return max(1, math.ceil(int(epochs) / max(1, frames)))


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
        replay: the previews recorded while it trained (slim, see :func:`record_replay`), oldest first:
            the frames of its replay; empty when none were asked for.
        replay_x: the inputs ``[N, d]`` (original units) the previews predict on, else ``None``.
        waited: seconds a watchable pace waited between epochs (not in ``seconds``, which is training).
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
    replay: list[Preview] = field(default_factory=list)
    replay_x: np.ndarray | None = None
    waited: float = 0.0

    @property
    def healthy(self) -> list[int]:
        """Indices of members that did not diverge."""
        return [m.index for m in self.members if m.status == "ok"]


# ------------------------------------------------------------------ replay
def _f32(a: Any) -> np.ndarray:
    return np.asarray(a, dtype=np.float32)


def slim_prediction(prediction: Any, max_members: int = MAX_REPLAY_MEMBERS) -> Any:
    """A preview's prediction as its replay keeps it: float32, at most ``max_members`` member curves.

    Regression keeps the ensemble's mean, aleatoric, epistemic and total
    variance and the first ``max_members`` member means and variances;
    classification keeps the ensemble's probabilities and entropies and no
    member probabilities (``[0, N, C]``).  ``members`` still lists every member
    combined.  The result has the prediction's own type, so every chart that
    draws a prediction draws it.  Anything else is returned as it is.
    """
    if hasattr(prediction, "member_means"):
        k = slice(0, max_members)
        return dataclasses.replace(prediction, mean=_f32(prediction.mean), aleatoric=_f32(prediction.aleatoric),
                                   epistemic=_f32(prediction.epistemic), total=_f32(prediction.total),
                                   member_means=_f32(prediction.member_means)[k],
                                   member_vars=_f32(prediction.member_vars)[k], members=list(prediction.members))
    if hasattr(prediction, "member_probs"):
        probs = _f32(prediction.probs)
        return dataclasses.replace(prediction, probs=probs, total=_f32(prediction.total),
                                   aleatoric=_f32(prediction.aleatoric), epistemic=_f32(prediction.epistemic),
                                   member_probs=np.zeros((0, *probs.shape), dtype=np.float32),
                                   members=list(prediction.members))
    return prediction


def prediction_nbytes(prediction: Any) -> int:
    """Bytes of the arrays a (slim) prediction holds."""
    return sum(int(v.nbytes) for v in vars(prediction).values() if isinstance(v, np.ndarray)) \
        if hasattr(prediction, "__dict__") else 0


def thin_frames(frames: Sequence[Preview], most: int) -> list[Preview]:
    """At most ``most`` of ``frames``, evenly spaced, the first and the last kept."""
    frames = list(frames)
    if len(frames) <= most:
        return frames
    if most <= 1:
        return frames[-1:]
    keep = np.unique(np.round(np.linspace(0, len(frames) - 1, most)).astype(int))
    return [frames[i] for i in keep]


def record_replay(run: Run, preview_x: Any = None, *, most: int = MAX_REPLAY_FRAMES,
                  max_bytes: int = MAX_REPLAY_BYTES) -> Run:
    """Move the run's :class:`Preview` events out of its history into :attr:`Run.replay` (in place).

    Each preview is slimmed (:func:`slim_prediction`); at most ``most`` are
    kept and their arrays stay within ``max_bytes`` (both by thinning evenly,
    the last preview always kept), so a run's replay is bounded whatever its
    epochs: ``most`` x (``(4 + 2 x MAX_REPLAY_MEMBERS) x N`` regression or
    ``(3 + C) x N`` classification float32s), and never over ``max_bytes``.
    ``preview_x`` becomes :attr:`Run.replay_x`.  Idempotent.

    Returns:
        ``run``.
    """
    previews = [e for e in run.history if isinstance(e, Preview)]
    if previews or preview_x is not None:
        run.history = [e for e in run.history if not isinstance(e, Preview)]
        frames = [dataclasses.replace(p, prediction=slim_prediction(p.prediction)) for p in previews]
        frames = thin_frames([*run.replay, *frames], most)
        per = max((prediction_nbytes(f.prediction) for f in frames), default=0)
        if per and per * len(frames) > max_bytes:
            frames = thin_frames(frames, max(1, max_bytes // per))
        run.replay = frames
        if preview_x is not None:
            run.replay_x = np.asarray(preview_x, dtype=np.float64)
    return run
