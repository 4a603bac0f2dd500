"""The training engine: ``train(config, data, on_event, should_stop) -> Run``.

One :class:`~ensemble_core.models.StackedMLP` holds every trajectory; one
batched forward/backward and one optimiser step per mini-batch train them all.
Independence is exact: member ``k`` starts from ``torch.manual_seed(seed_k)``
and the seed's ``nn.Sequential`` (:func:`ensemble_core.models.init_member`),
sees its own data order / bootstrap resample (:mod:`ensemble_core.strategies`),
has its own optimiser state (Adam and SGD are elementwise) and its loss is
*summed* with the others so gradients never mix.  ``tests/test_engine_vs_reference.py``
checks the result against the plain loops of :mod:`ensemble_core.reference`.

The parameters are trained as one flat vector whose dense views feed the
stacked forward: the (fused) optimiser step and the masking of a diverged
trajectory are then single tensor operations.  Gradients are computed by a
hand-written batched backward pass (:meth:`StackedMLP.backward` and
:func:`ensemble_core.losses.loss_and_grad`, both tested against autograd), which
avoids autograd's per-step graph overhead.  There is no
``.item()`` per step; losses, accuracy and divergence flags accumulate on the
device and are read once per epoch.
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Callable

import numpy as np
import torch

from . import metrics
from .config import RunConfig
from .data import Dataset
from .losses import loss_and_grad, to_variance
from .models import StackedMLP, dropout_masks, dropout_seed
from .overfit import member_val_scores
from .predict import (
    ClassificationPrediction,
    RegressionPrediction,
    combine_classification,
    combine_regression,
    mc_forward,
)
from .run import Done, EpochEnd, Event, MemberDiverged, MemberInfo, Preview, Run, SnapshotTaken
from .schedules import LrSchedule, effective_batch_size, snapshot_steps, steps_per_epoch
from .shapes import output_size
from .strategies import DataStreams, fgsm, fgsm_eps


class TrainingError(RuntimeError):
    """Training could not run (e.g. every member diverged, resources exceeded)."""


#: Test/experiment hook type: called with the freshly initialised stack (CPU) before training.
InitHook = Callable[["StackedMLP"], None]


def resolve_device(device: str) -> torch.device:
    """``"cuda"``/``"auto"`` -> CUDA when available, else CPU; ``"cpu"`` -> CPU."""
    if device in ("cuda", "auto") and torch.cuda.is_available():
        return torch.device("cuda")
    return torch.device("cpu")


def check_inputs(config: RunConfig, data: Dataset) -> None:
    """Raise :class:`TrainingError` with a human message when ``data`` cannot train ``config``.

    Checks: a :class:`Dataset` with a known task; the config's data spec and
    the data agree on the task; regression losses (``mse``, ``beta_nll``) are
    not asked for on a classification task (classification always uses
    cross-entropy, so the default ``loss.kind="nll"`` is ignored there); at
    least 2 classes with labels ``0..C-1``; a non-empty training split; 2-D
    inputs and 1-D targets of matching lengths; no NaN or infinite values; a
    non-constant regression target.
    """
    if not isinstance(data, Dataset):
        raise TrainingError(f"data must be a Dataset, got {type(data).__name__}")
    task = data.task
    if task not in ("regression", "classification"):
        raise TrainingError(f"unknown task {task!r}: expected 'regression' or 'classification'")
    expected = config.data.inferred_task
    if expected is not None and expected != task:
        raise TrainingError(f"the config describes a {expected} data set ({config.data.name!r}) "
                            f"but the data is a {task} task")
    if task == "classification" and config.loss.kind in ("mse", "beta_nll"):
        raise TrainingError(f"loss {config.loss.kind!r} is a regression loss; classification always "
                            "trains with cross-entropy (choose the default loss)")
    x, y = np.asarray(data.x_train), np.asarray(data.y_train)
    if config.optim.keep_best and len(data.x_val) == 0:
        raise TrainingError("keeping each member's best-validation weights needs a validation split "
                            "(set a validation fraction above 0, or turn the option off)")
    if x.ndim != 2:
        raise TrainingError(f"training inputs must be a 2-D array [n, d], got shape {x.shape}")
    if len(x) == 0 or x.shape[1] == 0:
        raise TrainingError("the training split is empty: there is nothing to train on")
    if y.shape != (len(x),):
        raise TrainingError(f"training targets must have shape ({len(x)},), got {y.shape}")
    for name, arr in (("training inputs", x), ("training targets", y),
                      ("validation inputs", data.x_val), ("validation targets", data.y_val)):
        arr = np.asarray(arr)
        if arr.size and not np.all(np.isfinite(arr.astype(np.float64))):
            raise TrainingError(f"the {name} contain NaN or infinite values; clean or drop those rows first")
    if len(data.x_val) and np.asarray(data.x_val).shape[1:] != x.shape[1:]:
        raise TrainingError(f"validation inputs have {np.asarray(data.x_val).shape[1:]} columns, "
                            f"training inputs {x.shape[1:]}")
    if task == "classification":
        n_classes = data.n_classes
        if n_classes < 2:
            raise TrainingError(f"classification needs at least 2 classes, got {n_classes}")
        for name, labels in (("training", y), ("validation", np.asarray(data.y_val))):
            if labels.size and (np.any(labels != np.round(labels)) or labels.min() < 0
                                or labels.max() >= n_classes):
                raise TrainingError(f"{name} labels must be class indices 0..{n_classes - 1}")
    else:
        if not (np.isfinite(data.y_std) and data.y_std > 0):
            raise TrainingError("the regression target is constant (standard deviation 0): "
                                "there is nothing to learn")
    if not np.all(np.isfinite(np.asarray(data.x_std, dtype=np.float64))) or np.any(np.asarray(data.x_std) <= 0):
        raise TrainingError("input scaling (x_std) must be positive and finite")


class _StackedOptimizer:
    """Adam or SGD on the flat parameter vector: one fused kernel call per step, no ``Optimizer.step``.

    The numbers are ``torch.optim.Adam``/``SGD(fused=True)``'s own (the same kernels,
    ``torch._fused_adam_`` / ``torch._fused_sgd_``, with the same state), called
    directly: ``Optimizer.step`` spent ~0.1 ms per step in Python (hooks, state
    grouping, dtype/device checks) around a ~15 us kernel.

    Each trajectory may have its own learning rate and weight decay (batched
    sweeps, :mod:`ensemble_core.sweep`).  When they are the same for all, they
    go to the kernel as scalars; otherwise the (coupled) weight decay is added to
    the gradient per element first, and the kernel computes the step at learning
    rate 1 into a zeroed buffer that is then scaled per element and added to the
    parameters (``flat += lr * d``).
    """

    def __init__(self, flat: torch.Tensor, grad: torch.Tensor, optimizer: str, momentum: float,
                 weight_decay: list[float], member_of: torch.Tensor, lane_of: torch.Tensor) -> None:
        self.flat, self.grad, self.lane_of = flat, grad, lane_of
        self.adam = optimizer == "adam"
        self.momentum = float(momentum)
        self.wd_uniform = len(set(weight_decay)) == 1
        self.wd = float(weight_decay[0])
        self.wd_elem = None if self.wd_uniform else \
            torch.tensor(weight_decay, dtype=flat.dtype, device=flat.device)[member_of]
        dev = flat.device
        if self.adam:
            self.exp_avg = torch.zeros_like(flat)
            self.exp_avg_sq = torch.zeros_like(flat)
            self.steps = [torch.zeros((), dtype=torch.float32, device=dev)]  # torch's fused state["step"]
        else:
            self.buf: list[torch.Tensor] = [torch.empty_like(flat)] if self.momentum != 0 else []
            self.first = True
        self.scratch: torch.Tensor | None = None
        self._lr_key: tuple[float, ...] | None = None
        self._lr_elem: torch.Tensor | None = None

    def _kernel(self, param: torch.Tensor, lr: float, wd: float) -> None:
        if self.adam:
            torch._foreach_add_(self.steps, 1)
            torch._fused_adam_([param], [self.grad], [self.exp_avg], [self.exp_avg_sq], [], self.steps,
                               amsgrad=False, lr=lr, beta1=0.9, beta2=0.999, weight_decay=wd, eps=1e-8,
                               maximize=False)
        else:
            torch._fused_sgd_([param], [self.grad], self.buf, weight_decay=wd, momentum=self.momentum, lr=lr,
                              dampening=0.0, nesterov=False, maximize=False, is_first_step=self.first)
            self.first = False

    def step(self, lr: float | tuple[float, ...]) -> None:
        """One update; ``lr`` is a float (every trajectory) or one value per lane (``lane_of`` maps elements to lanes)."""
        if isinstance(lr, float) and self.wd_uniform:
            self._kernel(self.flat, lr, self.wd)
            return
        # the coupled weight decay goes into the gradient here (the kernel below gets 0)
        if self.wd_elem is not None:
            self.grad.addcmul_(self.flat, self.wd_elem)
        elif self.wd != 0.0:
            self.grad.add_(self.flat, alpha=self.wd)
        if isinstance(lr, float):
            self._kernel(self.flat, lr, 0.0)
            return
        if lr != self._lr_key:
            self._lr_key = lr
            self._lr_elem = torch.tensor(lr, dtype=self.flat.dtype, device=self.flat.device)[self.lane_of]
        if self.scratch is None:
            self.scratch = torch.zeros_like(self.flat)
        else:
            self.scratch.zero_()
        self._kernel(self.scratch, 1.0, 0.0)  # scratch = -(the step at learning rate 1)
        self.flat.addcmul_(self.scratch, self._lr_elem)  # type: ignore[arg-type]


class _Engine:
    """State of one vectorised training run (see :func:`train`), or of several *lanes* trained as one.

    A lane is one run's config: ``configs[i]`` with its ``M`` trajectories at
    the global trajectory indices ``i*M .. i*M+M-1``.  All lanes share the data,
    architecture, loss kind, strategy, optimiser kind, batch size, epochs and
    schedule shape; they may differ in what the engine carries per trajectory
    (:func:`lane_key`): learning rate (and ``lr_min``), weight decay, seed, the
    adversarial eps and the beta-NLL beta.  Each lane gets its own events,
    learning-rate trace and :class:`Run`, equal (to float round-off) to the run
    of its config alone.
    """

    def __init__(self, configs: list[RunConfig], data: Dataset, on_event: Callable[[int, Event], None] | None,
                 should_stop: Callable[[], bool] | None, preview_x: np.ndarray | None, preview_every: int,
                 init_hook: InitHook | None) -> None:
        self.t0 = time.perf_counter()
        config = configs[0]
        self.configs, self.config, self.data = configs, config, data
        self.on_event, self.should_stop = on_event, should_stop
        self.L = len(configs)
        self.histories: list[list[Event]] = [[] for _ in configs]
        self.lane_done = [False] * self.L
        self.task = data.task
        self.device = resolve_device(config.device)
        o, strat = config.optim, config.strategy
        self.n_train = len(data.x_train)
        self.M = strat.members
        self.K = self.L * self.M
        self.snapshot = strat.kind == "snapshot"
        self.n_out = output_size(self.task, config.loss, data.n_classes)
        self.batch = effective_batch_size(o.batch_size, self.n_train)
        self.spe = steps_per_epoch(o.batch_size, self.n_train)
        # the learning rate of each step is computed as the step comes, one epoch at a time (never a
        # list of every step up front: a 10^8-step run must start, and stop, at once); lr_traces
        # hold the steps taken, per lane
        self.schedules = [LrSchedule(c, self.n_train) for c in configs]
        self.lr_traces: list[list[float]] = [[] for _ in configs]
        self.snap_steps = set(snapshot_steps(config, self.n_train))
        self.lane_streams = [DataStreams(c, self.n_train) for c in configs]
        self.seeds = [s for st in self.lane_streams for s in st.seeds]
        dev = self.device

        x_std = data.scale_x(data.x_train)
        self.x = torch.as_tensor(x_std, dtype=torch.float32, device=dev)
        if self.task == "classification":
            self.y = torch.as_tensor(data.y_train, dtype=torch.int64, device=dev)
        else:
            self.y = torch.as_tensor(data.scale_y(data.y_train), dtype=torch.float32, device=dev)
        self.x_val = torch.as_tensor(data.scale_x(data.x_val), dtype=torch.float32, device=dev) \
            if len(data.x_val) else None
        # optim.keep_best: each trajectory's best validation score so far, its weights and epoch
        self.keep_best = bool(o.keep_best) and self.x_val is not None and strat.kind != "snapshot"
        if self.keep_best:
            yv = data.y_val if self.task == "classification" else data.scale_y(data.y_val)
            self.y_val = torch.as_tensor(np.asarray(yv), dtype=torch.int64 if self.task == "classification"
                                         else torch.float32, device=dev)
        self.best_score: torch.Tensor | None = None
        self.best_rows: torch.Tensor | None = None
        self.best_epoch: list[int] = []
        self.preview_x = None
        if preview_x is not None:
            px = np.asarray(preview_x, dtype=np.float64)
            if px.ndim == 1 and data.n_features == 1:
                px = px[:, None]
            if px.ndim != 2 or px.shape[1] != data.n_features or not np.all(np.isfinite(px)):
                raise TrainingError(f"preview_x must be a finite [N, {data.n_features}] array, got shape {px.shape}")
            self.preview_x = torch.as_tensor(data.scale_x(px), dtype=torch.float32, device=dev)
        self.preview_every = int(preview_every)
        self.eps = None
        if strat.adversarial:
            eps = [fgsm_eps(x_std, c.strategy.adversarial_eps) for c in configs]
            if len({c.strategy.adversarial_eps for c in configs}) == 1:
                self.eps = torch.as_tensor(eps[0], dtype=torch.float32, device=dev)
            else:  # [K, 1, d]: one step per trajectory
                per = np.repeat(np.stack(eps), self.M, axis=0)[:, None, :]
                self.eps = torch.as_tensor(per, dtype=torch.float32, device=dev)
        self.beta: torch.Tensor | None = None
        if config.loss.kind == "beta_nll" and len({c.loss.beta for c in configs}) > 1:
            betas = [c.loss.beta for c in configs for _ in range(self.M)]
            self.beta = torch.tensor(betas, dtype=torch.float32, device=dev)[:, None]

        model = StackedMLP.from_seeds(self.seeds, data.n_features, self.n_out, config.model)
        # MC dropout: each lane draws its trajectories' masks from its own generator (seeded from
        # its run's seed), so a lane's masks are those of its run alone
        self.dropout = strat.dropout if strat.kind == "mc_dropout" else 0.0
        self.mask_gens = [torch.Generator(device=dev).manual_seed(dropout_seed(c.seed)) for c in configs] \
            if self.dropout > 0 else []
        self.widths = model.hidden_widths
        if init_hook is not None:
            init_hook(model)
        self.model = model.to(dev)
        # One flat parameter vector is what the optimiser sees: the stacked tensors W0, b0,
        # W1, ... ([K, ...] each) laid end to end.  The per-layer tensors of the forward pass
        # are dense views of its storage and the hand-written backward pass
        # (StackedMLP.backward) writes straight into views of one flat gradient buffer, so
        # no autograd graph is built and every optimiser update is visible to the layers.
        # ``member_of`` maps each element to its trajectory.
        stacked = [t for wb in zip(model.weights, model.biases) for t in wb]
        self.flat = torch.cat([t.detach().reshape(-1) for t in stacked]).to(dev)
        self.grad = torch.zeros_like(self.flat)
        self.views: list[torch.Tensor] = []
        grads: list[torch.Tensor] = []
        member_of = []
        offset = 0
        for t in stacked:
            n = t.numel()
            self.views.append(self.flat[offset:offset + n].view(t.shape))
            grads.append(self.grad[offset:offset + n].view(t.shape))
            member_of.append(torch.arange(self.K).repeat_interleave(n // self.K))
            offset += n
        self.W, self.B = self.views[0::2], self.views[1::2]
        self.gW, self.gB = grads[0::2], grads[1::2]
        self.member_of = torch.cat(member_of).to(dev)
        self.opt = _StackedOptimizer(self.flat, self.grad, o.optimizer, o.momentum,
                                     [c.optim.weight_decay for c in configs for _ in range(self.M)],
                                     self.member_of, self.member_of // self.M)
        # On CPU one cheap host check per step decides whether any trajectory needs masking;
        # on CUDA the masks are always applied (no host synchronisation per step).
        self.masked = self.device.type != "cpu"

        # per-trajectory state, all tensors on the device (synchronised once per epoch)
        self.healthy = torch.ones(self.K, dtype=torch.bool, device=dev)
        self.bad_loss = torch.zeros(self.K, dtype=torch.float32, device=dev)
        self.healthy_host = [True] * self.K
        self.diverged_reason: dict[int, str] = {}
        self.diverged_epoch: dict[int, int] = {}
        # snapshots: list of (flat copy [K, P], healthy at that time, epoch, step)
        self.snaps: list[tuple[torch.Tensor, list[bool], int, int]] = []
        self.step = 0
        self.epochs_done = 0
        self.last_snap_step = 0
        # validation outputs: the current weights' (step, [K, n, out]) from the epoch's divergence
        # check, and each snapshot's, computed once (see _val_outputs)
        self._val_out: tuple[int, torch.Tensor] | None = None
        self._snap_val_out: dict[int, torch.Tensor] = {}

    # ------------------------------------------------------------ the lanes
    def lane(self, k: int) -> int:
        """The lane of global trajectory ``k``."""
        return k // self.M

    def lane_range(self, lane: int) -> range:
        """Global trajectory indices of ``lane``."""
        return range(lane * self.M, (lane + 1) * self.M)

    # ----------------------------------------------------------------- events
    def emit(self, lane: int, event: Event) -> None:
        self.histories[lane].append(event)
        if self.on_event is not None:
            self.on_event(lane, event)

    # ------------------------------------------------------------- one step
    def _grad_pass(self, xb: torch.Tensor, yb: torch.Tensor, accumulate: bool,
                   input_grad: bool) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        """Forward + hand-written backward of the batch-mean loss of every trajectory.

        Writes (or adds) the gradients into the flat gradient buffer.  Returns the
        per-trajectory *sum* of the batch's losses ``[K]``, the outputs and, if asked,
        ``d loss / d x``.
        """
        masks = self._dropout_masks(xb.shape[1]) if self.dropout > 0 else None
        out, cache = self.model.forward_cached(xb, self.W, self.B, masks)
        value, grad_out = loss_and_grad(out, yb, self.task, self.config.loss, scale=1.0 / yb.shape[1],
                                        beta=self.beta)
        grad_x = self.model.backward(cache, grad_out, self.W, self.gW, self.gB, accumulate=accumulate,
                                     input_grad=input_grad, masks=masks)
        return value.sum(1), out, grad_x

    def _dropout_masks(self, rows: int) -> list[torch.Tensor]:
        """This step's dropout masks ``[K, rows, width]`` per hidden layer (each lane from its generator)."""
        per_lane = [dropout_masks(g, self.M, rows, self.widths, self.dropout) for g in self.mask_gens]
        if len(per_lane) == 1:
            return per_lane[0]
        return [torch.cat(layer) for layer in zip(*per_lane)]

    def _loss_and_grads(self, xb: torch.Tensor, yb: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Per-trajectory summed loss ``[K]`` (clean, plus adversarial with FGSM) and the clean outputs."""
        if self.eps is None:
            loss, out, _ = self._grad_pass(xb, yb, accumulate=False, input_grad=False)
            return loss, out
        clean, out, grad_x = self._grad_pass(xb, yb, accumulate=False, input_grad=True)
        x_adv = fgsm(xb, grad_x, self.eps)  # type: ignore[arg-type]
        adv, _, _ = self._grad_pass(x_adv, yb, accumulate=True, input_grad=False)
        return clean + adv, out

    def _step_lrs(self, first: int, count: int) -> list[float] | list[tuple[float, ...]]:
        """The learning rates of steps ``first .. first+count-1``: a float per step, or a tuple (one per lane)."""
        per_lane = []
        for sched in self.schedules:
            if sched.per_epoch and sched.unit(first) == sched.unit(first + count - 1):
                per_lane.append([sched(first)] * count)
            else:
                per_lane.append([sched(first + i) for i in range(count)])
        if self.L == 1:
            return per_lane[0]
        rows = list(zip(*per_lane))
        return [r[0] if len(set(r)) == 1 else r for r in rows]  # type: ignore[return-value]

    def _record_lrs(self, lrs: list, taken: int) -> None:
        """Append the learning rates of the first ``taken`` of ``lrs`` to each lane's trace."""
        if self.L == 1:
            self.lr_traces[0].extend(lrs[:taken])
            return
        for lane, trace in enumerate(self.lr_traces):
            trace.extend(lr if isinstance(lr, float) else lr[lane] for lr in lrs[:taken])

    #: Steps whose batches and learning rates are prepared at once (bounds the work before a stop check).
    CHUNK = 256

    def run_epoch(self, epoch: int) -> bool:
        """Train one epoch; returns False when ``should_stop`` ended it early."""
        orders = [st.next_epoch() for st in self.lane_streams]
        order = (orders[0] if self.L == 1 else torch.cat(orders)).to(self.device)
        x_epoch, y_epoch = self.x[order], self.y[order]  # [K, n, d], [K, n]: one gather per epoch
        grad, opt, stop, batch = self.grad, self.opt, self.should_stop, self.batch
        loss_sum = torch.zeros(self.K, device=self.device)
        correct = torch.zeros(self.K, device=self.device) if self.task == "classification" else None
        snap_set = self.snap_steps if self.snapshot else ()
        for c0 in range(0, self.spe, self.CHUNK):  # in chunks: a 50,000-step epoch starts at once
            c1 = min(c0 + self.CHUNK, self.spe)
            rows = slice(c0 * batch, min(c1 * batch, self.n_train))
            xs, ys = x_epoch[:, rows].split(batch, dim=1), y_epoch[:, rows].split(batch, dim=1)
            lrs = self._step_lrs(self.step, c1 - c0)
            for i, lr in enumerate(lrs):
                if stop is not None and stop():
                    self._record_lrs(lrs, i)
                    return False
                xb, yb = xs[i], ys[i]
                loss, out = self._loss_and_grads(xb, yb)
                if self.masked or not math.isfinite((loss.sum() + grad.sum()).item()):
                    self._masked_step(loss, lr)
                else:
                    opt.step(lr)
                loss_sum.add_(loss)
                if correct is not None:
                    correct.add_((out.argmax(-1) == yb).sum(1))
                self.step += 1
                if self.step in snap_set:
                    self.take_snapshot(epoch)
            self._record_lrs(lrs, len(lrs))
        self.loss_sum, self.correct = loss_sum, correct
        return True

    def _masked_step(self, loss: torch.Tensor, lr: float | tuple[float, ...]) -> None:
        """Optimiser step that freezes every trajectory whose loss or gradient is not finite.

        The gradient and the update of a frozen trajectory are masked out with
        ``torch.where`` (multiplying by 0 would keep NaN: NaN * 0 = NaN), so its
        weights stay as they were before the bad step.
        """
        self.masked = True
        flat, grad = self.flat, self.grad
        grad_sum = torch.zeros_like(loss).index_add_(0, self.member_of, grad)
        ok = torch.isfinite(loss + grad_sum)
        newly_bad = self.healthy & ~ok
        self.bad_loss = torch.where(newly_bad, loss, self.bad_loss)
        self.healthy = self.healthy & ok
        mask = self.healthy[self.member_of]
        grad.copy_(torch.where(mask, grad, 0.0))
        before = flat.clone()
        self.opt.step(lr)
        flat.copy_(torch.where(mask, flat, before))

    def current_rows(self) -> torch.Tensor:
        """A copy of the current weights as ``[K, P]`` rows (``StackedMLP.flat_parameters`` layout)."""
        return torch.cat([v.reshape(self.K, -1) for v in self.views], dim=1)

    def take_snapshot(self, epoch: int) -> None:
        healthy = self.healthy.tolist()
        self.snaps.append((self.current_rows(), healthy, epoch, self.step))
        self.last_snap_step = self.step
        s = len(self.snaps) - 1
        for k in range(self.K):
            if healthy[k] and not self.lane_done[self.lane(k)]:
                self.emit(self.lane(k), SnapshotTaken(trajectory=k % self.M, snapshot=s, epoch=epoch,
                                                      step=self.step))

    # ----------------------------------------------------------- epoch end
    def sync_divergence(self, epoch: int) -> None:
        """Read the divergence flags once; emit :class:`MemberDiverged` for newly frozen trajectories."""
        rows = self.current_rows()
        weights_ok = torch.isfinite(rows).all(1)
        # Finite weights can still predict inf (e.g. SGD at lr 10): check the outputs on held-out
        # inputs (or the first training rows) so such a member is flagged instead of poisoning the
        # ensemble's metrics.
        outputs_ok = self._outputs_finite(torch.where(weights_ok[:, None], rows, torch.zeros_like(rows)))
        before = self.healthy.clone()
        self.healthy &= weights_ok & outputs_ok
        if bool((before & ~self.healthy).any()):
            self.masked = True  # from now on every step freezes the flagged trajectories
        healthy, bad, w_ok, o_ok = torch.stack(
            [self.healthy.float(), self.bad_loss, weights_ok.float(), outputs_ok.float()]).cpu().tolist()
        for k in range(self.K):
            if self.healthy_host[k] and not healthy[k]:
                what = ("the loss became NaN" if math.isnan(bad[k]) else
                        "the loss became infinite" if math.isinf(bad[k]) else
                        "the weights became non-finite" if not w_ok[k] else
                        "its predictions became non-finite" if not o_ok[k] else
                        "the gradients became non-finite")
                self._flag_diverged(k, epoch, f"{what} at epoch {epoch} (learning rate too high?)")

    def _flag_diverged(self, k: int, epoch: int, reason: str) -> None:
        """Record trajectory ``k`` as diverged at ``epoch`` (left out of the ensemble) and tell the listener."""
        self.healthy_host[k] = False
        self.diverged_reason[k] = reason
        self.diverged_epoch[k] = epoch
        if not self.lane_done[self.lane(k)]:
            self.emit(self.lane(k), MemberDiverged(trajectory=k % self.M, epoch=epoch, reason=reason))

    def _outputs_finite(self, rows: torch.Tensor) -> torch.Tensor:
        """Per trajectory: are the predicted means/variances (or logits) all finite?

        On the validation inputs, the outputs are kept for this epoch's validation metrics
        (:meth:`_val_outputs`): one forward pass of every trajectory serves both.
        """
        use_val = self.x_val is not None and len(self.x_val) > 0
        x = self.x_val if use_val else self.x[:256]
        with torch.no_grad():
            out = self.model.forward_flat(x, rows)
            self._val_out = (self.step, out) if use_val else None
            ok = torch.isfinite(out).flatten(1).all(1)
            if self.task == "regression" and self.n_out == 2:
                var = to_variance(out[..., 1].double(), self.config.loss.variance)
                ok &= (torch.isfinite(var) & (var > 0)).flatten(1).all(1)
        return ok

    def lane_alive(self, lane: int) -> bool:
        """Whether ``lane`` still has a healthy trajectory (its own run would still be training)."""
        return any(self.healthy_host[k] for k in self.lane_range(lane))

    def track_best(self, epoch: int) -> None:
        """``optim.keep_best``: keep each healthy trajectory's weights when its validation score improved."""
        rows = self.current_rows()
        score = member_val_scores(self.model.forward_flat(self.x_val, rows), self.y_val, self.task,  # type: ignore[arg-type]
                                  self.config.loss.kind, self.config.loss.variance)
        if self.best_rows is None:
            self.best_rows, self.best_score = rows.clone(), torch.full_like(score, math.inf)
            self.best_epoch = [epoch] * self.K
        better = self.healthy & (score < self.best_score)
        self.best_rows = torch.where(better[:, None], rows, self.best_rows)
        self.best_score = torch.where(better, score, self.best_score)  # type: ignore[arg-type]
        for k, up in enumerate(better.tolist()):
            if up:
                self.best_epoch[k] = epoch

    def end_epoch(self, epoch: int) -> None:
        """Synchronise once: divergence, epoch losses/accuracy, validation metrics, events (per lane)."""
        self.sync_divergence(epoch)
        if self.keep_best:
            self.track_best(epoch)
        parts = [self.loss_sum / self.n_train]
        if self.correct is not None:
            parts.append(self.correct / self.n_train)
        host = torch.stack(parts).cpu().tolist()
        self.epochs_done = epoch
        elapsed = time.perf_counter() - self.t0
        n_epochs = self.config.optim.epochs
        for lane in range(self.L):
            if self.lane_done[lane]:
                continue
            ks = self.lane_range(lane)
            train_loss = [host[0][k] if self.healthy_host[k] else float("nan") for k in ks]
            train_acc = None
            if self.correct is not None:
                train_acc = [host[1][k] if self.healthy_host[k] else float("nan") for k in ks]
            val = self.val_metrics(lane)
            lrs = self.lr_traces[lane][(epoch - 1) * self.spe: epoch * self.spe]
            self.emit(lane, EpochEnd(epoch=epoch, n_epochs=n_epochs, train_loss=train_loss, train_acc=train_acc,
                                     val=val, lrs=lrs, elapsed=elapsed))

    # ------------------------------------------------------ member selection
    def available(self, lane: int = 0) -> torch.Tensor | None:
        """Flat weights ``[A, P]`` of ``lane``'s healthy members so far (snapshots + current weights)."""
        rows = []
        ks = self.lane_range(lane)
        for flat, healthy, _, _ in self.snaps:
            rows += [flat[k] for k in ks if healthy[k]]
        if not self.snapshot or self.step > self.last_snap_step:
            cur = self.current_rows()
            rows += [cur[k] for k in ks if self.healthy_host[k]]
        return torch.stack(rows) if rows else None

    def _outputs(self, x: torch.Tensor, flat: torch.Tensor) -> np.ndarray:
        return self.model.forward_flat(x, flat).to("cpu", torch.float64).numpy()

    def _prediction(self, out: np.ndarray) -> RegressionPrediction | ClassificationPrediction:
        if self.task == "classification":
            z = out - out.max(axis=-1, keepdims=True)
            p = np.exp(z)
            return combine_classification(p / p.sum(axis=-1, keepdims=True))
        mean = self.data.unscale_mean(out[..., 0])
        if self.n_out == 1:
            var = np.zeros_like(mean)
        else:
            raw = torch.from_numpy(out[..., 1])
            var = self.data.unscale_var(to_variance(raw, self.config.loss.variance).numpy())
        return combine_regression(mean, var)

    def _val_outputs(self, lane: int) -> np.ndarray | None:
        """Validation outputs of :meth:`available` (``lane``'s members, in that order), float64 ``[A, n, out]``.

        The current weights' outputs come from this epoch's divergence check (all lanes in one
        forward pass); each snapshot's are computed once, when first needed (its weights are
        fixed).  Without them (no check since the last step), the members are run here.
        """
        cached = self._val_out
        if cached is None or cached[0] != self.step:
            flat = self.available(lane)
            return None if flat is None else self._outputs(self.x_val, flat)  # type: ignore[arg-type]
        ks = self.lane_range(lane)
        parts = []
        for s, (flat, healthy, _, _) in enumerate(self.snaps):
            picked = [k for k in ks if healthy[k]]
            if picked:
                parts.append(self._snapshot_val_outputs(s, flat)[picked])
        if not self.snapshot or self.step > self.last_snap_step:
            picked = [k for k in ks if self.healthy_host[k]]
            if picked:
                parts.append(cached[1][picked])
        if not parts:
            return None
        return torch.cat(parts).to("cpu", torch.float64).numpy()

    def _snapshot_val_outputs(self, s: int, flat: torch.Tensor) -> torch.Tensor:
        """Validation outputs ``[K, n, out]`` of snapshot ``s`` (``flat``: its weights), computed once."""
        memo = self._snap_val_out
        if s not in memo:
            memo[s] = self.model.forward_flat(self.x_val, flat)  # type: ignore[arg-type]
        return memo[s]

    def val_metrics(self, lane: int = 0) -> dict[str, float]:
        if self.x_val is None:
            return {}
        out = self._val_outputs(lane)
        if out is None:
            return {}
        pred = self._prediction(out)
        y = np.asarray(self.data.y_val)
        if isinstance(pred, ClassificationPrediction):
            return {"nll": metrics.categorical_nll(y, pred.probs), "accuracy": metrics.accuracy(y, pred.probs)}
        # MSE members have no aleatoric variance: floor the spread so the NLL stays finite
        floor = VAR_FLOOR * self.data.y_std**2
        return {"nll": metrics.gaussian_nll(y, pred.mean, np.maximum(pred.total, floor)),
                "rmse": metrics.rmse(y, pred.mean)}

    def preview(self, epoch: int) -> None:
        if self.preview_x is None:
            return
        for lane in range(self.L):
            flat = self.available(lane)
            if flat is not None and not self.lane_done[lane]:
                self.emit(lane, Preview(epoch=epoch, prediction=self._prediction(self._preview_outputs(flat, lane))))

    def _preview_outputs(self, flat: torch.Tensor, lane: int) -> np.ndarray:
        """Outputs on the preview grid; MC dropout: its T stochastic passes as members (as predicted)."""
        if self.dropout == 0:
            return self._outputs(self.preview_x, flat)
        strat, seed = self.configs[lane].strategy, self.configs[lane].seed
        w, b = self.model.unflatten(flat)
        out = mc_forward(self.model, w, b, self.preview_x, strat.passes, strat.dropout,
                         dropout_seed(seed, predict=True))
        return out.reshape(-1, out.shape[2], out.shape[3]).numpy()

    # ------------------------------------------------------------ the result
    #: A regression member whose final predicted means miss the training targets' range by this
    #: factor is excluded as diverged although its numbers are finite (a huge predicted variance
    #: can keep such a member's NLL moderate).  Judged on the weights that enter the ensemble
    #: only, on the training inputs: cyclic schedules spike far beyond it at each restart and
    #: recover by the cycle's end, and extrapolation is not judged.  The cases that set it are in
    #: ``docs/decisions.md``.
    RUNAWAY_FACTOR = 100.0

    def runaway(self, rows: torch.Tensor) -> list[float | None]:
        """Per row of ``rows`` (``[A, P]``): the largest ``|mean|`` on the training inputs, in target
        standard deviations, when it exceeds :attr:`RUNAWAY_FACTOR` x the targets' range, else ``None``."""
        if self.task != "regression" or not len(rows):
            return [None] * len(rows)
        x = self.x[:1024]
        mean = self.model.forward_flat(x, rows.to(self.flat.device))[..., 0].float()
        peak = torch.nan_to_num(mean, nan=0.0, posinf=0.0, neginf=0.0).abs().flatten(1).amax(1).cpu().tolist()
        bound = self.RUNAWAY_FACTOR * (1.0 + float(self.y.abs().max()))
        return [p if p > bound else None for p in peak]

    def build_run(self, stopped: bool, lane: int = 0) -> Run:
        """The :class:`Run` of ``lane`` (its config, members, history and learning-rate trace)."""
        data, M, config = self.data, self.M, self.configs[lane]
        ks = self.lane_range(lane)
        cur_epoch = -(-self.step // self.spe)
        infos: list[MemberInfo] = []
        rows: list[torch.Tensor] = []

        if self.snapshot and self.snaps:
            for k in ks:
                for s, (flat, healthy, epoch, _) in enumerate(self.snaps):
                    st, why = ("ok", "") if healthy[k] else ("diverged", self.diverged_reason.get(
                        k, "non-finite values before this snapshot"))
                    infos.append(MemberInfo(index=len(infos), trajectory=k % M, snapshot=s, seed=self.seeds[k],
                                            epoch=epoch, status=st, reason=why))  # type: ignore[arg-type]
                    rows.append(flat[k])
        else:
            # optim.keep_best: each member's best-validation weights and their epoch
            best = self.keep_best and self.best_rows is not None
            cur = self.best_rows if best else self.current_rows()
            for k in ks:
                st, why = ("ok", "") if self.healthy_host[k] else ("diverged", self.diverged_reason[k])
                infos.append(MemberInfo(index=k % M, trajectory=k % M, snapshot=0, seed=self.seeds[k],
                                        epoch=self.best_epoch[k] if best else cur_epoch, status=st,
                                        reason=why))  # type: ignore[arg-type]
                rows.append(cur[k])
        stacked = torch.stack(rows)
        for i, peak in enumerate(self.runaway(stacked)):
            info = infos[i]
            if peak is None or info.status != "ok":
                continue
            why = (f"its predictions ran away (up to {peak:.2g} standard deviations of the targets from their "
                   f"mean) by epoch {info.epoch} (learning rate too high?)")
            infos[i] = dataclasses.replace(info, status="diverged", reason=why)
            if self.snapshot:
                self.emit(lane, MemberDiverged(trajectory=info.trajectory, epoch=info.epoch,
                                               reason=f"snapshot {info.snapshot + 1}: {why}"))
            else:
                self._flag_diverged(lane * M + info.trajectory, info.epoch, why)
        model = StackedMLP.from_flat(stacked.cpu(), data.n_features, self.n_out, config.model)
        model.eval()
        return Run(config=config, task=self.task, model=model, members=infos, history=self.histories[lane],
                   lr_trace=np.asarray(self.lr_traces[lane], dtype=np.float64), epochs_done=self.epochs_done,
                   stopped=stopped, seconds=time.perf_counter() - self.t0,
                   x_mean=np.asarray(data.x_mean, dtype=np.float64),
                   x_std=np.asarray(data.x_std, dtype=np.float64), y_mean=float(data.y_mean),
                   y_std=float(data.y_std), n_classes=data.n_classes if self.task == "classification" else 0,
                   feature_names=list(data.feature_names), target_name=data.target_name,
                   class_names=list(data.class_names) if data.class_names else None)

    def lane_error(self, run: Run, lane: int) -> str | None:
        """The :class:`TrainingError` message of ``lane`` when every one of its members diverged, else None."""
        if run.healthy:
            return None
        diverged = {k % self.M: r for k, r in self.diverged_reason.items() if self.lane(k) == lane}
        reasons = "; ".join(f"member {k}: {r}" for k, r in sorted(diverged.items())) or "; ".join(
            f"snapshot {m.snapshot + 1} of trajectory {m.trajectory}: {m.reason}" for m in run.members)
        return (f"all {self.M} members diverged ({reasons}); "
                "lower the learning rate and train again")


#: Variance floor (standardised units) used for the validation NLL of MSE ensembles.
VAR_FLOOR = 1e-6


@dataclasses.dataclass
class LaneResult:
    """One lane of :func:`train_lanes`: its run, or why it failed (every member diverged)."""

    run: Run | None
    error: str | None


def train_lanes(
    configs: list[RunConfig],
    data: Dataset,
    on_event: Callable[[int, Event], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
    *,
    preview_x: np.ndarray | None = None,
    preview_every: int = 0,
    preview_min_s: float = 0.0,
    init_hook: InitHook | None = None,
) -> list[LaneResult]:
    """Train several runs (lanes) that differ only in per-trajectory settings as ONE batched program.

    ``configs`` must agree in everything but what :func:`lane_key` leaves out
    (learning rate and ``lr_min``, weight decay, seed, adversarial eps, beta-NLL
    beta); :mod:`ensemble_core.sweep` groups trials so.  Lane ``i``'s result is
    what ``train(configs[i], data, ...)`` returns, to float round-off: the same
    member inits and data orders (its own seeds), its own learning rates,
    events (``on_event(i, event)``, ``Run.history``), learning-rate trace and
    divergence handling.  A lane whose members all diverge stops reporting
    events and gets ``error`` (the message ``train`` would raise) instead of a
    run; the others go on.  ``should_stop`` ends every lane at the same step.
    ``Run.seconds`` is the whole batched program's time.

    Raises:
        TrainingError: the data does not fit the configs, or the configs cannot share a program.
    """
    if not configs:
        raise TrainingError("train_lanes needs at least one config")
    keys = {lane_key(c) for c in configs}
    if len(keys) != 1:
        raise TrainingError("these configs differ in more than the per-trajectory settings "
                            "(learning rate, weight decay, seed, adversarial eps, beta) and cannot train as one program")
    for c in configs:
        check_inputs(c, data)
    engine = _Engine(list(configs), data, on_event, should_stop, preview_x, preview_every, init_hook)
    n_epochs = configs[0].optim.epochs
    stopped = False
    previewed_at, previewed_t = 0, -math.inf
    for epoch in range(1, n_epochs + 1):
        if not engine.run_epoch(epoch):
            stopped = True
            engine.sync_divergence(epoch)  # a trajectory may have diverged in this partial epoch
            break
        engine.end_epoch(epoch)
        if engine.preview_every > 0 and (epoch == n_epochs or (
                epoch % engine.preview_every == 0 and time.perf_counter() - previewed_t >= preview_min_s)):
            engine.preview(epoch)
            previewed_at, previewed_t = epoch, time.perf_counter()
        for lane in range(engine.L):  # a lane whose members all diverged ends here, as its own run would
            if not engine.lane_done[lane] and not engine.lane_alive(lane):
                engine.lane_done[lane] = True
        if all(engine.lane_done):
            break
    if engine.preview_every > 0 and engine.preview_x is not None and previewed_at != engine.epochs_done \
            and engine.step > 0:
        engine.preview(engine.epochs_done)
    results = []
    seconds = time.perf_counter() - engine.t0
    for lane in range(engine.L):
        run = engine.build_run(stopped, lane)
        error = engine.lane_error(run, lane)
        if error is not None:
            results.append(LaneResult(run=None, error=error))
            continue
        done = Done(epochs_done=engine.epochs_done, stopped=stopped, seconds=seconds)
        engine.emit(lane, done)
        run.seconds = done.seconds
        results.append(LaneResult(run=run, error=None))
    return results


def lane_key(config: RunConfig) -> RunConfig:
    """``config`` with the per-trajectory settings set to fixed values: configs with equal keys can be lanes of
    one batched program (:func:`train_lanes`)."""
    return config.replace(**{"optim.lr": 1.0, "optim.lr_min": 0.0, "optim.weight_decay": 0.0, "seed": 0,
                             "strategy.adversarial_eps": 0.01, "loss.beta": 0.5})


def train(
    config: RunConfig,
    data: Dataset,
    on_event: Callable[[Event], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
    *,
    preview_x: np.ndarray | None = None,
    preview_every: int = 0,
    preview_min_s: float = 0.0,
    init_hook: InitHook | None = None,
) -> Run:
    """Train every member of ``config``'s ensemble on ``data`` in one batched program.

    All trajectories live in one :class:`~ensemble_core.models.StackedMLP`
    trained with one optimiser on the *sum* of the member losses, so gradients
    never mix; each trajectory keeps its own init seed, data order (or
    bootstrap resample) and optimiser state, exactly as
    :func:`ensemble_core.reference.train_reference` trains them one by one.
    The learning rate of step ``i`` is ``schedules.lr_schedule(config, n)[i]``, computed as the
    step comes (:class:`~ensemble_core.schedules.LrSchedule`), so memory and the time to the
    first stop check do not grow with the number of steps.

    ``on_event`` receives each :data:`Event`; ``should_stop`` is polled between
    batches and, when it returns True, training ends and the members trained so
    far form a valid, smaller :class:`Run` (``stopped=True``): the current
    weights, or for snapshot ensembles the snapshots taken so far (the
    current weights if none yet).  With ``preview_x`` (raw units) and
    ``preview_every > 0`` a :class:`Preview` event is emitted every
    ``preview_every`` epochs, but not within ``preview_min_s`` seconds of the
    previous one, and after the last epoch.

    A trajectory whose loss, gradient or weights become non-finite is frozen
    (its updates are masked out), reported by a :class:`MemberDiverged` event
    and marked ``"diverged"`` in :attr:`Run.members`; the others go on.

    Args:
        config: the run.
        data: the data set (original units; standardised here with its
            training statistics).
        on_event: called with every event, in order (also kept in ``Run.history``).
        should_stop: polled before every optimiser step.
        preview_x: inputs ``[N, d]`` in original units for live previews.
        preview_every: epochs between previews (0 = none).
        preview_min_s: least seconds between two previews (the last epoch's is
            always emitted): a live view refreshing every second shows at most
            one of them, and each costs a prediction on ``preview_x``.
        init_hook: for tests and experiments: called with the freshly
            initialised stack (on CPU) before training, e.g. to poison a member.

    Returns:
        The :class:`Run`, with its model on CPU in eval mode.

    Raises:
        TrainingError: the data does not fit the config (see :func:`check_inputs`)
            or every member diverged (raised after the divergence events).
    """
    lane_event = None if on_event is None else (lambda _lane, event: on_event(event))
    result = train_lanes([config], data, lane_event, should_stop, preview_x=preview_x,
                         preview_every=preview_every, preview_min_s=preview_min_s, init_hook=init_hook)[0]
    if result.run is None:
        raise TrainingError(result.error or "training failed")
    return result.run
