"""The seed documents' plain training loops, one member after another.

Kept deliberately simple and readable: an ``nn.Sequential`` per member, a
``DataLoader``, ``torch.optim.Adam``/``SGD`` and, where the seed uses it,
``CosineAnnealingLR``.  This module is the test oracle of the vectorised
engine (:mod:`ensemble_core.training` must match it member by member) and the
baseline of ``benchmarks/bench_engine.py``.  It shares only these with the
engine: the member seeds and bootstrap rule (:mod:`ensemble_core.strategies`),
the network builder (:func:`ensemble_core.models.init_member`) and the loss
formulas (:mod:`ensemble_core.losses`, themselves tested against torch).  The
learning-rate schedules are written out again here, independently of
:mod:`ensemble_core.schedules`.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from . import losses
from .config import RunConfig
from .data import Dataset
from .models import dropout_masks, dropout_seed, init_member
from .overfit import member_val_scores
from .shapes import output_size
from .strategies import bootstrap_indices, fgsm_eps, member_seed

__all__ = ["ReferenceResult", "train_reference", "gaussian_nll_member_loss"]


@dataclass
class ReferenceResult:
    """What the plain loops produce.

    Attributes:
        models: the trained members (for snapshots: every snapshot,
            trajectory-major: trajectory 0's snapshots first).
        lr_trace: learning rate of every optimiser step of trajectory 0.
        epoch_losses: per trajectory, the mean training loss of each epoch.
    """

    models: list[nn.Sequential]
    lr_trace: np.ndarray
    epoch_losses: list[list[float]]


def gaussian_nll_member_loss(out: torch.Tensor, y: torch.Tensor, variance: str = "softplus") -> torch.Tensor:
    """The Gaussian-NLL member's loss: ``mean(0.5*log(var) + 0.5*(y-mu)^2/var)``."""
    mu, var = out[:, 0], losses.to_variance(out[:, 1], variance)  # type: ignore[arg-type]
    return losses.gaussian_nll(mu, var, y).mean()


def _loss_fn(config: RunConfig, task: str):  # noqa: ANN202 - a small closure factory
    if task == "classification":
        ce = nn.CrossEntropyLoss()
        return lambda out, y: ce(out, y)
    kind = config.loss.kind
    if kind == "mse":
        mse = nn.MSELoss()
        return lambda out, y: mse(out[:, 0], y)
    if kind == "beta_nll":
        return lambda out, y: losses.beta_nll(
            out[:, 0], losses.to_variance(out[:, 1], config.loss.variance), y, config.loss.beta).mean()
    return lambda out, y: gaussian_nll_member_loss(out, y, config.loss.variance)


def _dropout_forward(model: nn.Sequential, x: torch.Tensor, masks: list[torch.Tensor]) -> torch.Tensor:
    """The plain member with dropout: each hidden activation's output times its mask ``[B, width]``."""
    h, hidden = x, 0
    for layer in model:
        h = layer(h)
        if not isinstance(layer, nn.Linear):  # an activation: dropout follows it
            h = h * masks[hidden]
            hidden += 1
    return h


def _cyclic_lr(unit: int, total: int, cycles: int, lr_max: float, lr_min: float) -> float:
    """Cyclic cosine for 0-based ``unit`` of ``total``; cycle length ``ceil(total/cycles)``.

    Falls back to ``total // cycles`` (last cycle takes the rest) when ``ceil``
    would leave an empty cycle, as documented in :mod:`ensemble_core.schedules`.
    """
    per_cycle = math.ceil(total / cycles)
    if (cycles - 1) * per_cycle < total:
        cycle_pos, length = unit % per_cycle, per_cycle
    else:
        per_cycle = total // cycles
        last_start = (cycles - 1) * per_cycle
        if unit < last_start:
            cycle_pos, length = unit % per_cycle, per_cycle
        else:
            cycle_pos, length = unit - last_start, total - last_start
    return lr_min + 0.5 * (lr_max - lr_min) * (1 + math.cos(math.pi * cycle_pos / length))


def _cycle_end(unit: int, total: int, cycles: int) -> bool:
    """Whether 0-based ``unit`` is the last unit of a cycle."""
    per_cycle = math.ceil(total / cycles)
    if (cycles - 1) * per_cycle >= total:
        per_cycle = total // cycles
    done = unit + 1
    return done == total or (done % per_cycle == 0 and done // per_cycle < cycles)


def _train_trajectory(config: RunConfig, data: Dataset, k: int,
                      x: torch.Tensor, y: torch.Tensor) -> tuple[list[nn.Sequential], list[float], list[float]]:
    """Train trajectory ``k`` the seed's way; return its members, lr trace and epoch losses."""
    o, strat = config.optim, config.strategy
    seed = member_seed(config, k)
    n_out = output_size(data.task, config.loss, data.n_classes)
    model = init_member(seed, x.shape[1], n_out, config.model)  # torch.manual_seed(seed); build

    if strat.kind == "bootstrap":
        rows = torch.from_numpy(bootstrap_indices(seed, len(x))).long()
        dataset = TensorDataset(x[rows], y[rows])
    else:
        dataset = TensorDataset(x, y)
    batch_size = min(o.batch_size, len(x))
    loader = DataLoader(dataset, batch_size=batch_size, shuffle=True,
                        generator=torch.Generator().manual_seed(seed))

    if o.optimizer == "adam":
        optimizer: torch.optim.Optimizer = torch.optim.Adam(model.parameters(), lr=o.lr,
                                                            weight_decay=o.weight_decay)
    else:
        optimizer = torch.optim.SGD(model.parameters(), lr=o.lr, momentum=o.momentum,
                                    weight_decay=o.weight_decay)
    total_steps = o.epochs * len(loader)
    scheduler = None
    if o.schedule == "cosine":
        t_max = o.epochs if o.granularity == "epoch" else total_steps
        scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=t_max, eta_min=o.lr_min)

    criterion = _loss_fn(config, data.task)
    eps = None
    if strat.adversarial:
        eps = torch.as_tensor(fgsm_eps(x.numpy(), strat.adversarial_eps), dtype=x.dtype)
    # MC dropout: the engine draws every trajectory's masks at once, [members, B, width] per hidden
    # layer per step, from one generator per run; trajectory k's masks are row k of those draws
    mask_gen = None
    widths = [m.out_features for m in model if isinstance(m, nn.Linear)][:-1]
    if strat.kind == "mc_dropout":
        mask_gen = torch.Generator().manual_seed(dropout_seed(config.seed))
    # optim.keep_best: after every epoch, the member's validation score (dropout off); keep a copy of
    # the weights when it is strictly lower than the best so far
    best: tuple[float, nn.Sequential] | None = None
    x_val = y_val = None
    if o.keep_best and strat.kind != "snapshot" and len(data.x_val):
        x_val = torch.as_tensor(data.scale_x(data.x_val), dtype=torch.float32)
        y_val = torch.as_tensor(np.asarray(data.y_val if data.task == "classification" else
                                           data.scale_y(data.y_val)),
                                dtype=torch.int64 if data.task == "classification" else torch.float32)
    snapshots: list[nn.Sequential] = []
    lr_trace: list[float] = []
    epoch_losses: list[float] = []
    step = 0
    for epoch in range(o.epochs):
        if o.schedule == "cyclic" and o.granularity == "epoch":
            for group in optimizer.param_groups:
                group["lr"] = _cyclic_lr(epoch, o.epochs, strat.snapshots, o.lr, o.lr_min)
        model.train()
        running, seen = 0.0, 0
        for xb, yb in loader:
            if o.schedule == "cyclic" and o.granularity == "iteration":
                for group in optimizer.param_groups:
                    group["lr"] = _cyclic_lr(step, total_steps, strat.snapshots, o.lr, o.lr_min)
            lr_trace.append(optimizer.param_groups[0]["lr"])
            optimizer.zero_grad()
            if mask_gen is not None:
                masks = [m[k] for m in dropout_masks(mask_gen, strat.members, len(xb), widths, strat.dropout)]
                loss = criterion(_dropout_forward(model, xb, masks), yb)
            elif eps is None:
                loss = criterion(model(xb), yb)
            else:  # FGSM: loss on x plus loss on x + eps * sign(grad_x loss)
                xb = xb.clone().requires_grad_(True)
                clean = criterion(model(xb), yb)
                (grad_x,) = torch.autograd.grad(clean, xb, retain_graph=True)
                x_adv = (xb + eps * torch.sign(grad_x)).detach()
                loss = clean + criterion(model(x_adv), yb)
            loss.backward()
            optimizer.step()
            running += loss.item() * len(xb)
            seen += len(xb)
            if scheduler is not None and o.granularity == "iteration":
                scheduler.step()
            if strat.kind == "snapshot" and o.granularity == "iteration" and \
                    _cycle_end(step, total_steps, strat.snapshots):
                snapshots.append(copy.deepcopy(model).eval())
            step += 1
        if scheduler is not None and o.granularity == "epoch":
            scheduler.step()
        if strat.kind == "snapshot" and o.granularity == "epoch" and _cycle_end(epoch, o.epochs, strat.snapshots):
            snapshots.append(copy.deepcopy(model).eval())
        epoch_losses.append(running / seen)
        if x_val is not None:
            with torch.no_grad():
                score = float(member_val_scores(model(x_val)[None], y_val, data.task, config.loss.kind,
                                                config.loss.variance)[0])
            if best is None or score < best[0]:
                best = (score, copy.deepcopy(model))
    if best is not None:
        model = best[1]
    members = snapshots if strat.kind == "snapshot" else [model.eval()]
    return members, lr_trace, epoch_losses


def train_reference(config: RunConfig, data: Dataset) -> ReferenceResult:
    """Train every member of ``config`` on ``data`` with the seed's plain loops.

    Inputs (and a regression target) are standardised with the training
    statistics, as the engine does.  Runs on CPU in float32.

    Returns:
        The trained ``nn.Sequential`` members (snapshot strategy: every
        snapshot, trajectory-major), trajectory 0's lr trace and per-trajectory
        epoch losses.
    """
    x = torch.as_tensor(data.scale_x(data.x_train), dtype=torch.float32)
    if data.task == "classification":
        y = torch.as_tensor(data.y_train, dtype=torch.int64)
    else:
        y = torch.as_tensor(data.scale_y(data.y_train), dtype=torch.float32)
    models: list[nn.Sequential] = []
    traces: list[list[float]] = []
    epoch_losses: list[list[float]] = []
    for k in range(config.strategy.members):
        members, trace, ep_losses = _train_trajectory(config, data, k, x, y)
        models += members
        traces.append(trace)
        epoch_losses.append(ep_losses)
    return ReferenceResult(models=models, lr_trace=np.asarray(traces[0], dtype=np.float64),
                           epoch_losses=epoch_losses)
