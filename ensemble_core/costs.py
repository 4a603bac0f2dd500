"""What a run will cost before it runs: optimiser steps, CPU-seconds and peak memory.

The job pool refuses runs that would hog a shared server (:func:`ensemble_core.jobs.check_limits`);
it needs the cost of a run from its config and the shape of its data alone, on
every Train-page rerun, so this module is pure Python arithmetic (no torch, no
Streamlit).

* **Steps** (per trajectory; all trajectories step together in one batched
  program): ``epochs * ceil(n_train / batch)`` with the batch capped at the rows;
  a snapshot run's epochs are already the total over its cycles; bootstrap
  members resample ``n_train`` rows, so they step alike.
* **CPU-seconds** (one torch thread, as a pool worker trains):
  ``steps * step_cost + epochs * epoch_cost + run_cost``, where one step costs a
  fixed overhead (Python and torch dispatch, per layer), plus the arithmetic of
  the batched forward and hand-written backward pass (``members x batch x``
  multiply-adds of the layers, doubled by adversarial training), plus the fused
  optimiser update over every parameter; an epoch adds the data gather and the
  validation forward passes.  MC dropout adds each step's mask draws (a random
  number per hidden unit and row, applied forward and backward); its validation
  during training is one deterministic pass, and its ``T`` passes at prediction
  run after training in bounded chunks (:mod:`ensemble_core.predict`).  The constants were fitted on this project's
  machine by ``python benchmarks/bench_limits.py --calibrate`` (see
  :data:`CALIBRATION`).
* **Peak memory** (bytes of the worker process): the process itself (Python,
  torch), the dataset and its tensors, each epoch's gathered copy of the
  rows per member, the parameters with their gradients, optimiser state and
  copies, the activations of one step at its batch size (every layer's
  pre-activation and output kept for the backward pass, plus its gradients),
  the validation and preview forward passes, the snapshots kept and the
  per-step learning-rate history.
"""

from __future__ import annotations

from dataclasses import dataclass

from .config import RunConfig
from .shapes import layer_sizes, output_size, parameter_count

__all__ = ["CALIBRATION", "RunCost", "DataShape", "estimate", "shape_of", "fmt_count", "fmt_bytes"]

#: Per-cost constants (seconds), fitted by ``python benchmarks/bench_limits.py --calibrate`` on the
#: project's 2-core Linux machine (torch 2.13 CPU, one torch thread), 2026-12-06: 12 shapes, every
#: fitted time within 0.59x-1.36x of the measured one (the machine was shared while it ran).
CALIBRATION: dict[str, float] = {
    "step": 2.84e-4,  # s per optimiser step, fixed (Python, the loop, the finite check, the fused update call)
    "layer": 6.1e-5,  # s per linear layer per pass (forward + backward dispatch)
    "flop": 1.5e-11,  # s per floating-point operation of the batched matrix products
    "act": 1.05e-8,  # s per activation element of a pass (elementwise, memory-bound work, fresh pages)
    "param": 0.0,  # s per parameter element per step (the fused optimiser update; the fit found it hidden)
    "epoch": 3.72e-5,  # s per epoch, fixed (synchronisation, metrics, the event)
    "row": 1.5e-8,  # s per gathered element per epoch (each member's copy of the rows)
    "run": 0.0,  # s per run (building the members, the result)
}

#: Resident bytes of a worker process before it trains (Python, torch, the engine imported); fitted
#: by the same calibration (peak RSS of a tiny run).
PROCESS_BYTES = 325e6
#: Bytes per float of the tensors the engine trains on (float32).
F32 = 4
#: Bytes the learning-rate history keeps per step taken (a Python float in ``lr_trace`` and a
#: reference in the epoch's event).
HISTORY_BYTES_PER_STEP = 40
#: Bytes of one epoch's event, beyond its learning rates, per trajectory (losses, metrics).
EVENT_BYTES_PER_MEMBER = 100
#: Largest live-preview grid the dashboard asks for (50 x 50 for 2-D classification).
PREVIEW_POINTS = 2500


@dataclass(frozen=True)
class DataShape:
    """The size of a data set, all a cost estimate needs to know of it.

    Attributes:
        n_train: training rows.
        n_val: validation rows.
        n_features: input columns.
        n_outputs: outputs per member (:func:`ensemble_core.shapes.output_size`).
        n_test: test rows (only the memory of the data set itself).
    """

    n_train: int
    n_val: int
    n_features: int
    n_outputs: int
    n_test: int = 0


def shape_of(config: RunConfig, dataset: object) -> DataShape:
    """The :class:`DataShape` of ``dataset`` (a :class:`~ensemble_core.data.Dataset`) for ``config``.

    Data the engine cannot train (one class, an unknown task) is sized as the
    smallest valid run; ``train`` refuses it with the real reason.
    """
    task = "classification" if getattr(dataset, "task", None) == "classification" else "regression"
    n_classes = max(int(getattr(dataset, "n_classes", 0) or 0), 2)
    return DataShape(n_train=len(dataset.x_train), n_val=len(dataset.x_val),  # type: ignore[attr-defined]
                     n_features=int(dataset.n_features),  # type: ignore[attr-defined]
                     n_outputs=output_size(task, config.loss, n_classes),
                     n_test=len(getattr(dataset, "x_test", ())))


def fmt_count(x: float) -> str:
    """``6250000`` -> ``"6.25 M"``, ``1250`` -> ``"1,250"``."""
    if x >= 1e9:
        return f"{x / 1e9:.3g} G"
    if x >= 1e6:
        return f"{x / 1e6:.3g} M"
    return f"{x:,.0f}"


def fmt_bytes(x: float) -> str:
    """Bytes in MB or GB (decimal), e.g. ``"5.1 GB"``."""
    return f"{x / 1e9:.3g} GB" if x >= 1e9 else f"{x / 1e6:.0f} MB"


@dataclass(frozen=True)
class RunCost:
    """What a run costs, estimated from its config and data shape (see the module docs).

    Attributes:
        steps: optimiser steps of the run (per trajectory; all trajectories step together).
        steps_per_epoch: ``ceil(n_train / batch)``.
        batch: the batch size used (capped at the rows).
        epochs: epochs of the run.
        members: trajectories trained side by side.
        parameters: parameters of one member.
        cpu_seconds: estimated CPU time of the training (one torch thread).
        step_seconds: estimated CPU time of one optimiser step.
        peak_bytes: estimated peak resident memory of the worker process (all parts below).
        process_bytes: the worker process before it trains.
        data_bytes: the data set and its tensors.
        epoch_data_bytes: each epoch's per-member copy of the training rows.
        parameter_bytes: parameters, gradients, optimiser state and working copies.
        activation_bytes: one training step's activations and their gradients.
        eval_bytes: the validation / preview forward passes.
        snapshot_bytes: snapshots kept and the result's copy of the members.
        history_bytes: the learning-rate and event history.
        rows: training rows; ``n_val``: validation rows.
        adversarial: whether each step makes a second, adversarial pass.
    """

    steps: int
    steps_per_epoch: int
    batch: int
    epochs: int
    members: int
    parameters: int
    cpu_seconds: float
    step_seconds: float
    peak_bytes: float
    process_bytes: float
    data_bytes: float
    epoch_data_bytes: float
    parameter_bytes: float
    activation_bytes: float
    eval_bytes: float
    snapshot_bytes: float
    history_bytes: float
    rows: int
    n_val: int
    adversarial: bool

    @property
    def run_bytes(self) -> float:
        """Peak memory the run adds to the worker process."""
        return self.peak_bytes - self.process_bytes

    def explain_steps(self) -> str:
        """The steps in words: ``"batch 8 on 10,000 rows is 1,250 steps per epoch; 5,000 epochs is 6.25 M steps"``."""
        return (f"batch {self.batch:,} on {self.rows:,} rows is {self.steps_per_epoch:,} step"
                f"{'s' if self.steps_per_epoch != 1 else ''} per epoch; {self.epochs:,} epoch"
                f"{'s' if self.epochs != 1 else ''} is {fmt_count(self.steps)} steps")

    def explain_cpu(self) -> str:
        """The CPU estimate in words."""
        m = f"{self.members} member{'s' if self.members != 1 else ''}"
        adv = " with adversarial training" if self.adversarial else ""
        return (f"{fmt_count(self.steps)} steps of {m} × {self.parameters:,} parameters at batch {self.batch:,}"
                f"{adv} take about {self.step_seconds * 1e3:.2g} ms each: about {self.cpu_seconds:,.0f} CPU-seconds")

    def explain_memory(self) -> str:
        """The memory estimate in words, its largest parts first."""
        parts = sorted([("activations of a step at batch " + f"{self.batch:,}", self.activation_bytes),
                        ("each member's copy of the rows", self.epoch_data_bytes),
                        ("parameters and optimiser state", self.parameter_bytes),
                        ("validation and preview passes", self.eval_bytes),
                        ("snapshots and the result", self.snapshot_bytes),
                        ("the data", self.data_bytes),
                        ("the learning-rate history", self.history_bytes)], key=lambda p: -p[1])
        top = ", ".join(f"{name} {fmt_bytes(b)}" for name, b in parts[:3])
        return f"about {fmt_bytes(self.peak_bytes)} of memory at its peak ({top})"

    def explain(self) -> str:
        """Every estimate in one sentence each."""
        return f"{self.explain_steps()}. {self.explain_cpu()}. It needs {self.explain_memory()}."


def step_terms(config: RunConfig, shape: DataShape) -> dict[str, float]:
    """What one optimiser step does, per constant of :data:`CALIBRATION` (the step's cost is their dot product)."""
    o, s, model = config.optim, config.strategy, config.model
    n, d, out = max(int(shape.n_train), 1), int(shape.n_features), int(shape.n_outputs)
    batch = max(1, min(int(o.batch_size), n))
    layers = layer_sizes(d, out, model)
    macs = sum(fi * fo for fi, fo in layers)
    units = model.width * model.hidden_layers
    P = parameter_count(d, out, model)
    K, passes = int(s.members), 2 if s.adversarial else 1
    # MC dropout: each step draws a mask per hidden unit and row and applies it forward and backward
    masks = 3 * units if s.kind == "mc_dropout" else 0
    return {"step": 1.0, "layer": float(passes * len(layers)), "flop": float(passes * K * batch * 6 * macs),
            "act": float(passes * K * batch * (units + out + d + masks)), "param": float(K * P)}


def cpu_terms(config: RunConfig, shape: DataShape) -> dict[str, float]:
    """What the whole run does, per constant of :data:`CALIBRATION` (its CPU-seconds are their dot product).

    Per step: :func:`step_terms`.  Per epoch: a fixed part, the gather of each
    member's rows (``row``), and the forward passes of the validation metrics
    (every member kept, on the validation rows) and of the finite check (each
    trajectory on the validation rows, or 256 training rows).  Per run: a fixed part.
    """
    o, s, model = config.optim, config.strategy, config.model
    n, d, out = max(int(shape.n_train), 1), int(shape.n_features), int(shape.n_outputs)
    n_val = max(int(shape.n_val), 0)
    spe = -(-n // max(1, min(int(o.batch_size), n)))
    epochs, K = int(o.epochs), int(s.members)
    steps = epochs * spe
    macs = sum(fi * fo for fi, fo in layer_sizes(d, out, model))
    units = model.width * model.hidden_layers
    ensemble = K * (s.snapshots if s.kind == "snapshot" else 1)
    eval_rows = ensemble * n_val + K * (n_val or min(n, 256))
    terms = {k: steps * v for k, v in step_terms(config, shape).items()}
    terms["flop"] += epochs * eval_rows * 2 * macs
    terms["act"] += epochs * eval_rows * (units + out + d)
    terms["param"] += epochs * 2 * K * parameter_count(d, out, model)
    terms["epoch"] = float(epochs)
    terms["row"] = float(epochs * K * n * (d + 2))
    terms["run"] = 1.0
    return terms


def estimate(config: RunConfig, shape: DataShape) -> RunCost:
    """Estimate the steps, CPU-seconds and peak memory of training ``config`` on data of ``shape``.

    Args:
        config: the run.
        shape: the data's size (:func:`shape_of` for a data set).

    Returns:
        The :class:`RunCost`.
    """
    c = CALIBRATION
    o, s, model = config.optim, config.strategy, config.model
    n, d = max(int(shape.n_train), 1), int(shape.n_features)
    n_val, out = max(int(shape.n_val), 0), int(shape.n_outputs)
    batch = max(1, min(int(o.batch_size), n))
    spe = -(-n // batch)
    epochs, K = int(o.epochs), int(s.members)
    steps = epochs * spe
    units = model.width * model.hidden_layers
    P = parameter_count(d, out, model)
    snapshots = s.snapshots if s.kind == "snapshot" else 1
    ensemble = K * snapshots

    terms = cpu_terms(config, shape)
    cpu = sum(c[k] * v for k, v in terms.items())
    step_s = sum(c[k] * v for k, v in step_terms(config, shape).items())

    # ---- memory
    rows_all = n + n_val + int(shape.n_test)
    data_b = rows_all * (d + 1) * 8 + n * (d + 1) * (F32 + 8) + n_val * d * F32
    epoch_data_b = K * n * (d * F32 + F32 + 8)  # x[order], y[order], the order itself
    opt_state = 2 if o.optimizer == "adam" else 1
    param_b = K * P * F32 * (3 + opt_state + 1)  # flat, grad, 2 copies of the rows, the state, a masked step's copy
    widest = max([model.width] * (model.hidden_layers > 0) + [out])
    act_rows = 2 * units + 2 * widest + 4 * out + 2 * d  # kept per hidden layer (z, out), gradients, loss terms
    if s.kind == "mc_dropout":  # the step's dropout masks and the masked copies of the hidden outputs
        act_rows += 2 * units
    activation_b = K * batch * F32 * act_rows
    eval_n = max(n_val, min(n, 1024), PREVIEW_POINTS)
    eval_b = ensemble * eval_n * F32 * 2 * widest + ensemble * eval_n * out * 8 * 3
    snapshot_b = (ensemble * P * F32 if s.kind == "snapshot" else 0) + 3 * ensemble * P * F32
    history_b = steps * HISTORY_BYTES_PER_STEP + epochs * (EVENT_BYTES_PER_MEMBER * K + 600)
    peak = (PROCESS_BYTES + data_b + epoch_data_b + param_b + max(activation_b, eval_b) + snapshot_b + history_b)
    return RunCost(steps=steps, steps_per_epoch=spe, batch=batch, epochs=epochs, members=K, parameters=P,
                   cpu_seconds=float(cpu), step_seconds=float(step_s), peak_bytes=float(peak),
                   process_bytes=float(PROCESS_BYTES), data_bytes=float(data_b),
                   epoch_data_bytes=float(epoch_data_b), parameter_bytes=float(param_b),
                   activation_bytes=float(activation_b), eval_bytes=float(eval_b),
                   snapshot_bytes=float(snapshot_b), history_bytes=float(history_b), rows=n, n_val=n_val,
                   adversarial=bool(s.adversarial))

