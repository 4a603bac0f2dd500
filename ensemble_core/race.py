"""The strategy race: several ensemble strategies at an equal compute budget.

The budget is counted in **member-epochs**: one epoch of one network over the
training set.  ``M`` independent members trained for ``E`` epochs cost ``M*E``;
a snapshot ensemble of ``M`` snapshots trains *one* network for ``M*E`` epochs
(``M`` cosine cycles of ``E`` epochs) and costs the same.  Every strategy gets
the base config's data, architecture, loss, optimiser and seed, so the race
differs only in how the members are obtained.

Strategies (:data:`STRATEGIES`):

``independent``  ``M`` networks from different seeds, ``budget / M`` epochs each
``bootstrap``    the same, each member on its own bootstrap resample
``snapshot``     one network, ``M`` cycles of ``budget / M`` epochs, a snapshot per cycle
``single``       one network trained for the whole budget (the "why ensemble?" baseline)

``M`` is the base config's ensemble size.  Adversarial training, when on in
the base, is on for every strategy (it doubles every strategy's cost alike).
"""

from __future__ import annotations

import dataclasses
import math
import threading
from collections.abc import Sequence
from typing import Any

import pandas as pd

from .config import ConfigError, RunConfig

__all__ = [
    "STRATEGIES",
    "STRATEGY_LABELS",
    "BudgetError",
    "ensemble_size",
    "budget_of",
    "describe_budget",
    "strategy_of",
    "race_configs",
    "scale_epochs",
    "race_table",
    "RunSequence",
    "race_figures",
    "losses_figure",
    "race_base",
]

STRATEGIES: tuple[str, ...] = ("independent", "bootstrap", "snapshot", "single", "mc_dropout")

#: Human labels for tables and legends.
STRATEGY_LABELS: dict[str, str] = {
    "independent": "Independent seeds",
    "bootstrap": "Bootstrap (bagging)",
    "snapshot": "Snapshot ensemble",
    "single": "Single network",
    "mc_dropout": "MC dropout",
}

_MAX_EPOCHS = 5000


class BudgetError(ConfigError):
    """A strategy cannot be run at the requested compute budget; the message says why."""


def ensemble_size(config: RunConfig) -> int:
    """Members in the final ensemble of ``config`` (snapshots count as members)."""
    return config.strategy.ensemble_size


def budget_of(config: RunConfig) -> int:
    """Compute cost of ``config`` in member-epochs: trajectories x epochs."""
    return config.strategy.members * config.optim.epochs


def strategy_of(config: RunConfig) -> str:
    """The race strategy name ``config`` implements (``"single"`` for one independent member)."""
    kind = config.strategy.kind
    if kind == "independent" and config.strategy.members == 1:
        return "single"
    return kind


def describe_budget(config: RunConfig) -> str:
    """A one-line account of the cost, e.g. ``"5 members x 40 epochs = 200 member-epochs"``."""
    s, e = config.strategy, config.optim.epochs
    total = budget_of(config)
    if s.kind == "snapshot":
        per = e / s.snapshots
        per_txt = f"{per:g}"
        traj = "1 trajectory" if s.members == 1 else f"{s.members} trajectories"
        return f"{traj} x {s.snapshots} cycles x {per_txt} epochs = {total} member-epochs"
    members = "1 member" if s.members == 1 else f"{s.members} members"
    return f"{members} x {e} epochs = {total} member-epochs"


def race_configs(base: RunConfig, strategies: Sequence[str], budget: int | None = None) -> list[RunConfig]:
    """One config per strategy, all at the same compute budget.

    Args:
        base: data, architecture, loss, optimiser and seed shared by every
            strategy; its ensemble size ``M`` is the number of members (or
            snapshots) each ensemble gets.
        strategies: names from :data:`STRATEGIES`, each at most once.
        budget: member-epochs per strategy; default ``M * base.optim.epochs``
            (``budget_of(base)`` for a snapshot base).

    Returns:
        Configs in the order of ``strategies``; ``budget_of`` is equal for all.

    Raises:
        BudgetError: unknown/duplicate strategies, or a strategy that cannot
            spend exactly ``budget`` (not a multiple of ``M``, too many epochs,
            too many snapshots); the message names the strategy and a fix.
    """
    strategies = list(strategies)
    if not strategies:
        raise BudgetError("strategies: choose at least one strategy to race")
    unknown = [s for s in strategies if s not in STRATEGIES]
    if unknown:
        raise BudgetError(f"strategies: unknown {', '.join(map(repr, unknown))}; choose from {', '.join(STRATEGIES)}")
    if len(set(strategies)) != len(strategies):
        raise BudgetError("strategies: each strategy can race only once")
    m = ensemble_size(base)
    if budget is None:
        budget = budget_of(base) if base.strategy.kind == "snapshot" else m * base.optim.epochs
    if not isinstance(budget, int) or isinstance(budget, bool) or budget < 1:
        raise BudgetError(f"budget: must be a positive whole number of member-epochs, got {budget!r}")
    return [_config_for(base, s, m, budget) for s in strategies]


def _config_for(base: RunConfig, strategy: str, m: int, budget: int) -> RunConfig:
    label = STRATEGY_LABELS[strategy]
    # MC dropout: one network trained for the whole budget (its T passes at prediction are not training
    # compute); it trains without adversarial examples (see StrategySpec)
    members = 1 if strategy in ("single", "snapshot", "mc_dropout") else m
    epochs = budget // members
    if strategy in ("independent", "bootstrap", "snapshot") and budget % m:
        lo, hi = (budget // m) * m, (budget // m + 1) * m
        raise BudgetError(
            f"{label}: a budget of {budget} member-epochs cannot be split evenly over {m} "
            f"{'cycles' if strategy == 'snapshot' else 'members'}; use a multiple of {m} "
            f"(e.g. {hi if lo == 0 else lo} or {hi})"
        )
    if epochs > _MAX_EPOCHS:
        raise BudgetError(
            f"{label}: {epochs} epochs for one network exceeds the limit of {_MAX_EPOCHS}; "
            "lower the budget"
        )
    if strategy == "snapshot" and m > 20:
        raise BudgetError(f"{label}: at most 20 snapshots per trajectory, got {m}")
    schedule = base.optim.schedule if base.optim.schedule != "cyclic" else "cosine"
    snapshots = m if strategy == "snapshot" else base.strategy.snapshots
    try:
        strat = dataclasses.replace(
            base.strategy, kind="independent" if strategy == "single" else strategy,
            members=members, snapshots=snapshots,
            adversarial=base.strategy.adversarial and strategy != "mc_dropout",
        )
        optim = dataclasses.replace(
            base.optim, epochs=epochs, schedule="cyclic" if strategy == "snapshot" else schedule,
        )
        return dataclasses.replace(base, strategy=strat, optim=optim)
    except ConfigError as exc:
        raise BudgetError(f"{label}: {exc}") from None


def scale_epochs(config: RunConfig, scale: float = 1.0, *, max_epochs: int | None = None) -> RunConfig:
    """Shrink or grow training time while keeping equal budgets equal.

    The unit scaled is the epochs per member (per *cycle* for snapshot
    ensembles), so an independent ``5 x 40`` and a snapshot ``1 x 5 x 40``
    scaled by the same factor still cost the same.

    Args:
        config: the config to scale.
        scale: factor on the epochs per member/cycle (result at least 1).
        max_epochs: optional cap on the epochs per member/cycle (tests use 1-3).
    """
    if not (scale > 0 and math.isfinite(scale)):
        raise ValueError(f"scale must be a positive number, got {scale}")
    cycles = config.strategy.snapshots if config.strategy.kind == "snapshot" else 1
    unit = config.optim.epochs // cycles
    unit = max(1, round(unit * scale))
    if max_epochs is not None:
        unit = max(1, min(unit, max_epochs))
    return config.replace(**{"optim.epochs": unit * cycles})


def race_table(runs: Sequence[Any], dataset: Any, strategies: Sequence[str] | None = None) -> pd.DataFrame:
    """One row per raced run: test metrics, size, budget and training time.

    Args:
        runs: trained :class:`~ensemble_core.run.Run` objects.
        dataset: the :class:`~ensemble_core.data.Dataset` they were trained on
            (its test split is scored; the validation split if there is no test).
        strategies: row labels' strategy names (default: :func:`strategy_of`).

    Returns:
        Columns ``strategy, members, budget, test NLL, RMSE`` (regression) or
        ``accuracy`` (classification), ``ECE`` (classification; for regression
        the analogous ``miscalibration area``), ``time (s)``, ``epochs done``.
        Lower NLL is better.
    """
    from .metrics import evaluate
    from .predict import predict

    if strategies is not None and len(strategies) != len(runs):
        raise ValueError(f"got {len(runs)} runs but {len(strategies)} strategy names")
    x, y = dataset.x_test, dataset.y_test
    if len(y) == 0:
        x, y = dataset.x_val, dataset.y_val
    if len(y) == 0:
        raise ValueError("the data set has no test or validation rows to score the race on")
    rows = []
    for i, run in enumerate(runs):
        name = strategies[i] if strategies is not None else strategy_of(run.config)
        scores = evaluate(predict(run, x), y)
        row: dict[str, Any] = {
            "strategy": STRATEGY_LABELS.get(name, name),
            "members": len(run.healthy),
            "budget": budget_of(run.config),
            "test NLL": scores["nll"],
        }
        if "accuracy" in scores:
            row["accuracy"] = scores["accuracy"]
            row["ECE"] = scores["ece"]
        else:
            row["RMSE"] = scores["rmse"]
            row["miscalibration area"] = scores["miscalibration_area"]
        row["time (s)"] = float(run.seconds)
        row["epochs done"] = int(run.epochs_done)
        rows.append(row)
    return pd.DataFrame(rows)


class RunSequence:
    """Train several configs one after another through a job pool (the race, a lesson's panels).

    One at a time, so every strategy gets the same machine (fair training
    times) and a classroom's shared pool is not flooded.  The object holds
    only ids, results and messages, so it can live in a session's state;
    the pool is passed to each call.  It never raises on a failed run: the
    failure's message is kept for that entry and the sequence moves on.

    Thread-safe: several sessions (tabs of one browser, a reloaded page) may
    call :meth:`step`, :meth:`stop`, :meth:`events` and :meth:`job` on one
    sequence at once; a re-entrant lock makes each call atomic, so an entry
    is submitted to the pool exactly once and a stop is never undone by a
    concurrent step.  The lock is not pickled (a copy gets a fresh one).

    Args:
        configs: the runs to train, in order.
        dataset: the data every run trains on.
        labels: one display label per config.
    """

    def __init__(self, configs: Sequence[RunConfig], dataset: Any, labels: Sequence[str]) -> None:
        if len(configs) != len(labels) or not configs:
            raise ValueError(f"need one label per config; got {len(configs)} configs and {len(labels)} labels")
        self.configs = list(configs)
        self.dataset = dataset
        self.labels = list(labels)
        self.job_ids: list[str | None] = [None] * len(configs)
        self.runs: list[Any] = [None] * len(configs)
        self.errors: list[str | None] = [None] * len(configs)
        self.stopped = False
        #: extra keyword arguments of every ``pool.submit`` (e.g. ``{"pace": "watchable"}``)
        self.submit_options: dict[str, Any] = {}
        self._lock = threading.RLock()

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state.pop("_lock", None)
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._lock = threading.RLock()

    @property
    def index(self) -> int:
        """Position of the entry being trained (``len(configs)`` when all are finished)."""
        for i in range(len(self.configs)):
            if self.runs[i] is None and self.errors[i] is None:
                return i
        return len(self.configs)

    @property
    def done(self) -> bool:
        """Every entry has a run or an error (or the sequence was stopped)."""
        return self.index >= len(self.configs)

    @property
    def complete(self) -> bool:
        """Every entry has a run."""
        return all(r is not None for r in self.runs)

    def job(self, pool: Any, owner: str) -> Any:
        """The pool's job for the current entry, or ``None``."""
        with self._lock:
            return None if self.done else pool.get(self.job_ids[self.index], owner)

    def events(self, pool: Any, owner: str) -> list[list[Any]]:
        """Each entry's events so far: finished runs' history, the live job's events, ``[]`` for pending."""
        out: list[list[Any]] = []
        with self._lock:
            for i, run in enumerate(self.runs):
                if run is not None:
                    out.append(list(run.history))
                elif i == self.index:
                    job = self.job(pool, owner)
                    out.append(list(job.events) if job is not None else [])
                else:
                    out.append([])
        return out

    def step(self, pool: Any, owner: str) -> None:
        """Advance: collect the current job if it ended, then submit the next entry.

        Call it on every poll; it also keeps ``owner`` alive in the pool.
        """
        pool.touch(owner)
        with self._lock:
            self._step(pool, owner)

    def _step(self, pool: Any, owner: str) -> None:
        while not self.done:
            i = self.index
            job = pool.get(self.job_ids[i], owner) if self.job_ids[i] else None
            if job is None and self.job_ids[i] is not None:
                self.errors[i] = "The run was forgotten by the server (the session was idle for too long)."
                continue
            if job is None:
                try:
                    job = pool.submit(self.configs[i], self.dataset, owner, **getattr(self, "submit_options", {}))
                except (ValueError, RuntimeError) as exc:  # LimitError/ConfigError are ValueErrors
                    self.errors[i] = str(exc)
                    continue
                self.job_ids[i] = job.id
                return
            if job.active:
                return
            if job.result is not None:
                self.runs[i] = job.result
            else:
                self.errors[i] = job.error or "The run ended without a result."

    def stop(self, pool: Any, owner: str) -> None:
        """Stop the current run (its partial result is kept) and skip the ones not started."""
        with self._lock:
            job = self.job(pool, owner)
            if job is not None:
                job.stop()
            self.stopped = True
            for i in range(len(self.configs)):
                if self.job_ids[i] is None and self.runs[i] is None and self.errors[i] is None:
                    self.errors[i] = "Skipped: the sequence was stopped."


def race_figures(runs: Sequence[Any], dataset: Any, labels: Sequence[str]) -> list[tuple[str, str, Any]]:
    """What each raced ensemble predicts, for side-by-side comparison.

    1-D regression: one figure, one bands panel per run on the same axes.
    2-D classification: one class/entropy/mutual-information figure per run.
    Other data: predicted vs actual on the test set, one panel per run.

    Returns:
        ``(key, caption, figure)`` triples.
    """
    from . import viz
    from .predict import predict
    from .report import bands_side_by_side, class_maps_of, side_by_side

    if dataset.n_features == 1 and dataset.task == "regression":
        return [("race_bands", "Mean ± 2σ of each strategy (same axes)", bands_side_by_side(runs, dataset, labels))]
    if dataset.n_features == 2 and dataset.task == "classification":
        return [(f"race_maps_{i}", label, class_maps_of(run, dataset, n=70)) for i, (run, label) in
                enumerate(zip(runs, labels))]
    x, y = (dataset.x_test, dataset.y_test) if len(dataset.y_test) else (dataset.x_val, dataset.y_val)
    if dataset.task == "regression":
        figs = [viz.pred_vs_actual(y, predict(run, x), target_name=dataset.target_name) for run in runs]
        return [("race_pva", "Predicted vs actual (test set), ±2σ intervals", side_by_side(figs, labels))]
    return []


def losses_figure(events: Sequence[Sequence[Any]], configs: Sequence[RunConfig], labels: Sequence[str], *,
                  height: int = 400) -> Any:
    """Training loss of every member, one panel per run, side by side (live or finished).

    The panels share one y-axis; when a few spikes (a snapshot ensemble's restarts) would flatten it,
    its range leaves them out (:func:`~ensemble_core.viz.robust_range`), and each panel with values off
    that scale says how many, in its own corner (never a note over a panel whose curves are all shown).

    Args:
        events: each run's events so far (``RunSequence.events``); ``[]`` for a run not started.
        configs: the runs' configs (epoch axis and number of members).
        labels: panel titles.
    """
    from . import viz
    from .report import side_by_side

    figs = [viz.loss_figure(list(ev), c.optim.epochs, n_members=c.strategy.members, height=height)
            for ev, c in zip(events, configs)]
    out = side_by_side(figs, labels, height=height)
    for i, c in enumerate(configs, start=1):
        out.update_xaxes(range=[1, max(2, c.optim.epochs)], row=1, col=i)
    out.update_yaxes(title_text="Training loss", row=1, col=1)
    # one shared y-axis: a snapshot restart spike in one panel must not flatten every panel's curves
    r = viz.series_range(t.y for t in out.data if t.y is not None)
    if r is not None:
        lo, hi = r[0], r[1]
        out.update_yaxes(range=[lo, hi], autorange=False)
        panels: dict[tuple[str, str], list] = {}
        for t in out.data:
            panels.setdefault((t.xaxis or "x", t.yaxis or "y"), []).extend(t.y or ())
        for (xa, ya), ys in panels.items():
            off = viz.off_scale(ys, lo, hi)  # (the range spans every value it keeps)
            if off is not None:
                out.add_annotation(**viz.spike_note(*off, f"{xa} domain", f"{ya} domain"))
    return out


def race_base(config: RunConfig, members: int) -> RunConfig:
    """``config`` turned into the race's starting point: ``members`` independent members.

    A snapshot config becomes an independent one with the cosine schedule and
    the epochs of one cycle (so its default budget is the same); everything
    else (data, network, loss, optimiser, seed, adversarial) is kept.
    """
    s, o = config.strategy, config.optim
    epochs = max(1, o.epochs // s.snapshots) if s.kind == "snapshot" else o.epochs
    strat = dataclasses.replace(s, kind="independent", members=members)
    optim = dataclasses.replace(o, epochs=epochs, schedule="cosine" if o.schedule == "cyclic" else o.schedule)
    try:
        return dataclasses.replace(config, strategy=strat, optim=optim)
    except ConfigError as exc:
        raise BudgetError(str(exc)) from None
