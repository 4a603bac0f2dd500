"""Hyperparameter sweeps, trained as few batched programs as possible.

A sweep is a base :class:`~ensemble_core.config.RunConfig` and a list of
trials, each a mapping of dotted config paths to values
(``{"optim.lr": 0.003, "seed": 2}``, the keys of ``RunConfig.replace``).

Trials that differ only in settings the engine carries per trajectory
(:data:`PER_TRAJECTORY`: learning rate and ``lr_min``, weight decay, seed, the
adversarial eps, the beta-NLL beta) form one *group* and train as ONE stacked
run of ``trials x members`` trajectories (:func:`ensemble_core.training.train_lanes`):
one forward/backward and one fused optimiser update per step for the whole
group.  Every other trial trains on its own with
:func:`ensemble_core.training.train`.  Either way a trial's result is the
:class:`~ensemble_core.run.Run` its own ``train`` call returns, to float
round-off (``tests/test_sweep_batched.py``: 1e-4, member by member).

Typical use (a caller that enforces limits checks each group first)::

    plan = plan_sweep(base, [{"optim.lr": lr} for lr in (1e-3, 3e-3, 1e-2)])
    for group in plan.groups:
        check_limits(stacked_config(group), data)     # ensemble_core.jobs
    result = run_sweep(plan, data, on_event=..., should_stop=...)
    best = min((t for t in result.trials if t.run), key=...)
"""

from __future__ import annotations

import copy
import dataclasses
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from .config import ConfigError, RunConfig
from .costs import RunCost, estimate, shape_of
from .data import Dataset
from .run import Event, Run
from .training import TrainingError, lane_key, train, train_lanes

__all__ = [
    "PER_TRAJECTORY",
    "MAX_GROUP_TRAJECTORIES",
    "Trial",
    "SweepGroup",
    "SweepPlan",
    "TrialResult",
    "SweepResult",
    "plan_sweep",
    "stacked_config",
    "group_cost",
    "sweep_costs",
    "run_sweep",
]

#: The settings a batched group's trials may differ in (each trajectory carries its own value).
PER_TRAJECTORY = ("optim.lr", "optim.lr_min", "optim.weight_decay", "seed", "strategy.adversarial_eps",
                  "loss.beta")

#: A group holds at most this many trajectories (trials x members); larger groups are split, so a
#: big sweep's stacked program stays within the memory of a few ordinary runs.
MAX_GROUP_TRAJECTORIES = 200


@dataclass(frozen=True)
class Trial:
    """One point of a sweep.

    Attributes:
        index: position in the sweep's list of trials.
        params: the dotted settings this trial sets on the base config.
        config: the base config with ``params`` applied (validated).
    """

    index: int
    params: Mapping[str, Any]
    config: RunConfig


@dataclass(frozen=True)
class SweepGroup:
    """Trials trained as one program: stacked when there are several, else a plain run.

    Attributes:
        trials: the sweep's trial indices in this group, in order (lane ``i`` is ``trials[i]``).
        configs: their configs, in the same order.
    """

    trials: tuple[int, ...]
    configs: tuple[RunConfig, ...]

    @property
    def batched(self) -> bool:
        """Whether the group trains as one stacked program of several trials."""
        return len(self.trials) > 1

    @property
    def trajectories(self) -> int:
        """Trajectories trained side by side: trials x members."""
        return len(self.trials) * self.configs[0].strategy.members


@dataclass(frozen=True)
class SweepPlan:
    """A sweep's trials and how they are grouped into programs (:func:`plan_sweep`)."""

    base: RunConfig
    trials: tuple[Trial, ...]
    groups: tuple[SweepGroup, ...]


@dataclass
class TrialResult:
    """What one trial produced.

    Attributes:
        trial: the trial.
        run: its :class:`Run` (``stopped=True`` when the sweep was stopped while it trained), or
            ``None`` when it failed or never started.
        error: why it has no run (every member diverged, bad data, or the sweep stopped before it
            started), else ``None``.
        seconds: wall time of the program that trained it (shared by a batched group's trials).
        group: index of its group in :attr:`SweepPlan.groups`.
        batched: whether it trained in a stacked program with other trials.
    """

    trial: Trial
    run: Run | None
    error: str | None
    seconds: float
    group: int
    batched: bool

    @property
    def status(self) -> Literal["done", "stopped", "failed", "not run"]:
        """``done``, ``stopped`` (a partial run), ``failed`` or ``not run`` (the sweep stopped first)."""
        if self.run is not None:
            return "stopped" if self.run.stopped else "done"
        return "not run" if self.error == NOT_RUN else "failed"


@dataclass
class SweepResult:
    """Every trial's result, in the order of the sweep's trials, and the timings.

    Attributes:
        plan: the plan that ran.
        trials: one :class:`TrialResult` per trial.
        seconds: wall time of the whole sweep.
        group_seconds: wall time of each group's program (``None`` for a group that never started).
        stopped: ``should_stop`` ended the sweep early.
    """

    plan: SweepPlan
    trials: list[TrialResult]
    seconds: float
    group_seconds: list[float | None]
    stopped: bool


#: :attr:`TrialResult.error` of a trial that never started because the sweep was stopped.
NOT_RUN = "not run: the sweep was stopped before this trial started"


def plan_sweep(base: RunConfig, trials: Sequence[Mapping[str, Any]], *, batched: bool = True,
               max_group_trajectories: int = MAX_GROUP_TRAJECTORIES) -> SweepPlan:
    """Resolve the trials' configs and group the trials that can share one stacked program.

    Trials whose configs agree in everything but :data:`PER_TRAJECTORY` form
    a group (in order of first appearance), split so that no group holds more
    than ``max_group_trajectories`` trajectories.  With ``batched=False`` every
    trial is its own group (the separate-runs baseline).

    Raises:
        ConfigError: a trial is not a mapping, or its settings are unknown or invalid (the
            message names the trial and the field).
    """
    if isinstance(trials, Mapping) or not isinstance(trials, Sequence):
        raise ConfigError("trials: expected a list of {setting: value} mappings")
    if max_group_trajectories < 1:
        raise ConfigError(f"max_group_trajectories must be at least 1, got {max_group_trajectories}")
    known = set(base.to_query(only_changed=False))
    resolved = []
    for i, params in enumerate(trials):
        if not isinstance(params, Mapping):
            raise ConfigError(f"trial {i + 1}: expected a mapping of settings, got {type(params).__name__}")
        for key in params:
            if key not in known:
                raise ConfigError(f"trial {i + 1}: {key}: unknown setting (use dotted names such as 'optim.lr')")
        try:
            config = base.replace(**dict(params))
        except (ConfigError, TypeError) as exc:
            raise ConfigError(f"trial {i + 1}: {exc}") from None
        resolved.append(Trial(index=i, params=dict(params), config=config))
    buckets: dict[RunConfig, list[int]] = {}
    groups: list[list[int]] = []
    for t in resolved:
        if not batched:
            groups.append([t.index])
            continue
        key = lane_key(t.config)
        members = t.config.strategy.members
        bucket = buckets.get(key)
        if bucket is None or (len(bucket) + 1) * members > max_group_trajectories:
            bucket = []
            buckets[key] = bucket
            groups.append(bucket)
        bucket.append(t.index)
    return SweepPlan(base=base, trials=tuple(resolved),
                     groups=tuple(SweepGroup(trials=tuple(g), configs=tuple(resolved[i].config for i in g))
                                  for g in groups))


def stacked_config(group: SweepGroup) -> RunConfig:
    """The config whose cost is the group's program: the first trial's, with ``trials x members`` members.

    For cost estimates and limit checks only (``costs.estimate``,
    ``jobs.check_limits``): its member count may exceed what a
    :class:`RunConfig` accepts, so it is never trained.
    """
    first = group.configs[0]
    if not group.batched:
        return first
    strategy = copy.copy(first.strategy)
    object.__setattr__(strategy, "members", group.trajectories)  # unchecked on purpose: see the docstring
    return dataclasses.replace(first, strategy=strategy)


def group_cost(group: SweepGroup, data: Dataset) -> RunCost:
    """The estimated cost (:func:`ensemble_core.costs.estimate`) of the group's program on ``data``."""
    config = stacked_config(group)
    return estimate(config, shape_of(config, data))


def sweep_costs(plan: SweepPlan, data: Dataset) -> list[RunCost]:
    """:func:`group_cost` of every group of ``plan`` (the sweep's CPU-seconds are their sum)."""
    return [group_cost(g, data) for g in plan.groups]


def run_sweep(
    plan: SweepPlan,
    data: Dataset,
    on_event: Callable[[int, Event], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
    *,
    on_trial: Callable[[TrialResult], None] | None = None,
) -> SweepResult:
    """Train every trial of ``plan`` on ``data``, group by group.

    A batched group trains as one stacked program
    (:func:`ensemble_core.training.train_lanes`), any other group with
    :func:`ensemble_core.training.train`.  ``on_event(trial_index, event)``
    receives each trial's events (the events its own run would emit);
    ``on_trial`` each :class:`TrialResult` as soon as its group ends.

    ``should_stop`` is polled before every optimiser step (as by ``train``):
    once it returns True the running group ends at that step (its trials keep
    their partial runs, ``stopped=True``) and later groups do not start
    (:data:`NOT_RUN`).  A trial whose members all diverge, or whose data does
    not fit its config, gets ``error`` and the sweep goes on.

    Limits are the caller's: check :func:`stacked_config` of each group (or
    :func:`sweep_costs`) before calling.
    """
    t0 = time.perf_counter()
    results: list[TrialResult | None] = [None] * len(plan.trials)
    group_seconds: list[float | None] = [None] * len(plan.groups)
    stopped = False

    def stop() -> bool:
        nonlocal stopped
        if not stopped and should_stop is not None and should_stop():
            stopped = True
        return stopped

    def finish(trial: int, gi: int, group: SweepGroup, run: Run | None, error: str | None, seconds: float) -> None:
        res = TrialResult(trial=plan.trials[trial], run=run, error=error, seconds=seconds, group=gi,
                          batched=group.batched)
        results[trial] = res
        if on_trial is not None:
            on_trial(res)

    for gi, group in enumerate(plan.groups):
        if stopped:
            for trial in group.trials:
                finish(trial, gi, group, None, NOT_RUN, 0.0)
            continue
        g0 = time.perf_counter()
        if group.batched:
            def lane_event(lane: int, event: Event, _trials: tuple[int, ...] = group.trials) -> None:
                if on_event is not None:
                    on_event(_trials[lane], event)

            try:
                lanes = train_lanes(list(group.configs), data, lane_event, stop)
            except TrainingError as exc:
                lanes = None
                err = str(exc)
            seconds = time.perf_counter() - g0
            for lane, trial in enumerate(group.trials):
                if lanes is None:
                    finish(trial, gi, group, None, err, seconds)
                else:
                    finish(trial, gi, group, lanes[lane].run, lanes[lane].error, seconds)
        else:
            trial = group.trials[0]

            def one_event(event: Event, _trial: int = trial) -> None:
                if on_event is not None:
                    on_event(_trial, event)

            try:
                run: Run | None = train(group.configs[0], data, one_event, stop)
                error = None
            except TrainingError as exc:
                run, error = None, str(exc)
            seconds = time.perf_counter() - g0
            finish(trial, gi, group, run, error, seconds)
        group_seconds[gi] = seconds
    return SweepResult(plan=plan, trials=[r for r in results if r is not None], seconds=time.perf_counter() - t0,
                       group_seconds=group_seconds, stopped=stopped)
