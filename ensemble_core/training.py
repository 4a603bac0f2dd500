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
from .models import StackedMLP
from .predict import (
    ClassificationPrediction,
    RegressionPrediction,
    combine_classification,
    combine_regression,
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


class _Engine:
    """State of one vectorised training run (see :func:`train`)."""

    def __init__(self, config: RunConfig, data: Dataset, on_event: Callable[[Event], None] | None,
                 should_stop: Callable[[], bool] | None, preview_x: np.ndarray | None, preview_every: int,
                 init_hook: InitHook | None) -> None:
        self.t0 = time.perf_counter()
        self.config, self.data = config, data
        self.on_event, self.should_stop = on_event, should_stop
        self.history: list[Event] = []
        self.task = data.task
        self.device = resolve_device(config.device)
        o, strat = config.optim, config.strategy
        self.n_train = len(data.x_train)
        self.K = strat.members
        self.snapshot = strat.kind == "snapshot"
        self.n_out = output_size(self.task, config.loss, data.n_classes)
        self.batch = effective_batch_size(o.batch_size, self.n_train)
        self.spe = steps_per_epoch(o.batch_size, self.n_train)
        self.bounds = [(s, min(s + self.batch, self.n_train)) for s in range(0, self.n_train, self.batch)]
        # the learning rate of each step is computed as the step comes (never a list of every step
        # up front: a 10^8-step run must start, and stop, at once); lr_trace holds the steps taken
        self.schedule = LrSchedule(config, self.n_train)
        self.lr_trace: list[float] = []
        self.snap_steps = snapshot_steps(config, self.n_train)
        self.streams = DataStreams(config, self.n_train)
        self.seeds = self.streams.seeds
        dev = self.device

        x_std = data.scale_x(data.x_train)
        self.x = torch.as_tensor(x_std, dtype=torch.float32, device=dev)
        if self.task == "classification":
            self.y = torch.as_tensor(data.y_train, dtype=torch.int64, device=dev)
        else:
            self.y = torch.as_tensor(data.scale_y(data.y_train), dtype=torch.float32, device=dev)
        self.x_val = torch.as_tensor(data.scale_x(data.x_val), dtype=torch.float32, device=dev) \
            if len(data.x_val) else None
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
            self.eps = torch.as_tensor(fgsm_eps(x_std, strat.adversarial_eps), dtype=torch.float32, device=dev)

        model = StackedMLP.from_seeds(self.seeds, data.n_features, self.n_out, config.model)
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
        self.flat = torch.nn.Parameter(torch.cat([t.detach().reshape(-1) for t in stacked]).to(dev))
        self.flat.grad = torch.zeros_like(self.flat)
        self.views: list[torch.Tensor] = []
        grads: list[torch.Tensor] = []
        member_of = []
        offset = 0
        for t in stacked:
            n = t.numel()
            self.views.append(self.flat.detach()[offset:offset + n].view(t.shape))
            grads.append(self.flat.grad[offset:offset + n].view(t.shape))
            member_of.append(torch.arange(self.K).repeat_interleave(n // self.K))
            offset += n
        self.W, self.B = self.views[0::2], self.views[1::2]
        self.gW, self.gB = grads[0::2], grads[1::2]
        self.member_of = torch.cat(member_of).to(dev)
        fused = {"fused": True} if self.device.type in ("cpu", "cuda") else {}
        if o.optimizer == "adam":
            self.opt: torch.optim.Optimizer = torch.optim.Adam(
                [self.flat], lr=o.lr, weight_decay=o.weight_decay, **fused)
        else:
            self.opt = torch.optim.SGD([self.flat], lr=o.lr, momentum=o.momentum, weight_decay=o.weight_decay,
                                       **fused)
        # On CPU one cheap host check per step decides whether any trajectory needs masking;
        # on CUDA the masks are always applied (no host synchronisation per step).
        self.masked = self.device.type != "cpu"
        self.group = self.opt.param_groups[0]

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

    # ----------------------------------------------------------------- events
    def emit(self, event: Event) -> None:
        self.history.append(event)
        if self.on_event is not None:
            self.on_event(event)

    # ------------------------------------------------------------- one step
    def _grad_pass(self, xb: torch.Tensor, yb: torch.Tensor, accumulate: bool,
                   input_grad: bool) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        """Forward + hand-written backward of the batch-mean loss of every trajectory.

        Writes (or adds) the gradients into the flat gradient buffer.  Returns the
        per-trajectory mean loss ``[K]``, the outputs and, if asked, ``d loss / d x``.
        """
        out, cache = self.model.forward_cached(xb, self.W, self.B)
        value, grad_out = loss_and_grad(out, yb, self.task, self.config.loss, scale=1.0 / yb.shape[1])
        grad_x = self.model.backward(cache, grad_out, self.W, self.gW, self.gB, accumulate=accumulate,
                                     input_grad=input_grad)
        return value.mean(1), out, grad_x

    def _loss_and_grads(self, xb: torch.Tensor, yb: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Per-trajectory loss ``[K]`` (clean, plus adversarial with FGSM) and the clean outputs."""
        if self.eps is None:
            loss, out, _ = self._grad_pass(xb, yb, accumulate=False, input_grad=False)
            return loss, out
        clean, out, grad_x = self._grad_pass(xb, yb, accumulate=False, input_grad=True)
        x_adv = fgsm(xb, grad_x, self.eps)  # type: ignore[arg-type]
        adv, _, _ = self._grad_pass(x_adv, yb, accumulate=True, input_grad=False)
        return clean + adv, out

    def run_epoch(self, epoch: int) -> bool:
        """Train one epoch; returns False when ``should_stop`` ended it early."""
        order = self.streams.next_epoch().to(self.device)
        x_epoch, y_epoch = self.x[order], self.y[order]  # [K, n, d], [K, n]: one gather per epoch
        flat, opt, group = self.flat, self.opt, self.group
        grad = flat.grad
        loss_sum = torch.zeros(self.K, device=self.device)
        correct = torch.zeros(self.K, device=self.device) if self.task == "classification" else None
        snap_set = self.snap_steps
        for s, e in self.bounds:
            if self.should_stop is not None and self.should_stop():
                return False
            lr = self.schedule(self.step)
            self.lr_trace.append(lr)
            if group["lr"] != lr:
                group["lr"] = lr
            xb, yb = x_epoch[:, s:e], y_epoch[:, s:e]
            loss, out = self._loss_and_grads(xb, yb)
            if self.masked or not bool(torch.isfinite(loss.sum() + grad.sum())):
                self._masked_step(loss)
            else:
                opt.step()
            loss_sum.add_(loss, alpha=e - s)
            if correct is not None:
                correct.add_((out.argmax(-1) == yb).sum(1))
            self.step += 1
            if self.snapshot and self.step in snap_set:
                self.take_snapshot(epoch)
        self.loss_sum, self.correct = loss_sum, correct
        return True

    def _masked_step(self, loss: torch.Tensor) -> None:
        """Optimiser step that freezes every trajectory whose loss or gradient is not finite.

        The gradient and the update of a frozen trajectory are masked out with
        ``torch.where`` (multiplying by 0 would keep NaN: NaN * 0 = NaN), so its
        weights stay as they were before the bad step.
        """
        self.masked = True
        flat, grad = self.flat, self.flat.grad
        grad_sum = torch.zeros_like(loss).index_add_(0, self.member_of, grad)
        ok = torch.isfinite(loss + grad_sum)
        newly_bad = self.healthy & ~ok
        self.bad_loss = torch.where(newly_bad, loss, self.bad_loss)
        self.healthy = self.healthy & ok
        mask = self.healthy[self.member_of]
        grad.copy_(torch.where(mask, grad, 0.0))
        before = flat.detach().clone()
        self.opt.step()
        with torch.no_grad():
            flat.copy_(torch.where(mask, flat, before))

    def current_rows(self) -> torch.Tensor:
        """A copy of the current weights as ``[K, P]`` rows (``StackedMLP.flat_parameters`` layout)."""
        with torch.no_grad():
            return torch.cat([v.reshape(self.K, -1) for v in self.views], dim=1)

    def take_snapshot(self, epoch: int) -> None:
        healthy = self.healthy.tolist()
        self.snaps.append((self.current_rows(), healthy, epoch, self.step))
        self.last_snap_step = self.step
        s = len(self.snaps) - 1
        for k in range(self.K):
            if healthy[k]:
                self.emit(SnapshotTaken(trajectory=k, snapshot=s, epoch=epoch, step=self.step))

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
        self.emit(MemberDiverged(trajectory=k, epoch=epoch, reason=reason))

    def _outputs_finite(self, rows: torch.Tensor) -> torch.Tensor:
        """Per trajectory: are the predicted means/variances (or logits) all finite?"""
        x = self.x_val if self.x_val is not None and len(self.x_val) else self.x[:256]
        with torch.no_grad():
            w, b = self.model.unflatten(rows)
            out = self.model.forward_with(x, w, b)
            ok = torch.isfinite(out).flatten(1).all(1)
            if self.task == "regression" and self.n_out == 2:
                var = to_variance(out[..., 1].double(), self.config.loss.variance)
                ok &= (torch.isfinite(var) & (var > 0)).flatten(1).all(1)
        return ok

    def end_epoch(self, epoch: int) -> None:
        """Synchronise once: divergence, epoch losses/accuracy, validation metrics, events."""
        self.sync_divergence(epoch)
        parts = [self.loss_sum / self.n_train]
        if self.correct is not None:
            parts.append(self.correct / self.n_train)
        host = torch.stack(parts).cpu().tolist()
        mean_loss = host[0]
        train_loss = [v if self.healthy_host[k] else float("nan") for k, v in enumerate(mean_loss)]
        train_acc = None
        if self.correct is not None:
            train_acc = [v if self.healthy_host[k] else float("nan") for k, v in enumerate(host[1])]
        self.epochs_done = epoch
        val = self.val_metrics()
        lrs = self.lr_trace[(epoch - 1) * self.spe: epoch * self.spe]
        self.emit(EpochEnd(epoch=epoch, n_epochs=self.config.optim.epochs, train_loss=train_loss,
                           train_acc=train_acc, val=val, lrs=lrs, elapsed=time.perf_counter() - self.t0))

    # ------------------------------------------------------ member selection
    def available(self) -> torch.Tensor | None:
        """Flat weights ``[A, P]`` of the healthy members so far (snapshots + current weights)."""
        rows = []
        for flat, healthy, _, _ in self.snaps:
            rows += [flat[k] for k in range(self.K) if healthy[k]]
        if not self.snapshot or self.step > self.last_snap_step:
            cur = self.current_rows()
            rows += [cur[k] for k in range(self.K) if self.healthy_host[k]]
        return torch.stack(rows) if rows else None

    def _outputs(self, x: torch.Tensor, flat: torch.Tensor) -> np.ndarray:
        with torch.no_grad():
            w, b = self.model.unflatten(flat)
            return self.model.forward_with(x, w, b).to("cpu", torch.float64).numpy()

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

    def val_metrics(self) -> dict[str, float]:
        if self.x_val is None:
            return {}
        flat = self.available()
        if flat is None:
            return {}
        pred = self._prediction(self._outputs(self.x_val, flat))
        y = np.asarray(self.data.y_val)
        if isinstance(pred, ClassificationPrediction):
            return {"nll": metrics.categorical_nll(y, pred.probs), "accuracy": metrics.accuracy(y, pred.probs)}
        # MSE members have no aleatoric variance: floor the spread so the NLL stays finite
        floor = VAR_FLOOR * self.data.y_std**2
        return {"nll": metrics.gaussian_nll(y, pred.mean, np.maximum(pred.total, floor)),
                "rmse": metrics.rmse(y, pred.mean)}

    def preview(self, epoch: int) -> None:
        flat = self.available()
        if self.preview_x is not None and flat is not None:
            self.emit(Preview(epoch=epoch, prediction=self._prediction(self._outputs(self.preview_x, flat))))

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
        with torch.no_grad():
            w, b = self.model.unflatten(rows.to(self.flat.device))
            mean = self.model.forward_with(x, w, b)[..., 0].float()
            peak = torch.nan_to_num(mean, nan=0.0, posinf=0.0, neginf=0.0).abs().flatten(1).amax(1).cpu().tolist()
        bound = self.RUNAWAY_FACTOR * (1.0 + float(self.y.abs().max()))
        return [p if p > bound else None for p in peak]

    def build_run(self, stopped: bool) -> Run:
        data, K = self.data, self.K
        cur_epoch = -(-self.step // self.spe)
        infos: list[MemberInfo] = []
        rows: list[torch.Tensor] = []

        if self.snapshot and self.snaps:
            for k in range(K):
                for s, (flat, healthy, epoch, _) in enumerate(self.snaps):
                    st, why = ("ok", "") if healthy[k] else ("diverged", self.diverged_reason.get(
                        k, "non-finite values before this snapshot"))
                    infos.append(MemberInfo(index=len(infos), trajectory=k, snapshot=s, seed=self.seeds[k],
                                            epoch=epoch, status=st, reason=why))  # type: ignore[arg-type]
                    rows.append(flat[k])
        else:
            cur = self.current_rows()
            for k in range(K):
                st, why = ("ok", "") if self.healthy_host[k] else ("diverged", self.diverged_reason[k])
                infos.append(MemberInfo(index=k, trajectory=k, snapshot=0, seed=self.seeds[k], epoch=cur_epoch,
                                        status=st, reason=why))  # type: ignore[arg-type]
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
                self.emit(MemberDiverged(trajectory=info.trajectory, epoch=info.epoch,
                                         reason=f"snapshot {info.snapshot + 1}: {why}"))
            else:
                self._flag_diverged(info.trajectory, info.epoch, why)
        model = StackedMLP.from_flat(stacked.cpu(), data.n_features, self.n_out, self.config.model)
        model.eval()
        return Run(config=self.config, task=self.task, model=model, members=infos, history=self.history,
                   lr_trace=np.asarray(self.lr_trace, dtype=np.float64), epochs_done=self.epochs_done, stopped=stopped,
                   seconds=time.perf_counter() - self.t0, x_mean=np.asarray(data.x_mean, dtype=np.float64),
                   x_std=np.asarray(data.x_std, dtype=np.float64), y_mean=float(data.y_mean),
                   y_std=float(data.y_std), n_classes=data.n_classes if self.task == "classification" else 0,
                   feature_names=list(data.feature_names), target_name=data.target_name,
                   class_names=list(data.class_names) if data.class_names else None)


#: Variance floor (standardised units) used for the validation NLL of MSE ensembles.
VAR_FLOOR = 1e-6


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
    check_inputs(config, data)
    engine = _Engine(config, data, on_event, should_stop, preview_x, preview_every, init_hook)
    n_epochs = config.optim.epochs
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
        if not any(engine.healthy_host):
            break
    if engine.preview_every > 0 and engine.preview_x is not None and previewed_at != engine.epochs_done \
            and engine.step > 0:
        engine.preview(engine.epochs_done)
    run = engine.build_run(stopped)
    if not run.healthy:
        reasons = "; ".join(f"member {k}: {r}" for k, r in sorted(engine.diverged_reason.items())) or "; ".join(
            f"snapshot {m.snapshot + 1} of trajectory {m.trajectory}: {m.reason}" for m in run.members)
        raise TrainingError(f"all {config.strategy.members} members diverged ({reasons}); "
                            "lower the learning rate and train again")
    done = Done(epochs_done=engine.epochs_done, stopped=stopped, seconds=time.perf_counter() - engine.t0)
    engine.emit(done)
    run.seconds = done.seconds
    return run
