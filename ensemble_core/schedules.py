"""Learning-rate schedules, computed for every optimiser step before training.

The engine (:mod:`ensemble_core.training`) uses exactly the values of
:func:`lr_schedule`, so the dashboard can draw the schedule (and the snapshot
points from :func:`snapshot_steps`) before a run starts.

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
    """1-based units (steps or epochs) at which each of the ``cycles`` cycles ends."""
    return _cycles(total, cycles)[2]


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
