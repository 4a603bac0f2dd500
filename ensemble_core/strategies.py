"""How each member gets its data: seeds, shuffles, bootstrap resamples, FGSM.

Rules (shared by the engine and :mod:`ensemble_core.reference`, so both see
exactly the same data in the same order):

* **Seeds.** Trajectory ``k`` (0-based) of a run with ``config.seed = s`` has
  seed ``s * 1000 + k`` (:func:`member_seed`).  It seeds the member's initial
  weights (``torch.manual_seed``), its shuffling generator and, for bootstrap,
  its resample.
* **Independent** (and every snapshot trajectory): all ``n`` training rows,
  reshuffled every epoch exactly as ``DataLoader(..., shuffle=True,
  generator=torch.Generator().manual_seed(seed))`` does
  (:func:`dataloader_epoch_order`).
* **Bootstrap**: ``np.random.default_rng(seed).choice(n, n, replace=True)``
  drawn once (:func:`bootstrap_indices`); those ``n`` rows are reshuffled every
  epoch as above.
* **Snapshot**: ``strategy.members`` trajectories x ``strategy.snapshots``
  cycles; the snapshot points are :func:`ensemble_core.schedules.snapshot_steps`.
* **Adversarial** (FGSM, Goodfellow et al.; Lakshminarayanan et al. 2017):
  ``x' = x + eps * sign(grad_x loss)`` with ``eps = adversarial_eps * range``
  of each standardised training input (:func:`fgsm_eps`); a member's loss is
  its loss on ``x`` plus its loss on ``x'``.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from .config import RunConfig

__all__ = [
    "SEED_STRIDE",
    "member_seed",
    "trajectory_seeds",
    "bootstrap_indices",
    "dataloader_epoch_order",
    "DataStreams",
    "fgsm_eps",
    "fgsm",
]

#: Trajectory ``k`` of a run seeded ``s`` uses seed ``s * SEED_STRIDE + k``.
SEED_STRIDE = 1000


def member_seed(config: RunConfig, k: int) -> int:
    """Seed of trajectory ``k``: ``config.seed * 1000 + k``."""
    return int(config.seed) * SEED_STRIDE + int(k)


def trajectory_seeds(config: RunConfig) -> list[int]:
    """Seeds of the ``config.strategy.members`` independently initialised trajectories."""
    return [member_seed(config, k) for k in range(config.strategy.members)]


def bootstrap_indices(seed: int, n: int) -> np.ndarray:
    """``n`` row indices drawn with replacement: ``default_rng(seed).choice(n, n, replace=True)``."""
    return np.random.default_rng(seed).choice(n, n, replace=True)


def dataloader_epoch_order(generator: torch.Generator, n: int) -> Tensor:
    """The row order of one epoch of ``DataLoader(ds, shuffle=True, generator=generator)``.

    Reproduces, call for call, what a single-process ``DataLoader`` draws from
    its generator each epoch: one ``int64`` base seed when the iterator is
    created, the permutation of ``RandomSampler``, and ``RandomSampler``'s
    trailing ``randperm`` (for its ``num_samples % n`` remainder).
    ``tests/test_training.py`` checks this against a real ``DataLoader``.
    """
    torch.empty((), dtype=torch.int64).random_(generator=generator)
    order = torch.randperm(n, generator=generator)
    torch.randperm(n, generator=generator)
    return order


class DataStreams:
    """Every trajectory's row order, epoch after epoch (independent, bootstrap, snapshot).

    Args:
        config: the run (strategy kind, members, seed).
        n_train: number of training rows.
    """

    def __init__(self, config: RunConfig, n_train: int) -> None:
        self.n = int(n_train)
        self.seeds = trajectory_seeds(config)
        self.generators = [torch.Generator().manual_seed(s) for s in self.seeds]
        self.resamples: list[Tensor] | None = None
        if config.strategy.kind == "bootstrap":
            self.resamples = [torch.from_numpy(bootstrap_indices(s, self.n)).long() for s in self.seeds]

    def next_epoch(self) -> Tensor:
        """Row indices into the training set for the next epoch: ``[K, n]`` int64."""
        orders = []
        for k, g in enumerate(self.generators):
            perm = dataloader_epoch_order(g, self.n)
            orders.append(perm if self.resamples is None else self.resamples[k][perm])
        return torch.stack(orders)


def fgsm_eps(x_train_std: np.ndarray, fraction: float) -> np.ndarray:
    """Per-feature FGSM step: ``fraction`` times the range of the standardised training inputs.

    A constant feature (range 0) gets a step of 0.
    """
    x = np.asarray(x_train_std, dtype=np.float64)
    return fraction * (x.max(axis=0) - x.min(axis=0))


def fgsm(x: Tensor, grad: Tensor, eps: Tensor) -> Tensor:
    """Fast gradient sign step ``x + eps * sign(grad)`` (detached from the graph)."""
    return (x + eps * torch.sign(grad)).detach()
