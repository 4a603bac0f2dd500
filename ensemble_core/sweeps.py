"""Hyperparameter sweeps as jobs: what to sweep, what it costs, and a runner over the job pool.

A :class:`SweepSpec` is a base :class:`~ensemble_core.config.RunConfig`, 1-3
settings (dotted paths, ``"optim.lr"``) and either a **grid** (every
combination of each setting's values) or **random** trials (``n_random`` draws
from each setting's :class:`ParamRange`, log-uniform where asked, from the
spec's own seed, so the same spec gives the same trials).  Each trial's config
is ``base.replace(**params)``, so a bad path or value is a
:class:`~ensemble_core.config.ConfigError` naming it.

:func:`plan` checks a sweep before it starts: every trial passes the pool's
limits (:func:`ensemble_core.jobs.check_limits`), there are at most
:data:`MAX_TRIALS` trials, and their estimated CPU-seconds together stay under
``max_cpu_seconds`` (:data:`MAX_SWEEP_CPU_S` by default) -- a
:class:`~ensemble_core.jobs.LimitError` names the trial or the total.

:func:`plan` also groups the trials into *programs* (:attr:`SweepPlan.programs`):
trials that differ only in settings the engine carries per trajectory (learning
rate, weight decay, seed, adversarial eps, beta; :func:`ensemble_core.sweep.plan_sweep`)
train as ONE stacked program, cut so that each program's whole cost passes the
limits.

:class:`SweepRun` trains each program as one job of a :class:`~ensemble_core.jobs.JobPool`
(a batched one as a group job, :meth:`~ensemble_core.jobs.JobPool.submit_group`)
under the owner's quota: at most ``parallel`` programs queued-or-running at
once (each under its own owner ``"<user>:sweep<k>"``), the next submitted as
one ends, so the pool's fair queue decides when each trains -- on worker
processes or on Ray actors spread over a cluster.  :meth:`SweepRun.stop` ends
the whole sweep: running trials stop (their partial runs are kept as
``stopped``), trials not started are ``skipped``.  Finished trials are scored
on the test and validation splits (:func:`score`) and ranked by the spec's
metric (:meth:`SweepRun.ranked`).

:func:`run_sweep_local` is the command line's runner: its own pool (process
or Ray executor, unlimited like ``train``), every trial submitted at once.

Never imports Streamlit.
"""

from __future__ import annotations

import dataclasses
import itertools
import logging
import math
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from .config import ConfigError, RunConfig
from .data import Dataset

log = logging.getLogger(__name__)

__all__ = ["METRICS", "MAX_TRIALS", "MAX_SWEEP_CPU_S", "MAX_SETTINGS", "ParamRange", "SweepSpec", "SweepPlan",
           "TrialState", "SweepRun", "metric_key", "higher_is_better", "parse_values", "parse_range", "plan",
           "score", "run_sweep_local", "spread", "trial_json", "val_curve"]

#: Metrics a sweep ranks by: ``<split>_<name>``; ``ece`` is the calibration error (for regression
#: the miscalibration area of :mod:`ensemble_core.metrics`).
METRICS: tuple[str, ...] = ("test_nll", "val_nll", "test_rmse", "val_rmse", "test_accuracy", "val_accuracy",
                            "test_ece", "val_ece")
#: Most settings one sweep varies.
MAX_SETTINGS = 3
#: Most trials in one sweep.
MAX_TRIALS = 48
#: Most estimated CPU-seconds of all trials together (a classroom sweep; the CLI passes ``inf``).
MAX_SWEEP_CPU_S = 600.0

TrialStatus = Literal["pending", "queued", "running", "done", "stopped", "failed", "skipped"]


def higher_is_better(metric: str) -> bool:
    """Whether a larger ``metric`` is better (accuracy); NLL, RMSE and ECE are better small."""
    return metric.endswith("accuracy")


def metric_key(metric: str, task: str) -> tuple[str, str]:
    """``(split, name in ensemble_core.metrics)`` of a sweep metric for ``task``.

    Raises:
        ConfigError: an unknown metric, or one the task does not have (RMSE of a classifier,
            accuracy of a regression).
    """
    if metric not in METRICS:
        raise ConfigError(f"metric: {metric!r} is not one of {', '.join(METRICS)}")
    split, name = metric.split("_", 1)
    if name == "rmse" and task != "regression":
        raise ConfigError(f"metric: {metric} is for regression; this data is {task} (rank by accuracy or NLL)")
    if name == "accuracy" and task != "classification":
        raise ConfigError(f"metric: {metric} is for classification; this data is {task} (rank by RMSE or NLL)")
    if name == "ece" and task == "regression":
        name = "miscalibration_area"
    return split, name


@dataclass(frozen=True)
class ParamRange:
    """A random sweep's range of one setting: ``lo..hi``, log-uniform when ``log``, whole numbers when ``integer``."""

    lo: float
    hi: float
    log: bool = False
    integer: bool = False

    def __post_init__(self) -> None:
        if not (math.isfinite(self.lo) and math.isfinite(self.hi)) or self.lo > self.hi:
            raise ConfigError(f"range: expected lo <= hi, finite, got {self.lo:g}:{self.hi:g}")
        if self.log and self.lo <= 0:
            raise ConfigError(f"range: a log range needs lo > 0, got {self.lo:g}")

    def draw(self, rng: np.random.Generator) -> float | int:
        """One value from ``rng``."""
        if self.log:
            value = float(math.exp(rng.uniform(math.log(self.lo), math.log(self.hi))))
        else:
            value = float(rng.uniform(self.lo, self.hi))
        return int(round(value)) if self.integer else float(f"{value:.4g}")


def _default_type(base: RunConfig, path: str) -> Any:
    flat = base.to_query(only_changed=False)
    if path not in flat:
        raise ConfigError(f"{path}: no such setting (use a dotted path such as optim.lr or strategy.members)")
    if path.startswith("data."):
        raise ConfigError(f"{path}: data settings cannot be swept here; sweep training settings "
                          "(optim.*, model.*, strategy.*, loss.*, seed)")
    return type(_get(base, path))


def _get(cfg: RunConfig, path: str) -> Any:
    obj: Any = cfg
    for part in path.split("."):
        obj = getattr(obj, part)
    return obj


def parse_values(base: RunConfig, path: str, text: str | Sequence[Any]) -> tuple[Any, ...]:
    """A grid's values of ``path`` from ``"0.001,0.01"`` (or a list), typed and checked against ``base``.

    Raises:
        ConfigError: an unknown path, a value that does not parse or is invalid (named).
    """
    kind = _default_type(base, path)
    raw = [t.strip() for t in text.split(",")] if isinstance(text, str) else list(text)
    raw = [r for r in raw if r != ""]
    if not raw:
        raise ConfigError(f"{path}: give at least one value")
    values: list[Any] = []
    flat = base.to_query(only_changed=False)
    for r in raw:
        try:
            cfg = RunConfig.from_query({**flat, path: str(r)}, strict=True)
        except ConfigError as exc:
            raise ConfigError(f"{path}: {r!r} is not valid ({_why(exc)})") from None
        value = _get(cfg, path)
        if kind is float and not math.isfinite(value):
            raise ConfigError(f"{path}: {r!r} is not a finite number")
        if value not in values:
            values.append(value)
    return tuple(values)


def _why(exc: Exception) -> str:
    return str(exc).split(": ", 1)[-1]


def parse_range(base: RunConfig, path: str, text: str) -> ParamRange:
    """A random sweep's range of ``path`` from ``"1e-4:1e-1"`` or ``"1e-4:1e-1:log"``.

    Raises:
        ConfigError: an unknown or non-numeric setting, or a range that does not parse.
    """
    kind = _default_type(base, path)
    if kind not in (int, float):
        raise ConfigError(f"{path}: only number settings take a range; give its values as a grid instead")
    parts = [p.strip() for p in text.split(":")]
    if len(parts) not in (2, 3) or (len(parts) == 3 and parts[2] not in ("log", "lin")):
        raise ConfigError(f"{path}: a range is LO:HI or LO:HI:log, got {text!r}")
    try:
        lo, hi = float(parts[0]), float(parts[1])
    except ValueError:
        raise ConfigError(f"{path}: a range is LO:HI or LO:HI:log with numbers, got {text!r}") from None
    return ParamRange(lo, hi, log=len(parts) == 3 and parts[2] == "log", integer=kind is int)


@dataclass(frozen=True)
class SweepSpec:
    """What a sweep trains.

    Attributes:
        base: the config every trial starts from.
        grid: ``(path, values)`` of each grid setting (every combination is a trial).
        ranges: ``(path, ParamRange)`` of each random setting.
        n_random: random trials (with ``ranges``; grid settings then take a random value each).
        metric: what :meth:`SweepRun.ranked` sorts by (:data:`METRICS`).
        seed: the random trials' seed.
    """

    base: RunConfig
    grid: tuple[tuple[str, tuple[Any, ...]], ...] = ()
    ranges: tuple[tuple[str, ParamRange], ...] = ()
    n_random: int = 0
    metric: str = "test_nll"
    seed: int = 0

    def __post_init__(self) -> None:
        paths = [p for p, _ in self.grid] + [p for p, _ in self.ranges]
        if not paths:
            raise ConfigError("sweep: choose at least one setting to sweep")
        if len(paths) > MAX_SETTINGS:
            raise ConfigError(f"sweep: at most {MAX_SETTINGS} settings at once, got {len(paths)}")
        if len(set(paths)) != len(paths):
            raise ConfigError("sweep: a setting appears twice")
        if self.metric not in METRICS:
            raise ConfigError(f"metric: {self.metric!r} is not one of {', '.join(METRICS)}")
        if self.ranges and self.n_random < 1:
            raise ConfigError("sweep: ranges need a number of random trials (n_random >= 1)")
        if self.n_random < 0 or self.n_random > MAX_TRIALS:
            raise ConfigError(f"sweep: n_random must be 1..{MAX_TRIALS}, got {self.n_random}")

    @property
    def paths(self) -> tuple[str, ...]:
        """The swept settings, grid first."""
        return tuple(p for p, _ in self.grid) + tuple(p for p, _ in self.ranges)

    @property
    def mode(self) -> Literal["grid", "random"]:
        """``"random"`` when ``n_random`` is set, else ``"grid"``."""
        return "random" if self.n_random else "grid"

    def trials(self) -> list[dict[str, Any]]:
        """Each trial's settings, in order (grid: row-major over the settings as given)."""
        if self.mode == "grid":
            names = [p for p, _ in self.grid]
            return [dict(zip(names, combo, strict=True)) for combo in itertools.product(*(v for _, v in self.grid))]
        rng = np.random.default_rng(self.seed)
        out = []
        for _ in range(self.n_random):
            params: dict[str, Any] = {p: vals[int(rng.integers(len(vals)))] for p, vals in self.grid}
            params.update({p: r.draw(rng) for p, r in self.ranges})
            out.append(params)
        return out

    def configs(self) -> list[RunConfig]:
        """Each trial's config (raises :class:`ConfigError` naming the trial and the field)."""
        out = []
        for i, params in enumerate(self.trials()):
            try:
                out.append(self.base.replace(**params))
            except ConfigError as exc:
                shown = ", ".join(f"{k}={v}" for k, v in params.items())
                raise ConfigError(f"trial {i + 1} ({shown}): {exc}") from None
        return out

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready description (base config, grid, ranges, trials count, metric, seed)."""
        return {"base": self.base.to_dict(), "grid": {p: list(v) for p, v in self.grid},
                "ranges": {p: [r.lo, r.hi, "log" if r.log else "lin"] for p, r in self.ranges},
                "n_random": self.n_random, "metric": self.metric, "seed": self.seed}


@dataclass(frozen=True)
class SweepPlan:
    """A checked sweep: its trials, their configs and costs, and its programs (:func:`plan`).

    Attributes:
        spec: the sweep.
        params: each trial's settings.
        configs: each trial's config.
        cpu_seconds: each trial's estimated CPU-seconds as a run of its own.
        programs: the trial indices of each program, in order: trials that differ only in
            per-trajectory settings train as ONE batched program (one pool job,
            :meth:`~ensemble_core.jobs.JobPool.submit_group`), split so that each program's
            stacked cost passes the limits :func:`plan` was given; every other trial is a
            program of its own.  Empty (a plan made by hand): one program per trial.
    """

    spec: SweepSpec
    params: tuple[dict[str, Any], ...]
    configs: tuple[RunConfig, ...]
    cpu_seconds: tuple[float, ...]
    programs: tuple[tuple[int, ...], ...] = ()

    @property
    def total_cpu_seconds(self) -> float:
        """Estimated CPU-seconds of every trial together (as separate runs: an upper bound)."""
        return float(sum(self.cpu_seconds))

    @property
    def program_list(self) -> tuple[tuple[int, ...], ...]:
        """:attr:`programs`, or one program per trial when it is empty."""
        return self.programs or tuple((i,) for i in range(len(self.configs)))

    @property
    def n_programs(self) -> int:
        """How many programs (pool jobs) the sweep trains as."""
        return len(self.program_list)

    @property
    def n_batched(self) -> int:
        """How many trials train in a program together with other trials."""
        return sum(len(p) for p in self.program_list if len(p) > 1)

    def program_of(self, trial: int) -> int:
        """The index in :attr:`program_list` of the program that trains ``trial``."""
        return next(k for k, p in enumerate(self.program_list) if trial in p)


def _programs(spec: SweepSpec, params: list[dict[str, Any]], data: Dataset, limits: Any) -> tuple[tuple[int, ...], ...]:
    """Group the trials into programs (:func:`ensemble_core.sweep.plan_sweep`), each within ``limits``.

    A group whose stacked cost (:func:`ensemble_core.sweep.stacked_config`) fails
    :func:`ensemble_core.jobs.check_limits` is cut into the fewest even parts that pass
    (one trial always passes: :func:`plan` checked each first).
    """
    from .sweep import plan_sweep

    out: list[tuple[int, ...]] = []
    for group in plan_sweep(spec.base, params).groups:
        out.extend(_cut(group.trials, group.configs, data, limits))
    return tuple(out)


def _cut(trials: tuple[int, ...], configs: Sequence[RunConfig], data: Dataset,
         limits: Any) -> list[tuple[int, ...]]:
    """``trials`` (one program's, ``configs`` theirs) in the fewest even parts whose stacked cost passes ``limits``."""
    from .jobs import LimitError, check_limits
    from .sweep import SweepGroup, stacked_config

    n = len(trials)
    size = 1
    for parts in range(1, n + 1):
        size = math.ceil(n / parts)
        if size == 1:
            break
        try:
            check_limits(stacked_config(SweepGroup(tuple(trials[:size]), tuple(configs[:size]))), data, limits)
            break
        except LimitError:
            continue
    parts = math.ceil(n / size)
    return [tuple(trials[k * n // parts:(k + 1) * n // parts]) for k in range(parts)]


def spread(programs: Sequence[tuple[int, ...]], slots: int) -> list[tuple[int, ...]]:
    """``programs`` cut into at least ``slots`` programs where they hold enough trials (order kept).

    A batched program trains on one worker; with ``slots`` workers free for the sweep (the pool's
    training slots, a Ray cluster's CPUs) the largest program is halved until there are ``slots``
    programs or every program is one trial.  Each trial still trains exactly once, with the same
    result (a lane equals its run alone).
    """
    out = [tuple(p) for p in programs]
    while len(out) < slots:
        k = max(range(len(out)), key=lambda i: len(out[i]), default=None)
        if k is None or len(out[k]) < 2:
            break
        p = out[k]
        out[k:k + 1] = [p[:len(p) // 2], p[len(p) // 2:]]
    return out


def plan(spec: SweepSpec, data: Dataset, limits: Any = None, *, max_trials: int = MAX_TRIALS,
         max_cpu_seconds: float = MAX_SWEEP_CPU_S) -> SweepPlan:
    """Check a sweep before it starts: valid trials, each within ``limits``, the total within budget;
    group the trials into batched programs that fit ``limits`` (:attr:`SweepPlan.programs`).

    Args:
        spec: the sweep.
        data: the data it trains on.
        limits: per-run :class:`~ensemble_core.jobs.Limits` (``None``: the defaults).
        max_trials: most trials.
        max_cpu_seconds: most estimated CPU-seconds of all trials together.

    Raises:
        ConfigError: a trial's settings are invalid, or the metric does not fit the data's task.
        LimitError: too many trials, a trial over a limit, or the sweep over its CPU budget.
    """
    from .jobs import LimitError, check_limits

    metric_key(spec.metric, data.task)
    params = spec.trials()
    if len(params) > max_trials:
        raise LimitError(f"This sweep has {len(params)} trials; at most {max_trials} are allowed. "
                         "Use fewer values or settings.")
    configs = spec.configs()
    costs = []
    for i, (p, cfg) in enumerate(zip(params, configs, strict=True)):
        try:
            costs.append(check_limits(cfg, data, limits).cpu_seconds)
        except LimitError as exc:
            shown = ", ".join(f"{k}={v}" for k, v in p.items())
            raise LimitError(f"Trial {i + 1} ({shown}): {exc}") from None
    total = float(sum(costs))
    if total > max_cpu_seconds:
        raise LimitError(f"This sweep would take about {total:,.0f} CPU-seconds ({len(params)} trials), over the "
                         f"limit of {max_cpu_seconds:,.0f}. Use fewer trials, epochs or members.")
    return SweepPlan(spec, tuple(params), tuple(configs), tuple(costs), _programs(spec, params, data, limits))


def score(run: Any, data: Dataset) -> dict[str, float]:
    """A finished trial's metrics: ``test_*`` and ``val_*`` of :func:`ensemble_core.predict.evaluate_run`.

    Keys follow :data:`METRICS` (``*_ece`` is the miscalibration area for regression); a split that
    is empty is left out.
    """
    from .predict import evaluate_run

    out: dict[str, float] = {}
    if run is None or not getattr(run, "healthy", None):
        return out
    for split, x, y in (("test", data.x_test, data.y_test), ("val", data.x_val, data.y_val)):
        if len(y) == 0:
            continue
        for name, value in evaluate_run(run, x, y).items():
            key = "ece" if name == "miscalibration_area" else name
            if f"{split}_{key}" in METRICS:
                out[f"{split}_{key}"] = float(value)
    return out


def val_curve(events: Sequence[Any]) -> list[tuple[int, float]]:
    """``(epoch, validation NLL)`` of every epoch event that has one (a trial's small multiple)."""
    out = []
    for e in events:
        if getattr(e, "kind", None) == "epoch" and "nll" in getattr(e, "val", {}):
            value = float(e.val["nll"])
            if math.isfinite(value):
                out.append((int(e.epoch), value))
    return out


@dataclass
class TrialState:
    """One trial of a running or finished sweep (read from any thread).

    Attributes:
        index: 0-based trial number.
        params: its settings.
        config: its config.
        status: ``pending`` (not submitted), ``queued``, ``running``, ``done``, ``stopped``,
            ``failed`` or ``skipped`` (the sweep was stopped first).
        metrics: :func:`score` once done or stopped.
        seconds: its training seconds.
        error: why it failed.
        job: the pool job training it: a :class:`~ensemble_core.jobs.Job`, or for a trial trained
            in a batched program its lane of the group job (:class:`~ensemble_core.jobs.LaneJob`,
            Job-like; ``job.group`` is the program's job).
        run: its run once done or stopped.
        program: the index of its program (pool job) in :attr:`SweepRun.programs`.
        batched: whether it trains in one program with other trials.
    """

    index: int
    params: dict[str, Any]
    config: RunConfig
    status: TrialStatus = "pending"
    metrics: dict[str, float] = field(default_factory=dict)
    seconds: float | None = None
    error: str | None = None
    job: Any = None
    run: Any = None
    program: int = 0
    batched: bool = False

    def curve(self) -> list[tuple[int, float]]:
        """The validation-NLL curve so far (:func:`val_curve` of its job's or run's events)."""
        if self.job is not None:
            return val_curve(self.job.events)
        return val_curve(self.run.history) if self.run is not None else []

    def row(self, metric: str) -> dict[str, Any]:
        """A JSON-ready row: params, status, the metrics, seconds."""
        return {"trial": self.index + 1, "params": dict(self.params), "status": self.status,
                **{k: v for k, v in self.metrics.items()}, "seconds": self.seconds, "error": self.error}


class SweepRun:
    """A sweep training through a :class:`~ensemble_core.jobs.JobPool` (see the module docstring).

    Args:
        sweep: the checked sweep (:func:`plan`).
        data: the data every trial trains on.
        pool: the job pool.
        user: the user whose quota the trials use; trial ``k`` slot's owner is ``"<user>:sweep<k>"``.
        parallel: most programs (pool jobs) queued-or-running at once (the user's quota left for
            the sweep).
        on_change: called (from a pool thread) whenever a trial changes state.
        executor: ``"process"``, ``"ray"`` or ``None`` (the pool's default) for every job of the sweep.

    Each program of :attr:`SweepPlan.program_list` is one pool job: a batched program's trials
    train as one group job (:meth:`~ensemble_core.jobs.JobPool.submit_group`), a single trial
    as an ordinary job.  A pool that cannot train group jobs (``supports_groups`` false: a
    test's injected ``train_fn``) gets one job per trial.
    """

    def __init__(self, sweep: SweepPlan, data: Dataset, pool: Any, user: str, *, parallel: int = 1,
                 on_change: Callable[[SweepRun], None] | None = None, executor: str | None = None) -> None:
        self.plan = sweep
        self.data = data
        self.pool = pool
        self.user = user
        self.parallel = max(1, int(parallel))
        self.on_change = on_change
        self.executor = executor
        grouped = bool(getattr(pool, "supports_groups", False))
        programs: list[tuple[int, ...]] = []
        for program in sweep.program_list if grouped else tuple((i,) for i in range(len(sweep.configs))):
            if len(program) > 1 and getattr(pool, "limits", None) is not None:  # planned with other limits
                programs.extend(_cut(program, [sweep.configs[i] for i in program], data, pool.limits))
            else:
                programs.append(program)
        if grouped:  # a batched program trains on one worker: cut it so the sweep can use every free slot
            programs = spread(programs, min(self.parallel, int(getattr(pool, "max_running", 1) or 1)))
        #: the trial indices of each pool job this sweep submits (its plan's programs, cut to the pool's
        #: limits, and into as many programs as it may train at once where there are fewer)
        self.programs: tuple[tuple[int, ...], ...] = tuple(programs)
        self.trials = [TrialState(i, dict(p), c) for i, (p, c) in enumerate(zip(sweep.params, sweep.configs,
                                                                                   strict=True))]
        for k, program in enumerate(self.programs):
            for i in program:
                self.trials[i].program, self.trials[i].batched = k, len(program) > 1
        self.started_at = time.monotonic()
        self.finished_at: float | None = None
        self.notice: str | None = None  # e.g. the pool refused a trial for a reason that ends the sweep
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._thread = threading.Thread(target=self._feed, name="sweep-feeder", daemon=True)
        self._thread.start()

    # ---------------------------------------------------------------- reading
    @property
    def active(self) -> bool:
        """Whether any trial is still pending, queued or running."""
        return any(t.status in ("pending", "queued", "running") for t in self.trials)

    @property
    def stopped(self) -> bool:
        """Whether :meth:`stop` was called."""
        return self._stop.is_set()

    def counts(self) -> dict[str, int]:
        """How many trials are in each status."""
        out: dict[str, int] = {}
        for t in self.trials:
            out[t.status] = out.get(t.status, 0) + 1
        return out

    def ranked(self) -> list[TrialState]:
        """Finished trials best first by the spec's metric, then stopped ones (partial runs: not comparable,
        best first too), then the others in order."""
        m = self.plan.spec.metric

        def by_metric(status: str) -> list[TrialState]:
            out = [t for t in self.trials if t.status == status and m in t.metrics and math.isfinite(t.metrics[m])]
            return sorted(out, key=lambda t: -t.metrics[m] if higher_is_better(m) else t.metrics[m])

        head = by_metric("done") + by_metric("stopped")
        return head + [t for t in self.trials if t not in head]

    def best(self) -> TrialState | None:
        """The best finished trial so far (``None`` before one has finished with a score)."""
        ranked = self.ranked()
        return ranked[0] if ranked and ranked[0].status == "done" and self.plan.spec.metric in ranked[0].metrics \
            else None

    def wait(self, timeout: float | None = None) -> bool:
        """Block until every trial has ended (True) or ``timeout`` passes (False)."""
        self._thread.join(timeout)
        return not self._thread.is_alive()

    # ---------------------------------------------------------------- control
    def stop(self) -> None:
        """End the whole sweep: running trials stop (partial runs kept), the rest are skipped."""
        self._stop.set()
        with self._lock:
            for t in self.trials:
                if t.status == "pending":
                    t.status = "skipped"
            jobs = [t.job for t in self.trials if t.job is not None and t.status in ("queued", "running")]
        for job in jobs:
            job.stop()
        self._wake.set()

    # ---------------------------------------------------------------- internals
    def _notify(self) -> None:
        if self.on_change is not None:
            try:
                self.on_change(self)
            except Exception:  # noqa: BLE001 - a listener must not break the sweep
                log.exception("sweep on_change failed")

    def _on_job(self, job: Any) -> None:
        with self._lock:
            mine = [t for t in self.trials if t.job is not None and (t.job is job or getattr(t.job, "group", None) is job)]
            if not mine:
                return
            for t in mine:
                if job.status == "running":
                    t.status = "running"
                elif not job.active:
                    self._collect(t, t.job)
        if job.status == "stopped" and not self._stop.is_set():  # stopped from outside: the owner left
            self.notice = "The sweep stopped because its page was closed."
            self.stop()
        self._wake.set()
        self._notify()

    def _collect(self, t: TrialState, job: Any) -> None:
        t.run = job.result
        t.seconds = getattr(job.result, "seconds", None)
        if job.status == "failed":
            t.status, t.error = "failed", job.error
        elif job.result is None:  # cancelled while queued
            t.status = "skipped"
        else:
            t.status = "stopped" if job.status == "stopped" else "done"
            try:
                t.metrics = score(job.result, self.data)
            except Exception as exc:  # noqa: BLE001 - a score that cannot be computed fails only this trial
                log.exception("scoring trial %s failed", t.index)
                t.status, t.error = "failed", f"could not be scored: {exc}"

    def _feed(self) -> None:
        from .jobs import LimitError

        slots = [f"{self.user}:sweep{k}" for k in range(self.parallel)]
        try:
            while not self._stop.is_set():
                with self._lock:
                    pending = [p for p in self.programs if all(self.trials[i].status == "pending" for i in p)]
                    busy = {t.job.owner for t in self.trials if t.job is not None and t.status in ("queued", "running")}
                free = [s for s in slots if s not in busy]
                if not pending and not busy:
                    break
                for owner, program in zip(free, pending, strict=False):
                    trials = [self.trials[i] for i in program]
                    kwargs: dict[str, Any] = {"on_change": self._on_job}
                    if self.executor is not None:
                        kwargs["executor"] = self.executor
                    try:
                        if len(trials) == 1:
                            job = self.pool.submit(trials[0].config, self.data, owner, **kwargs)
                            views = [job]
                        else:
                            job = self.pool.submit_group([t.config for t in trials], self.data, owner, **kwargs)
                            views = job.lanes
                    except LimitError as exc:  # the quota or the class queue: try again shortly
                        self.notice = str(exc)
                        break
                    except Exception as exc:  # noqa: BLE001 - a program the pool refuses fails alone
                        with self._lock:
                            for t in trials:
                                t.status, t.error = "failed", str(exc) or type(exc).__name__
                        continue
                    self.notice = None
                    if self._stop.is_set():  # stopped while it was being submitted
                        job.stop()
                    with self._lock:
                        for t, view in zip(trials, views, strict=True):
                            t.job = view
                            if t.status == "pending" and job.active:  # it may have started already
                                t.status = "running" if job.status == "running" else "queued"
                            if not job.active:
                                self._collect(t, view)
                    self._notify()
                for owner in slots:
                    self.pool.touch(owner)  # the sweep is this user's: keep its slots alive
                self._wake.wait(0.5)
                self._wake.clear()
            # stopped: wait for the running trials to end (their partial runs are kept)
            while True:
                with self._lock:
                    live = [t for t in self.trials if t.status in ("queued", "running")]
                if not live:
                    break
                self._wake.wait(0.2)
                self._wake.clear()
        finally:
            self.finished_at = time.monotonic()
            self._notify()


def run_sweep_local(spec: SweepSpec, data: Dataset, *, executor: str = "process", workers: int | None = None,
                    on_trial: Callable[[TrialState], None] | None = None,
                    should_stop: Callable[[], bool] | None = None, batched: bool = True) -> SweepRun:
    """Train a sweep on this machine's (or ``RAY_ADDRESS``'s cluster's) workers; returns it when every trial ended.

    The command line's runner: its own :class:`~ensemble_core.jobs.JobPool` (``executor``
    ``"process"`` or ``"ray"``, ``workers`` slots, default one per core or per cluster CPU),
    without the classroom limits, every program in flight at once: trials that differ only in
    per-trajectory settings train as one batched program (one job, :attr:`SweepPlan.programs`),
    cut so that every slot trains (:func:`spread`: 8 learning rates on 2 workers are 2 programs
    of 4); ``batched=False`` trains every trial as its own job (the baseline).

    Raises:
        ConfigError: bad settings (named).
    """
    from .jobs import JobPool, Limits

    unlimited = Limits(max_work=math.inf, max_rows=10**9, max_parameters=10**9, max_steps=10**12,
                       max_cpu_seconds=math.inf, max_memory_bytes=math.inf)
    from .jobs import default_max_running

    checked = plan(spec, data, unlimited, max_trials=10_000, max_cpu_seconds=math.inf)
    if not batched:
        checked = dataclasses.replace(checked, programs=())
    # one job per program (a batched group of trials is one job); a batched program is cut so that
    # every worker trains (SweepRun: spread), e.g. 8 learning rates on 2 workers: 2 programs of 4
    if workers:
        slots = int(workers)
    elif executor == "ray":  # the pool's default: one slot per CPU of the cluster
        from .ray_executor import cluster_cpus

        slots = cluster_cpus()
    else:
        slots = default_max_running()
    n = max(checked.n_programs, slots)
    pool = JobPool(max_running=workers, executor=executor, limits=unlimited, max_active_per_owner=1,  # type: ignore[arg-type]
                   max_active_per_user=n, max_queued=n + 1, heartbeat_timeout=None, torch_threads=1)
    seen: set[int] = set()
    lock = threading.Lock()

    def changed(sweep: SweepRun) -> None:
        if on_trial is None:
            return
        with lock:
            done = [t for t in sweep.trials if t.index not in seen and t.status in ("done", "stopped", "failed")]
            seen.update(t.index for t in done)
        for t in done:
            on_trial(t)

    try:
        sweep = SweepRun(checked, data, pool, "cli", parallel=n, on_change=changed)
        while not sweep.wait(0.2):
            if should_stop is not None and should_stop() and not sweep.stopped:
                sweep.stop()
    finally:
        pool.shutdown()
    return sweep


def trial_json(t: TrialState, task: str) -> dict[str, Any]:
    """One trial as the CLI's JSON prints it: params, test NLL, test RMSE or accuracy, seconds, status."""
    out: dict[str, Any] = {"params": dict(t.params)}
    second = "test_rmse" if task == "regression" else "test_accuracy"
    for key in ("test_nll", second):
        value = t.metrics.get(key)
        out[key] = value if value is not None and math.isfinite(value) else None
    out["seconds"] = None if t.seconds is None else round(float(t.seconds), 3)
    out["status"] = t.status
    if t.error:
        out["error"] = t.error
    return out

