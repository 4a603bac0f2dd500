"""Tests for ensemble_core.race: equal budgets are enforced; the table has one row per strategy."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from ensemble_core.config import DataSpec, ModelSpec, OptimSpec, RunConfig, StrategySpec
from ensemble_core.race import (
    STRATEGIES,
    BudgetError,
    budget_of,
    describe_budget,
    race_configs,
    race_table,
    scale_epochs,
    strategy_of,
)

BASE = RunConfig(strategy=StrategySpec(members=5), optim=OptimSpec(epochs=40))


def test_every_strategy_gets_the_same_budget() -> None:
    cfgs = race_configs(BASE, list(STRATEGIES))
    assert [budget_of(c) for c in cfgs] == [200] * 5
    ind, boot, snap, single, mc = cfgs
    assert (ind.strategy.kind, ind.strategy.members, ind.optim.epochs) == ("independent", 5, 40)
    assert (boot.strategy.kind, boot.strategy.members, boot.optim.epochs) == ("bootstrap", 5, 40)
    assert (snap.strategy.kind, snap.strategy.members, snap.strategy.snapshots, snap.optim.epochs) == (
        "snapshot", 1, 5, 200)
    assert snap.optim.schedule == "cyclic"
    assert (single.strategy.members, single.optim.epochs) == (1, 200)
    assert (mc.strategy.kind, mc.strategy.members, mc.optim.epochs) == ("mc_dropout", 1, 200)
    assert [strategy_of(c) for c in cfgs] == list(STRATEGIES)
    # everything else is shared: same data, model, loss, seed
    assert all(c.data == BASE.data and c.model == BASE.model and c.seed == BASE.seed for c in cfgs)
    # ensembles have the same size
    assert [c.strategy.ensemble_size for c in cfgs[:3]] == [5, 5, 5]


def test_budget_is_described_for_humans() -> None:
    ind, snap = race_configs(BASE, ["independent", "snapshot"], budget=100)
    assert describe_budget(ind) == "5 members x 20 epochs = 100 member-epochs"
    assert describe_budget(snap) == "1 trajectory x 5 cycles x 20 epochs = 100 member-epochs"


def test_a_snapshot_base_races_its_snapshots_against_members() -> None:
    snap_base = RunConfig(strategy=StrategySpec(kind="snapshot", members=1, snapshots=4),
                          optim=OptimSpec(schedule="cyclic", epochs=40))
    ind, snap = race_configs(snap_base, ["independent", "snapshot"])
    assert (ind.strategy.members, ind.optim.epochs, ind.optim.schedule) == (4, 10, "cosine")
    assert budget_of(snap) == budget_of(ind) == 40


@pytest.mark.parametrize(
    ("strategies", "budget", "fragment"),
    [
        (["independent"], 203, "multiple of 5"),
        (["snapshot"], 7, "cannot be split evenly over 5 cycles"),
        (["single"], 6000, "limit of 5000"),
        (["independent", "independent"], 200, "only once"),
        (["stacking"], 200, "unknown"),
        ([], 200, "at least one"),
        (["independent"], 0, "positive"),
    ],
)
def test_impossible_budgets_raise_a_clear_error(strategies: list[str], budget: int, fragment: str) -> None:
    with pytest.raises(BudgetError, match=fragment):
        race_configs(BASE, strategies, budget)


def test_snapshot_limit_of_the_config_is_reported_with_the_strategy() -> None:
    with pytest.raises(BudgetError, match="Snapshot ensemble"):
        race_configs(BASE.replace(**{"strategy.members": 12}), ["snapshot"], budget=12 * 500)


def test_scale_epochs_keeps_equal_budgets_equal() -> None:
    cfgs = race_configs(BASE, ["independent", "snapshot", "bootstrap"])
    for scale, cap in ((0.05, None), (0.5, None), (1.0, 3), (0.01, None)):
        scaled = [scale_epochs(c, scale, max_epochs=cap) for c in cfgs]
        assert len({budget_of(c) for c in scaled}) == 1, (scale, cap)
    assert scale_epochs(cfgs[1], 1.0, max_epochs=2).optim.epochs == 10  # 5 cycles x 2
    with pytest.raises(ValueError, match="positive"):
        scale_epochs(BASE, 0.0)


def test_race_table_one_row_per_strategy_on_real_runs() -> None:
    from ensemble_core.data import load_dataset
    from ensemble_core.training import train

    base = RunConfig(data=DataSpec(name="cubic", n=20), model=ModelSpec(hidden_layers=1, width=8),
                     strategy=StrategySpec(members=2), optim=OptimSpec(epochs=2, batch_size=20))
    data = load_dataset(base.data)
    strategies = ["independent", "bootstrap", "snapshot"]
    runs = [train(c, data) for c in race_configs(base, strategies)]
    table = race_table(runs, data, strategies)
    assert len(table) == 3
    assert list(table["strategy"]) == ["Independent seeds", "Bootstrap (bagging)", "Snapshot ensemble"]
    assert set(table["budget"]) == {4}
    assert list(table["members"]) == [2, 2, 2]
    for col in ("test NLL", "RMSE", "miscalibration area", "time (s)"):
        assert table[col].notna().all(), col
    # classification gets accuracy and ECE
    cbase = base.replace(data=DataSpec(name="moons", n=40))
    cdata = load_dataset(cbase.data)
    ctable = race_table([train(c, cdata) for c in race_configs(cbase, ["independent", "single"])], cdata)
    assert list(ctable["strategy"]) == ["Independent seeds", "Single network"]
    assert ((ctable["accuracy"] >= 0) & (ctable["accuracy"] <= 1)).all() and "ECE" in ctable


def test_mc_dropout_races_without_adversarial_training() -> None:
    """MC dropout trains without FGSM (StrategySpec refuses it); the other strategies keep it."""
    base = BASE.replace(**{"strategy.adversarial": True})
    ind, mc = race_configs(base, ["independent", "mc_dropout"])
    assert ind.strategy.adversarial and not mc.strategy.adversarial
    assert budget_of(ind) == budget_of(mc) == 200


class _SlowPool:
    """A pool whose submit takes a while (a race window) and whose jobs end when told to."""

    def __init__(self) -> None:
        import threading

        self.jobs: dict[str, SimpleNamespace] = {}
        self.submitted: list[int] = []
        self._lock = threading.Lock()

    def touch(self, owner: str) -> None:
        pass

    def submit(self, config, dataset, owner, **kwargs):
        import time

        time.sleep(0.02)  # two unguarded callers would both get here for the same entry
        with self._lock:
            job = SimpleNamespace(id=f"j{len(self.jobs)}", active=True, result=None, error=None, events=[],
                                  stop=lambda: None)
            self.jobs[job.id] = job
            self.submitted.append(config.seed)
        return job

    def get(self, job_id, owner):
        return self.jobs.get(job_id)


def test_a_sequence_stepped_by_two_sessions_at_once_submits_each_entry_once() -> None:
    """Two tabs of one browser poll the same RunSequence: every entry goes to the pool exactly once."""
    import pickle
    import threading
    import time

    from ensemble_core.race import RunSequence

    configs = [RunConfig().replace(seed=s) for s in range(4)]
    seq, fake = RunSequence(configs, None, [f"c{s}" for s in range(4)]), _SlowPool()
    stop = threading.Event()

    def poll() -> None:
        while not stop.is_set() and not seq.done:
            seq.step(fake, "me:compare")
            seq.events(fake, "me:compare")

    threads = [threading.Thread(target=poll) for _ in range(3)]
    for t in threads:
        t.start()
    def wait(cond) -> None:
        deadline = time.monotonic() + 10
        while not cond():
            if time.monotonic() > deadline:
                stop.set()
                raise AssertionError(f"the sequence did not advance; submitted {fake.submitted}")
            time.sleep(0.005)

    try:
        for k in range(4):  # end each job in turn while the sessions poll
            wait(lambda k=k: seq.job_ids[k] is not None)
            time.sleep(0.05)  # let every poller see the new entry (a second submit would happen now)
            job = fake.jobs[seq.job_ids[k]]
            job.result, job.active = SimpleNamespace(history=[]), False
            wait(lambda k=k: seq.runs[k] is not None)
    finally:
        stop.set()
        for t in threads:
            t.join(10)
    assert fake.submitted == [0, 1, 2, 3]  # once each, in order
    assert seq.done and seq.complete
    copy = pickle.loads(pickle.dumps(seq))  # the lock is not pickled; the copy gets its own
    assert copy.complete and copy._lock is not seq._lock


def test_a_restart_spike_in_one_panel_does_not_flatten_the_race_losses() -> None:
    """Losses in [-2, 1] and one spike of 240 in the snapshot panel: the shared axis keeps the curves readable."""
    from ensemble_core.race import losses_figure
    from ensemble_core.run import EpochEnd

    def events(spike: bool) -> list:
        return [EpochEnd(k, 40, [240.0 if spike and k == 20 else 1.0 - 3.0 * k / 40] * 2, None, {}, [0.01], 0.0)
                for k in range(1, 41)]

    configs = [BASE.replace(**{"optim.epochs": 40, "strategy.members": 2})] * 2
    fig = losses_figure([events(False), events(True)], configs, ["Independent", "Snapshot"]).to_dict()
    lo, hi = fig["layout"]["yaxis"]["range"]
    assert lo < -1.9 and 0.9 < hi < 5  # every ordinary loss is on the scale, the spike is not
    notes = [a for a in fig["layout"]["annotations"] if "spike" in a.get("text", "")]
    # one note (its two members spike), in the corner of the panel off the scale (not over the calm one)
    assert len(notes) == 1 and "2 spikes" in notes[0]["text"] and "240" in notes[0]["text"], notes
    assert notes[0]["xref"] == "x2 domain" and notes[0]["yref"] == "y2 domain", notes
    both = losses_figure([events(True), events(True)], configs, ["a", "b"]).to_dict()
    assert sorted(a["xref"] for a in both["layout"]["annotations"] if "spike" in a.get("text", "")) == \
        ["x domain", "x2 domain"]
    calm = losses_figure([events(False), events(False)], configs, ["a", "b"]).to_dict()
    assert "range" not in calm["layout"]["yaxis"]  # no spike: Plotly's own autorange
