"""AppTest for the Sweep page: the cost check, bad values, a live sweep to its ranked results, Stop, Open in Train;
re-attaching from another tab, saved sweeps, shared links, the executor setting."""

from __future__ import annotations

import pytest
from apphelpers import ROOT, RouterPagesManager, chart_specs, open_page, run_until
from streamlit.testing.v1 import AppTest
from streamlit.testing.v1 import app_test as _app_test

from dashboard import identity


def _text(at) -> str:
    return " ".join(m.value for m in at.markdown)


def _error(at) -> str:
    """The first error's text, without Markdown's escapes."""
    return app_error.replace("\\", "") if (app_error := at.error[0].value if at.error else "") else ""


def _ended(at) -> bool:
    return any("Sweep finished" in s.value or "Sweep stopped" in s.value for s in at.success)


def _table(at, column: str = "rank", nth: int = 0):
    """The ``nth`` table on screen that has ``column`` (results tables have ``rank``; the saved list ``when``).

    (AppTest 1.67 gives ``st.dataframe`` no element id, so a table cannot be found by its key.)"""
    return [d.value for d in at.dataframe if column in d.value.columns][nth]


def _small(at, epochs: int) -> None:
    s = at.session_state["settings"]
    s.set("optim.epochs", epochs)
    s.set("strategy.members", 2)


def test_the_cost_is_checked_before_start_and_bad_values_are_named(app):
    open_page(app, "sweep")
    assert "**4 trials**" in _text(app) and "of computing in all" in _text(app)  # the suggested 4 learning rates
    assert not app.button(key="sweep_start").disabled
    app.text_input(key="sweep_values_optim.lr").set_value("0.01, fast").run()
    assert "This sweep cannot start" in _error(app) and "Learning rate: 'fast' is not valid" in _error(app)
    assert app.button(key="sweep_start").disabled
    app.text_input(key="sweep_values_optim.lr").set_value("0.01, 0.1").run()
    app.multiselect(key="sweep_params").set_value(["optim.lr", "optim.epochs"]).run()
    app.session_state["settings"].set("strategy.members", 20)
    app.text_input(key="sweep_values_optim.epochs").set_value("3000, 5000").run()
    app.text_input(key="sweep_values_optim.lr").set_value("0.001,0.002,0.003,0.004,0.005,0.006,0.007").run()
    assert "743 CPU-seconds (14 trials), over the limit of 600" in _error(app)  # 14 long trials: over the sweep's budget
    app.segmented_control(key="sweep_mode").set_value("random").run()
    assert app.text_input(key="sweep_ranges_optim.lr").value == "1e-4:1e-1:log"
    assert app.number_input(key="sweep_n").value == 8


def test_a_sweep_runs_live_ranks_its_trials_and_opens_one_in_train(app):
    open_page(app, "sweep")
    _small(app, 15)
    app.multiselect(key="sweep_params").set_value(["optim.lr", "seed"]).run()
    app.text_input(key="sweep_values_optim.lr").set_value("0.0005, 0.02").run()
    app.text_input(key="sweep_values_seed").set_value("0, 1").run()
    app.button(key="sweep_start").click().run()
    assert not app.exception
    run_until(app, _ended, timeout=300, pause=0.3)
    assert not app.error
    rows = app.dataframe[0].value
    assert list(rows["rank"]) == [1, 2, 3, 4]
    assert app.dataframe[0].proto.placeholder == "–"  # a trial not scored yet shows a dash, not "None"
    nll = list(rows["Test NLL"])
    assert nll == sorted(nll)
    charts = chart_specs(app)
    assert {t["type"] for t in charts["sweep_chart_parcoords"]["data"]} == {"parcoords"}
    dims = charts["sweep_chart_parcoords"]["data"][0]["dimensions"]
    assert [d["label"] for d in dims] == ["Learning rate (log scale)", "Seed", "Test NLL"]
    assert dims[0]["ticktext"] == ["0.0005", "0.02"]  # ticks at the values tried, not at their logarithms
    assert len(charts["sweep_chart_metric"]["data"]) == 2  # one panel per swept setting
    curves = charts["sweep_chart_curves"]["data"]
    assert len(curves) == 4 and all(len(c["x"]) == 15 for c in curves)
    best_lr = rows["Learning rate"].iloc[0]
    best_seed = rows["Seed"].iloc[0]
    app.button(key="sweep_open").click().run()
    cfg = app.session_state["settings"].config
    assert cfg.optim.lr == best_lr and cfg.seed == best_seed
    assert app.session_state["ui_page"] == "train"


def test_stop_ends_the_whole_sweep_and_keeps_finished_trials(app):
    open_page(app, "sweep")
    _small(app, 10)
    app.multiselect(key="sweep_params").set_value(["optim.lr", "optim.epochs"]).run()
    app.text_input(key="sweep_values_optim.lr").set_value("0.01, 0.02").run()
    app.text_input(key="sweep_values_optim.epochs").set_value("10, 4000").run()  # trial 2 is long
    app.button(key="sweep_start").click().run()
    sweep = app.session_state["sweep_run"]
    # Stop while the long trial trains (a trial still queued when Stop comes is skipped, not stopped)
    run_until(app, lambda at: sweep.counts().get("done", 0) >= 1 and sweep.trials[1].status == "running",
              timeout=300, pause=0.3)
    app.button(key="sweep_stop").click().run()
    run_until(app, _ended, timeout=60, pause=0.3)
    statuses = [t.status for t in sweep.trials]
    if getattr(sweep.plan, "programs", None) == ((0, 2), (1, 3)):  # batched: each lr-only pair is one program
        assert statuses == ["done", "stopped", "done", "stopped"]
    else:
        assert statuses[0] == "done" and statuses[1] == "stopped" and statuses[3] == "skipped"
    assert any("Sweep stopped" in s.value for s in app.success)
    rows = app.dataframe[0].value
    assert rows["rank"].iloc[0] == 1 and rows["status"].iloc[0] == "done"


# ------------------------------------------------------------------ lasting, saved, shared sweeps (issue 19)
class _FakeSweeps:
    """The run store's sweep API as /work/notes/store_api.md ("Changes (sweeps)") states it, in memory.

    Used only while ``ensemble_core.store.RunStore`` lacks ``save_sweep`` (it lands separately)."""

    def __init__(self) -> None:
        self.sweeps: dict[str, tuple[str, dict, float, float, list]] = {}
        self.tokens: dict[str, str] = {}

    def save_sweep(self, owner, summary, *, sweep_id=None, run_ids=()):
        import json
        import secrets
        import time

        from ensemble_core.store import StoreError

        json.dumps(summary)  # JSON-able, as the store requires
        if sweep_id is None:
            sweep_id = secrets.token_urlsafe(16)
            created = time.time()
        elif sweep_id not in self.sweeps or self.sweeps[sweep_id][0] != owner:
            raise StoreError("no such sweep among your sweeps")
        else:
            created = self.sweeps[sweep_id][2]
        self.sweeps[sweep_id] = (owner, json.loads(json.dumps(summary)), created, time.time(), list(run_ids))
        return sweep_id

    def _record(self, sweep_id):
        from types import SimpleNamespace

        owner, summary, created, updated, _ = self.sweeps[sweep_id]
        return SimpleNamespace(sweep_id=sweep_id, owner=owner, created=created, updated=updated,
                               label=summary.get("label", ""), task=summary.get("task", ""),
                               metric=summary.get("metric", ""), n_trials=summary.get("n_trials", 0),
                               n_done=summary.get("n_done", 0), status=summary.get("status", "running"),
                               shared=sweep_id in self.tokens.values())

    def _mine(self, sweep_id, owner):
        from ensemble_core.store import StoreError

        if sweep_id not in self.sweeps or self.sweeps[sweep_id][0] != owner:
            raise StoreError("no such sweep among your sweeps")

    def list_sweeps(self, owner, *, limit=None):
        recs = sorted((self._record(k) for k, v in self.sweeps.items() if v[0] == owner),
                      key=lambda r: -r.updated)
        return recs[:limit] if limit else recs

    def load_sweep(self, sweep_id, owner):
        self._mine(sweep_id, owner)
        return self._record(sweep_id), self.sweeps[sweep_id][1], self.sweeps[sweep_id][4]

    def delete_sweep(self, sweep_id, owner):
        self._mine(sweep_id, owner)
        del self.sweeps[sweep_id]
        self.tokens = {t: s for t, s in self.tokens.items() if s != sweep_id}

    def share_sweep(self, sweep_id, owner):
        import secrets

        self._mine(sweep_id, owner)
        for t, s in self.tokens.items():
            if s == sweep_id:
                return t
        token = secrets.token_urlsafe(24)
        self.tokens[token] = sweep_id
        return token

    def revoke_sweep(self, sweep_id, owner):
        self._mine(sweep_id, owner)
        self.tokens = {t: s for t, s in self.tokens.items() if s != sweep_id}

    def open_shared_sweep(self, token):
        from ensemble_core.store import StoreError

        if token not in self.tokens or self.tokens[token] not in self.sweeps:
            raise StoreError("this link was revoked or never existed")
        sweep_id = self.tokens[token]
        return self._record(sweep_id), self.sweeps[sweep_id][1]


@pytest.fixture
def lab(tmp_path, monkeypatch):
    """A run store in a temporary folder (the real one; its sweep API faked only until it lands)."""
    from dashboard import saved
    from ensemble_core import store as store_mod

    monkeypatch.setenv(store_mod.DATA_DIR_ENV, str(tmp_path / "lab"))
    real = store_mod.RunStore(tmp_path / "lab")
    if not hasattr(real, "save_sweep"):
        fake = _FakeSweeps()
        for name in ("save_sweep", "list_sweeps", "load_sweep", "delete_sweep", "share_sweep", "revoke_sweep",
                     "open_shared_sweep"):
            setattr(real, name, getattr(fake, name))
    monkeypatch.setattr(saved, "store", lambda: real)
    return real


def _browser(monkeypatch, token: str, params: dict[str, str] | None = None) -> AppTest:
    """A new session of the whole app for the browser ``token`` (as its cookie would say), on the Sweep page."""
    monkeypatch.setattr(_app_test, "PagesManager", RouterPagesManager)
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=60)
    at.session_state[identity.STATE_KEY] = token
    at.query_params.update(params or {})
    at.run()
    assert not at.exception, [e.message for e in at.exception]
    if not params:
        open_page(at, "sweep")
    return at


def _tiny(at: AppTest, lrs: str = "0.003, 0.03", epochs: int = 8) -> None:
    _small(at, epochs)
    at.multiselect(key="sweep_params").set_value(["optim.lr"]).run()
    at.text_input(key="sweep_values_optim.lr").set_value(lrs).run()


def _finished_sweep(monkeypatch, lab, token: str) -> AppTest:
    at = _browser(monkeypatch, token)
    _tiny(at)
    at.button(key="sweep_start").click().run()
    run_until(at, _ended, timeout=300, pause=0.3)
    return at


def test_a_second_tab_of_the_browser_reattaches_and_can_stop_another_browser_never_sees_it(monkeypatch, lab):
    me, other = identity.new_token(), identity.new_token()
    a = _browser(monkeypatch, me)
    _tiny(a, "0.01, 0.02, 0.03", epochs=4000)  # long trials: still running when the second tab opens
    a.button(key="sweep_start").click().run()
    sweep = a.session_state["sweep_run"]
    assert sweep.active
    b = _browser(monkeypatch, me)  # a reload / second tab: a new session of the same browser
    assert b.session_state["sweep_run"] is sweep  # re-attached to the same live sweep
    assert b.button(key="sweep_start").disabled and not b.button(key="sweep_stop").disabled
    assert b.get("progress") and "trials** ended" in b.get("progress")[0].proto.text
    c = _browser(monkeypatch, other)  # another browser: nothing of it
    assert "sweep_run" not in c.session_state and c.button(key="sweep_stop").disabled
    b.button(key="sweep_stop").click().run()  # Stop in the second tab ends the sweep of the first
    assert sweep.wait(60)
    run_until(a, _ended, timeout=60, pause=0.3)
    assert any("Sweep stopped" in s.value for s in a.success)
    assert not [t for t in sweep.trials if t.status in ("pending", "queued", "running")]


def test_a_finished_sweep_is_saved_listed_and_opens_read_only(monkeypatch, lab):
    me = identity.new_token()
    at = _finished_sweep(monkeypatch, lab, me)
    live_rows = _table(at)
    saved_rows = _table(at, "when")
    assert list(saved_rows["trials"]) == ["2 of 2 done"] and list(saved_rows["swept"]) == ["Learning rate"]
    (rec,) = lab.list_sweeps(me)
    assert rec.status == "done" and rec.n_done == 2 and rec.metric == "test_nll"
    _, summary, run_ids = lab.load_sweep(rec.sweep_id, me)
    assert len(run_ids) == 2 and all(run_ids)  # each trial's run is on the Runs page too
    assert all(len(t["curve"]) == 8 for t in summary["trials"])  # the validation curves are kept
    at.button(key="sweep_list_open").click().run()
    assert not at.exception, [e.message for e in at.exception]
    assert any("Saved sweep of" in m.value for m in at.markdown)
    rows = _table(at, nth=1)  # the opened sweep's results, read-only (below the finished sweep's own)
    assert list(rows["Learning rate"]) == list(live_rows["Learning rate"])
    assert list(rows["Test NLL"]) == pytest.approx(list(live_rows["Test NLL"]))
    assert not lab.list_sweeps(identity.new_token())  # another browser has no saved sweeps
    at.button(key="sweep_list_delete").click().run()
    assert at.button(key="sweep_list_delete").label == "Really delete?" and lab.list_sweeps(me)
    at.button(key="sweep_list_delete").click().run()  # "Really delete?"
    assert not at.exception, [e.message for e in at.exception]
    assert not lab.list_sweeps(me)


def test_a_shared_link_opens_read_only_and_revoked_it_says_so(monkeypatch, lab):
    me, visitor = identity.new_token(), identity.new_token()
    at = _finished_sweep(monkeypatch, lab, me)
    owner_rows = _table(at)
    share = next(b for b in at.button if b.label == "Make a link")  # the Share box of the ended sweep
    share.click().run()
    (rec,) = lab.list_sweeps(me)
    assert rec.shared
    link = next(c.value for c in at.code if "?sweep=" in c.value)
    token = link.rsplit("=", 1)[1]
    guest = _browser(monkeypatch, visitor, {"sweep": token})
    assert guest.session_state["ui_page"] == "sweep"
    assert any("A shared sweep, run" in i.value for i in guest.info)
    rows = _table(guest)
    assert rows["trial"].iloc[0] == owner_rows["trial"].iloc[0]  # the same best trial
    assert rows["Test NLL"].iloc[0] == pytest.approx(owner_rows["Test NLL"].iloc[0])
    assert not [b for b in guest.button if b.key in ("sweep_start", "sweep_stop")]  # read-only: no Start/Stop
    charts = chart_specs(guest)
    assert {"sweep_shared_chart_metric", "sweep_shared_chart_parcoords", "sweep_shared_chart_curves"} <= set(charts)
    best_lr = rows["Learning rate"].iloc[0]
    guest.button(key="sweep_shared_open").click().run()
    assert guest.session_state["settings"].config.optim.lr == pytest.approx(best_lr)
    assert guest.session_state["settings"].config.optim.epochs == 8  # the trial's whole config, not just lr
    assert guest.session_state["ui_page"] == "train"
    if hasattr(type(lab), "save_sweep"):  # the real store: a server restart (a new store on the folder) keeps the link
        from dashboard import saved
        from ensemble_core.store import RunStore

        restarted = RunStore(lab.root)
        monkeypatch.setattr(saved, "store", lambda: restarted)
        later = _browser(monkeypatch, identity.new_token(), {"sweep": token})
        assert _table(later)["trial"].iloc[0] == owner_rows["trial"].iloc[0]
        monkeypatch.setattr(saved, "store", lambda: lab)
    lab.revoke_sweep(rec.sweep_id, me)
    again = _browser(monkeypatch, identity.new_token(), {"sweep": token})
    assert any("This sweep link cannot be opened" in w.value and "revoked" in w.value for w in again.warning)
    assert not again.dataframe


@pytest.mark.parametrize("bad", ["x", "<script>alert(1)</script>", "A" * 5000, "../../etc/passwd"])
def test_a_malformed_sweep_link_gets_a_message_not_a_traceback(monkeypatch, lab, bad):
    at = _browser(monkeypatch, identity.new_token(), {"sweep": bad})
    assert not at.exception
    assert any("This sweep link cannot be opened" in w.value for w in at.warning)
    at.button(key="sweep_shared_close").click().run()  # back to the visitor's own Sweep page
    assert not at.exception and at.button(key="sweep_start") is not None


def test_the_executor_is_a_setting_offered_with_ray(monkeypatch, lab):
    from dashboard import executors

    monkeypatch.setenv("LAB_EXECUTOR", "ray")
    monkeypatch.setattr(executors, "ray_ok", lambda: True)
    at = _browser(monkeypatch, identity.new_token())
    s = at.session_state["settings"]
    assert s.executor is None and s.effective_executor() == "ray"  # the server's default
    assert at.radio(key="sweep_executor").value == "ray" and "the Ray cluster" in _text(at)
    at.radio(key="sweep_executor").set_value("process").run()
    assert at.session_state["settings"].executor == "process"
    assert "this server's worker processes" in _text(at)
    monkeypatch.setattr(executors, "ray_ok", lambda: False)  # no Ray on this server: no control, processes
    at.session_state["settings"].set("executor", "ray")
    at.run()
    assert not [r for r in at.radio if r.key == "sweep_executor"] and "this server's worker processes" in _text(at)


def test_the_registry_is_one_sweep_per_browser_bounded_and_forgets_ended_sweeps(monkeypatch):
    import time
    from types import SimpleNamespace

    from dashboard import sweep_live

    def entry(owner, active=False, ended_ago=0.0):
        stopped = []
        sweep = SimpleNamespace(active=active, finished_at=None if active else time.monotonic() - ended_ago,
                                stop=lambda: stopped.append(True), stopped=stopped)
        return sweep_live.LiveSweep(sweep, owner, "regression", "toy")

    monkeypatch.setattr(sweep_live, "_LIVE", {})
    monkeypatch.setattr(sweep_live, "MAX_LIVE", 5)
    a = identity.new_token()
    first = entry(a, active=True)
    sweep_live.register(first)
    second = entry(a, active=True)
    sweep_live.register(second)  # a new sweep of the same browser replaces and stops the old one
    assert sweep_live.live_entry(a) is second and first.sweep.stopped == [True]
    old = identity.new_token()
    sweep_live.register(entry(old, ended_ago=sweep_live.FORGET_AFTER_S + 1))
    assert sweep_live.live_entry(old) is None  # ended long ago: forgotten (it is in the saved list)
    for _ in range(20):
        sweep_live.register(entry(identity.new_token(), ended_ago=1.0))
    assert sweep_live.live_count() <= 5 and sweep_live.live_entry(a) is second  # bounded; the running one stays


def test_saved_results_round_trip_and_refuse_what_is_not_a_sweep():
    from dashboard.sweep_view import SweepResults, TrialView

    res = SweepResults(spec={"base": {}}, metric="test_nll", paths=("optim.lr",), task="regression", dataset="toy",
                       trials=(TrialView(0, {"optim.lr": 0.01}, "done", {"test_nll": 1.5}, 2.0, None, ((1, 2.0),)),
                               TrialView(1, {"optim.lr": 0.1}, "done", {"test_nll": 0.5}, 2.5, None, ((1, 1.0),))))
    back = SweepResults.from_dict(res.to_dict())
    assert back == res and back.best().index == 1 and [t.index for t in back.ranked()] == [1, 0]
    for bad in (None, [], {"metric": "rm -rf"}, {**res.to_dict(), "paths": []},
                {**res.to_dict(), "trials": [{"params": {}}]}, {**res.to_dict(), "trials": [{}] * 1000}):
        with pytest.raises(ValueError):
            SweepResults.from_dict(bad)


def test_start_uses_the_values_typed_in_the_same_click(monkeypatch, lab):
    """Typing values and clicking Start at once (the click's blur sends the text in the same rerun)."""
    at = _browser(monkeypatch, identity.new_token())
    _small(at, 5)
    at.text_input(key="sweep_values_optim.lr").set_value("0.002, 0.02")  # not sent on its own
    at.button(key="sweep_start").click().run()
    sweep = at.session_state["sweep_run"]
    assert [t.params["optim.lr"] for t in sweep.trials] == [0.002, 0.02]
    sweep.stop()
    assert sweep.wait(60)


def test_programs_line_counts_only_shared_programs_as_batched() -> None:
    from types import SimpleNamespace

    from dashboard.sweep_view import programs_line

    assert programs_line(SimpleNamespace(configs=[0] * 12, programs=[[0, 1, 2, 3]] * 3)).endswith(
        "in **3 batched programs**")
    mixed = programs_line(SimpleNamespace(configs=[0] * 6, programs=[[0, 1], [2, 3], [4], [5]]))
    assert mixed.endswith("in **4 programs** (4 trials batched together)")
    assert programs_line(SimpleNamespace(configs=[0] * 4, programs=[[0], [1], [2], [3]])) == "**4 trials**"
