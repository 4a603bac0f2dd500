"""A running lesson or strategy race survives a reload, a reopened tab and a second tab of the same browser.

Two AppTest sessions given the same browser token (as one browser's cookie would) are two tabs of one
browser (or a tab and its reload: a reload is a new session with the same cookie); a session with
another token is another browser.  The registry itself (``dashboard/sequences.py``) is tested with a
fake clock for its bounds.
"""

from __future__ import annotations

import pytest
from apphelpers import ROOT, RouterPagesManager, chart_specs, run_until
from streamlit.testing.v1 import AppTest
from streamlit.testing.v1 import app_test as _app_test

from dashboard import identity, pool, sequences
from ensemble_core import store as store_mod


@pytest.fixture(autouse=True)
def lab(tmp_path, monkeypatch):
    """Runs saved by these tests go to a store of their own."""
    monkeypatch.setenv(store_mod.DATA_DIR_ENV, str(tmp_path / "lab"))


@pytest.fixture
def tab(monkeypatch):
    """A factory: a new session of ``token``'s browser on ``pages/<page>.py``."""
    monkeypatch.setattr(_app_test, "PagesManager", RouterPagesManager)

    def make(token: str, page: str, params: dict[str, str] | None = None) -> AppTest:
        at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=60)
        at.session_state[identity.STATE_KEY] = token
        at.query_params.update(params or {})
        at.run()
        at.switch_page(f"pages/{page}.py").run()
        assert not at.exception, [e.message for e in at.exception]
        return at

    return make


def _race_finished(at: AppTest) -> bool:
    return any(s.value == "Results on the test set" for s in at.subheader)


def _has_button(at: AppTest, key: str) -> bool:
    return any(b.key == key for b in at.button)


def _start_race(at: AppTest, budget: int = 6, strategies=("independent", "single"), pace: str = "watchable") -> None:
    at.multiselect(key="compare_strategies").set_value(list(strategies)).run()
    at.number_input(key="compare_members").set_value(2).run()
    at.number_input(key="compare_budget").set_value(budget).run()
    at.session_state["settings"].pace = pace
    at.button(key="compare_start").click().run()
    assert not at.exception, [e.message for e in at.exception]


def _captions(at: AppTest) -> str:
    return " | ".join(c.value for c in at.caption)


# ------------------------------------------------------------------ the race
def test_a_reloaded_race_continues_and_its_stop_works_for_every_tab(tab):
    me, other = identity.new_token(), identity.new_token()
    a = tab(me, "compare")
    _start_race(a)  # watchable: ~9 s per strategy, so it is still running below
    seq = a.session_state["compare_seq"]
    assert not seq.done and _has_button(a, "compare_stop")

    b = tab(me, "compare")  # a reload of the page (or a second tab): a new session, the same browser
    assert b.session_state["compare_seq"] is seq  # the same live sequence, not a copy
    assert _has_button(b, "compare_stop") and b.get("progress"), "B shows the live view"
    assert "Re-attached to the race" in _captions(b)
    assert "compare_live" in chart_specs(b)  # the live loss chart
    assert b.button(key="compare_start").disabled  # one race at a time, as in the tab that started it
    assert a.button(key="compare_start").disabled  # and in that tab from the click on (no second race by a click)
    # the controls above the live view describe the race it shows (not this tab's defaults)
    assert b.multiselect(key="compare_strategies").value == ["independent", "single"]
    assert b.number_input(key="compare_members").value == 2 and b.number_input(key="compare_budget").value == 6

    c = tab(other, "compare")  # another browser sees nothing of it
    assert "compare_seq" not in c.session_state or c.session_state["compare_seq"] is None
    assert not _has_button(c, "compare_stop") and not c.button(key="compare_start").disabled
    assert "Re-attached" not in _captions(c)

    b.button(key="compare_stop").click().run()  # Stop from the re-attached tab stops the race
    assert seq.stopped
    # the tab that started it shows the stopped race's end (once the job has stopped), not a live view
    run_until(a, lambda at: not _has_button(at, "compare_stop"), timeout=60, pause=0.2)
    job = pool.pool().get(seq.job_ids[0], me + ":compare")
    assert job is not None and job.stop_requested  # the job in the pool was asked to stop
    assert seq.errors[1] and "Skipped" in seq.errors[1]  # the strategy not started is skipped


def test_a_race_that_ends_after_a_reload_shows_its_results_there(tab):
    me = identity.new_token()
    a = tab(me, "compare")
    _start_race(a, budget=4, pace="fast")
    b = tab(me, "compare")
    assert b.session_state["compare_seq"] is a.session_state["compare_seq"]
    run_until(b, _race_finished, timeout=240, pause=0.2)
    table_b = b.dataframe[0].value
    assert list(table_b["strategy"]) == ["Independent seeds", "Single network"]
    run_until(a, _race_finished, timeout=60, pause=0.2)  # the original tab shows the same results
    assert a.dataframe[0].value["test NLL"].tolist() == table_b["test NLL"].tolist()
    # a reload right after the end still shows the result
    c = tab(me, "compare")
    assert _race_finished(c) and c.dataframe[0].value["test NLL"].tolist() == table_b["test NLL"].tolist()
    # each raced run was saved once, though three tabs collected the race
    from ensemble_core.store import RunStore

    assert len(RunStore.default().list(me)) == 2


def test_a_new_race_in_one_tab_replaces_and_stops_the_other_tabs_race(tab):
    me = identity.new_token()
    a = tab(me, "compare")
    _start_race(a)
    first = a.session_state["compare_seq"]
    b = tab(me, "compare")
    assert b.session_state["compare_seq"] is first
    b.button(key="compare_stop").click().run()  # (Start is disabled while it runs: stop, then start anew)
    _start_race(b, strategies=("independent", "bootstrap"))
    second = b.session_state["compare_seq"]
    assert second is not first and first.stopped
    a.run()  # the first tab follows the browser's newer race
    assert a.session_state["compare_seq"] is second and _has_button(a, "compare_stop")
    b.button(key="compare_stop").click().run()
    assert second.stopped


# ------------------------------------------------------------------ the lesson
@pytest.fixture
def tiny_lessons(monkeypatch):
    """Tiny runs: 2 epochs per member / per cycle (the page trains ``Lesson.configs``)."""
    from ensemble_core.lessons import Lesson

    full = Lesson.configs
    monkeypatch.setattr(Lesson, "configs", lambda self, scale=1.0, max_epochs=None: full(self, scale, max_epochs=2))


def _lesson_finished(at: AppTest) -> bool:
    return any("Scores on the test set" in m.value for m in at.markdown)


def test_a_lesson_re_attaches_in_a_new_tab_and_shows_its_checked_claims(tab, tiny_lessons):
    me, other = identity.new_token(), identity.new_token()
    a = tab(me, "lessons")
    a.selectbox(key="lessons_pick").set_value("bootstrap").run()
    a.session_state["settings"].pace = "watchable"
    a.button(key="lessons_run").click().run()
    seq = a.session_state["lessons_seq"]
    assert not seq.done and _has_button(a, "lessons_stop")

    b = tab(me, "lessons")  # a new tab that opens on the first lesson: it shows the running one
    assert b.session_state["lessons_seq"] is seq
    assert b.selectbox(key="lessons_pick").value == "bootstrap"
    assert _has_button(b, "lessons_stop") and "lessons_live" in chart_specs(b)
    assert a.button(key="lessons_run").disabled and b.button(key="lessons_run").disabled  # no restart by a click
    assert "Re-attached to the lesson" in _captions(b)

    c = tab(other, "lessons")  # another browser: nothing
    assert c.session_state["lessons_seq"] is None if "lessons_seq" in c.session_state else True
    assert not _has_button(c, "lessons_stop")

    run_until(b, _lesson_finished, timeout=240, pause=0.3)
    marks = " ".join(m.value for m in b.markdown)
    assert "✓" in marks or "✗" in marks  # the claims are checked in the re-attached tab too
    assert "Checked on your run" in _captions(b)
    assert b.session_state["run"] is seq.runs[-1]  # its main run became this tab's current run
    run_until(a, _lesson_finished, timeout=60, pause=0.2)
    assert not a.button(key="lessons_run").disabled  # ended: it can run again


def test_a_lesson_stopped_from_a_reload(tab, tiny_lessons):
    me = identity.new_token()
    a = tab(me, "lessons", {"lesson": "figure1"})
    a.session_state["settings"].pace = "watchable"
    a.button(key="lessons_run").click().run()
    seq = a.session_state["lessons_seq"]
    b = tab(me, "lessons", {"lesson": "figure1"})  # the reload keeps the URL
    assert b.session_state["lessons_seq"] is seq
    b.button(key="lessons_stop").click().run()
    assert seq.stopped
    run_until(b, lambda at: not _has_button(at, "lessons_stop"), timeout=60, pause=0.2)
    assert seq.done
    assert any("Skipped" in w.value for w in b.warning)  # the panels not started say so, as in the first tab


# ------------------------------------------------------------------ the registry's bounds
class _Seq:
    def __init__(self) -> None:
        self.done = False


def test_registry_keeps_one_per_browser_and_kind_and_isolates_browsers():
    reg = sequences.Registry()
    s1, s2, s3 = _Seq(), _Seq(), _Seq()
    e1, old = reg.register("A", "compare", s1, {"strategies": ("single",)})
    assert old is None and reg.get("A", "compare").seq is s1
    assert reg.get("B", "compare") is None and reg.get("A", "lesson") is None  # other browser, other kind
    e2, old = reg.register("A", "compare", s2)
    assert old is e1 and reg.get("A", "compare").seq is s2 and e2.generation > e1.generation
    reg.register("A", "lesson", s3)
    assert len(reg) == 2
    with pytest.raises(ValueError, match="kind"):
        reg.register("A", "train", s3)


def test_registry_forgets_finished_idle_and_excess_sequences():
    now = [0.0]
    reg = sequences.Registry(finished_ttl_s=60, idle_ttl_s=300, max_entries=3, clock=lambda: now[0])
    done, running, idle = _Seq(), _Seq(), _Seq()
    reg.register("done", "compare", done)
    reg.register("running", "compare", running)
    reg.register("idle", "compare", idle)
    done.done = True
    now[0] = 30.0
    assert reg.get("done", "compare") is not None  # a reload right after the end still finds it
    assert reg.get("running", "compare") is not None
    now[0] = 100.0  # the finished one ended (was first seen done) at 30 s: 70 s ago, past 60
    assert reg.get("done", "compare") is None
    assert reg.get("running", "compare") is not None  # still running and looked at: kept
    now[0] = 350.0  # nobody looked at "idle" since 0 s (every tab closed): forgotten
    assert reg.get("idle", "compare") is None and reg.get("running", "compare") is not None
    # the size cap: finished ones go first, then the least recently seen
    f = _Seq()
    reg.register("f", "compare", f)
    f.done = True
    reg.register("x", "compare", _Seq())
    reg.register("y", "compare", _Seq())
    reg.register("z", "compare", _Seq())
    assert len(reg) == 3 and reg.get("f", "compare") is None and reg.get("running", "compare") is None
