"""Learning-rate schedules: the learning rate of each optimiser step, known before training.

The engine (:mod:`ensemble_core.training`) asks :class:`LrSchedule` for the
learning rate of each step as it comes (O(1) memory and time per step, so a
run of 10^8 steps starts at once and can be stopped at once); its values are
exactly those of :func:`lr_schedule`, which lists every step (O(steps): tests,
the reference loops and short runs only).  The dashboard draws the schedule
from :func:`schedule_points`, at most ~2,000 exact points whatever the number
of steps, with the snapshot points of :func:`snapshot_steps`.

Schedules (``OptimSpec.schedule``), each stepped per ``epoch`` or per
``iteration`` (``OptimSpec.granularity``):

* ``constant``: ``lr`` at every step.
* ``cosine``: ``torch.optim.lr_scheduler.CosineAnnealingLR`` with
  ``T_max`` = number of epochs (or of steps) and ``eta_min = lr_min``, stepped
  once per epoch (or step).  The values reproduce torch's recursive update
  float for float (:func:`cosine_annealing`).
* ``cyclic``: the cyclic cosine of snapshot ensembles.  With ``T`` units
  (steps, or epochs) and ``M`` cycles (``strategy.snapshots``), cycle length
  ``c = ceil(T / M)`` and, for the 1-based unit ``t``::

      lr(t) = lr_min + 0.5 * (lr - lr_min) * (1 + cos(pi * ((t - 1) mod c) / c))

  which is Huang et al. (2017) ``lr0/2 * (cos(pi*((t-1) mod c)/c) + 1)`` when
  ``lr_min = 0`` (per iteration) and the seed's
  ``lr_min + 0.5*(lr_max-lr_min)*(1+cos(pi*cycle_epoch/epochs_per_cycle))``
  per epoch.  A snapshot is taken at the end of each cycle (units ``c, 2c, ...``,
  the last one at ``T``; the last cycle is shorter when ``M`` does not divide
  ``T``).  When ``ceil`` would leave fewer than ``M`` non-empty cycles (e.g.
  ``T = 4, M = 3``), cycles of ``c = T // M`` units are used instead and the
  last cycle, ``T - (M-1)*c`` units long, is annealed over its own length.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .config import RunConfig

__all__ = [
    "effective_batch_size",
    "steps_per_epoch",
    "cosine_annealing",
    "cyclic_cosine",
    "cycle_ends",
    "lr_schedule",
    "snapshot_steps",
    "total_steps",
    "LrSchedule",
    "SchedulePoints",
    "schedule_points",
    "PLAN_POINTS",
]


def effective_batch_size(batch_size: int, n_train: int) -> int:
    """The batch size actually used: ``batch_size`` capped at the number of training rows."""
    if n_train < 1:
        raise ValueError(f"n_train must be at least 1, got {n_train}")
    return max(1, min(int(batch_size), int(n_train)))


def steps_per_epoch(batch_size: int, n_train: int) -> int:
    """Optimiser steps per epoch: ``ceil(n_train / batch)`` (the last batch may be short)."""
    b = effective_batch_size(batch_size, n_train)
    return -(-int(n_train) // b)


def cosine_annealing(lr: float, lr_min: float, t_max: int, n: int) -> np.ndarray:
    """The first ``n`` values of ``CosineAnnealingLR(T_max=t_max, eta_min=lr_min)``.

    Value ``k`` is the learning rate after ``k`` calls of ``scheduler.step()``,
    computed with torch's own recursive (chainable) update so that it equals
    the scheduler's value exactly, not just the closed form
    ``lr_min + (lr - lr_min) * (1 + cos(pi * k / t_max)) / 2``.
    """
    if t_max < 1:
        raise ValueError(f"t_max must be at least 1, got {t_max}")
    out = np.empty(n, dtype=np.float64)
    cur = float(lr)
    for k in range(n):
        if k == 0:
            cur = float(lr)
        elif (k - 1 - t_max) % (2 * t_max) == 0:
            cur = cur + (lr - lr_min) * (1 - math.cos(math.pi / t_max)) / 2
        else:
            cur = ((1 + math.cos(math.pi * k / t_max)) / (1 + math.cos(math.pi * (k - 1) / t_max))
                   * (cur - lr_min) + lr_min)
        out[k] = cur
    return out


def _cycles(total: int, cycles: int) -> tuple[np.ndarray, np.ndarray, list[int]]:
    """Position in cycle, cycle length (per 0-based unit) and the 1-based cycle end units."""
    if cycles < 1 or total < cycles:
        raise ValueError(f"need at least one unit per cycle: {total} units for {cycles} cycles")
    c = -(-total // cycles)
    u = np.arange(total)
    if (cycles - 1) * c < total:  # Huang et al.: every cycle ceil(T/M) long, the last one truncated
        pos = u % c
        length = np.full(total, c)
    else:  # ceil would leave an empty cycle: M-1 cycles of T//M, the last takes the rest
        c = total // cycles
        start_last = (cycles - 1) * c
        pos = np.where(u < start_last, u % c, u - start_last)
        length = np.where(u < start_last, c, total - start_last)
    ends = [k * c for k in range(1, cycles)] + [total]
    return pos, length, ends


def cyclic_cosine(lr: float, lr_min: float, total: int, cycles: int) -> np.ndarray:
    """Cyclic cosine over ``total`` units with ``cycles`` restarts (see the module docs)."""
    pos, length, _ = _cycles(total, cycles)
    return np.array([lr_min + 0.5 * (lr - lr_min) * (1 + math.cos(math.pi * int(p) / int(n)))
                     for p, n in zip(pos, length)], dtype=np.float64)


def cycle_ends(total: int, cycles: int) -> list[int]:
    """1-based units (steps or epochs) at which each of the ``cycles`` cycles ends (O(cycles))."""
    if cycles < 1 or total < cycles:
        raise ValueError(f"need at least one unit per cycle: {total} units for {cycles} cycles")
    c = -(-total // cycles)
    if (cycles - 1) * c >= total:  # ceil would leave an empty cycle (see _cycles)
        c = total // cycles
    return [k * c for k in range(1, cycles)] + [total]


def lr_schedule(config: RunConfig, n_train: int) -> np.ndarray:
    """Learning rate of every optimiser step of a run, before training.

    Args:
        config: the run's configuration (``optim`` and ``strategy.snapshots``).
        n_train: number of training rows (every member sees ``n_train`` rows
            per epoch, bootstrap resamples included).

    Returns:
        float64 array of length ``epochs * steps_per_epoch``; entry ``i`` is
        the learning rate of step ``i + 1``.
    """
    o = config.optim
    spe = steps_per_epoch(o.batch_size, n_train)
    total = o.epochs * spe
    per_epoch = o.granularity == "epoch"
    units = o.epochs if per_epoch else total
    if o.schedule == "constant":
        return np.full(total, float(o.lr))
    if o.schedule == "cosine":
        lrs = cosine_annealing(o.lr, o.lr_min, units, units)
    elif o.schedule == "cyclic":
        lrs = cyclic_cosine(o.lr, o.lr_min, units, config.strategy.snapshots)
    else:  # pragma: no cover - RunConfig validates the choice
        raise ValueError(f"unknown schedule {o.schedule!r}")
    return np.repeat(lrs, spe) if per_epoch else lrs


def snapshot_steps(config: RunConfig, n_train: int) -> list[int]:
    """Global 1-based steps after which the snapshot strategy stores a snapshot.

    Empty unless ``config.strategy.kind == "snapshot"``.  Step ``s`` is the
    ``s``-th optimiser step of a trajectory (``lr_schedule(...)[s - 1]`` is its
    learning rate); the last snapshot is at the last step.
    """
    if config.strategy.kind != "snapshot":
        return []
    o = config.optim
    spe = steps_per_epoch(o.batch_size, n_train)
    if o.granularity == "epoch":
        return [e * spe for e in cycle_ends(o.epochs, config.strategy.snapshots)]
    return cycle_ends(o.epochs * spe, config.strategy.snapshots)


def total_steps(config: RunConfig, n_train: int) -> int:
    """Optimiser steps of one trajectory over the whole run: ``epochs * steps_per_epoch``."""
    return config.optim.epochs * steps_per_epoch(config.optim.batch_size, n_train)


#: Up to this many units (steps of a per-iteration cosine schedule), :meth:`LrSchedule.at` walks
#: torch's recursive update exactly; beyond it the closed form is used (equal up to rounding,
#: ~1e-12 relative), so that a chart of a 10^8-step run costs the server no more than a short one.
COSINE_EXACT_UNITS = 200_000


class LrSchedule:
    """The learning rate of each optimiser step of a run, computed on demand.

    ``schedule(i)`` is the learning rate of 0-based step ``i``, bit for bit
    ``lr_schedule(config, n_train)[i]``, without building that list: constant
    and cyclic schedules are closed forms of ``i``; the cosine schedule is
    torch's recursive update, walked forward from the last unit asked for (so
    asking for the steps in order, as the engine does, costs O(1) each).

    Args:
        config: the run's configuration (``optim`` and ``strategy.snapshots``).
        n_train: number of training rows.
    """

    def __init__(self, config: RunConfig, n_train: int) -> None:
        o = config.optim
        self.kind = o.schedule
        if self.kind not in ("constant", "cosine", "cyclic"):  # pragma: no cover - RunConfig validates it
            raise ValueError(f"unknown schedule {o.schedule!r}")
        self.lr, self.lr_min = float(o.lr), float(o.lr_min)
        self.steps_per_epoch = steps_per_epoch(o.batch_size, n_train)
        self.total = o.epochs * self.steps_per_epoch
        self.per_epoch = o.granularity == "epoch"
        self.units = o.epochs if self.per_epoch else self.total
        self.cycle_ends: list[int] = []
        if self.kind == "cyclic":
            cycles = config.strategy.snapshots
            if cycles < 1 or self.units < cycles:
                raise ValueError(f"need at least one unit per cycle: {self.units} units for {cycles} cycles")
            c = -(-self.units // cycles)
            self._huang = (cycles - 1) * c < self.units
            if not self._huang:
                c = self.units // cycles
            self._c, self._start_last = c, (cycles - 1) * c
            self.cycle_ends = [k * c for k in range(1, cycles)] + [self.units]
        self._k, self._cur = 0, self.lr  # the cosine walk: value of unit _k

    def unit(self, step: int) -> int:
        """The 0-based schedule unit (epoch or step) of 0-based step ``step``."""
        return step // self.steps_per_epoch if self.per_epoch else step

    def unit_lr(self, u: int) -> float:
        """The learning rate of 0-based unit ``u`` (see the module docs)."""
        if self.kind == "constant":
            return self.lr
        if self.kind == "cyclic":
            if self._huang:
                p, n = u % self._c, self._c
            elif u < self._start_last:
                p, n = u % self._c, self._c
            else:
                p, n = u - self._start_last, self.units - self._start_last
            return self.lr_min + 0.5 * (self.lr - self.lr_min) * (1 + math.cos(math.pi * int(p) / int(n)))
        if u < self._k:  # asked backwards: walk again from the start
            self._k, self._cur = 0, self.lr
        lr, lr_min, t_max, cur = self.lr, self.lr_min, self.units, self._cur
        for k in range(self._k + 1, u + 1):  # cosine_annealing's update, float for float
            if (k - 1 - t_max) % (2 * t_max) == 0:
                cur = cur + (lr - lr_min) * (1 - math.cos(math.pi / t_max)) / 2
            else:
                cur = ((1 + math.cos(math.pi * k / t_max)) / (1 + math.cos(math.pi * (k - 1) / t_max))
                       * (cur - lr_min) + lr_min)
        self._k, self._cur = u, cur
        return cur

    def __call__(self, step: int) -> float:
        """The learning rate of 0-based optimiser step ``step``."""
        return self.unit_lr(self.unit(step))

    def at(self, steps: np.ndarray) -> np.ndarray:
        """Learning rates at the 0-based ``steps`` (any order), exact as :meth:`__call__`.

        A per-iteration cosine schedule longer than :data:`COSINE_EXACT_UNITS`
        steps uses the closed form instead of walking every step (chart use only).
        """
        steps = np.asarray(steps, dtype=np.int64)
        units = steps // self.steps_per_epoch if self.per_epoch else steps
        if self.kind == "cosine" and self.units > COSINE_EXACT_UNITS:
            k = units.astype(np.float64)
            return self.lr_min + (self.lr - self.lr_min) * (1 + np.cos(np.pi * k / self.units)) / 2
        order = np.argsort(units, kind="stable")
        out = np.empty(len(units), dtype=np.float64)
        for i in order:
            out[i] = self.unit_lr(int(units[i]))
        return out


#: Most points of a drawn schedule (:func:`schedule_points`), restarts and snapshots not counted.
PLAN_POINTS = 2000


@dataclass(frozen=True)
class SchedulePoints:
    """A run's schedule at a bounded number of steps, for drawing.

    Attributes:
        steps: 0-based step indices, increasing.
        lrs: the learning rate at each of ``steps`` (the engine's values).
        total: the run's number of steps (per trajectory).
        steps_per_epoch: optimiser steps per epoch.
        snapshots: 0-based steps after which a snapshot is taken (all within ``steps``).
    """

    steps: np.ndarray
    lrs: np.ndarray
    total: int
    steps_per_epoch: int
    snapshots: list[int]


def schedule_points(config: RunConfig, n_train: int, max_points: int = PLAN_POINTS) -> SchedulePoints:
    """The schedule on at most ``max_points`` evenly spread steps plus its restarts and snapshots.

    Every step is drawn when there are at most ``max_points``; otherwise an even
    spread of steps, the first and last step of each epoch when that fits (a
    per-epoch schedule's staircase), and for a cyclic schedule the last step of
    every cycle and the first of the next (so each restart is drawn exactly).
    The values are exact at the steps drawn.  Cost and size are independent of
    the number of steps (at most ``max_points + 4 * cycles`` points).
    """
    sched = LrSchedule(config, n_train)
    total, spe = sched.total, sched.steps_per_epoch
    snaps = [s - 1 for s in snapshot_steps(config, n_train)]
    if total <= max_points:
        steps = np.arange(total, dtype=np.int64)
    else:
        parts = [np.linspace(0, total - 1, max_points).astype(np.int64)]
        if sched.per_epoch and 2 * config.optim.epochs <= max_points:
            e = np.arange(config.optim.epochs, dtype=np.int64) * spe
            parts = [e, e + spe - 1]
        ends = [u * spe if sched.per_epoch else u for u in sched.cycle_ends]  # exclusive 0-based ends
        parts.append(np.asarray([x for u in ends for x in (u - 1, u) if 0 <= x < total]
                                + [x for s in snaps for x in (s, s + 1) if 0 <= x < total], dtype=np.int64))
        steps = np.unique(np.concatenate(parts))
    return SchedulePoints(steps=steps, lrs=sched.at(steps), total=total, steps_per_epoch=spe, snapshots=snaps)
