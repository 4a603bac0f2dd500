"""The live charts' data cadence (dashboard.live._shown): a refresh that comes a little early still takes new data."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from dashboard import live


@pytest.fixture
def state(monkeypatch):
    """A plain dict as the session state (``_shown`` only gets and sets keys)."""
    ss: dict = {}
    monkeypatch.setattr(live.st, "session_state", ss)
    return ss


def job(events: int, active: bool = True, job_id: str = "j1") -> SimpleNamespace:
    return SimpleNamespace(id=job_id, events=list(range(events)), active=active)


def test_a_refresh_a_few_ms_early_takes_new_data(state):
    assert live._shown("main", job(10), 0.2, now=100.0) == 10
    # the refresh timer fires at 0.2 s, give or take: 0.19 s later is still a new frame
    assert live._shown("main", job(14), 0.2, now=100.19) == 14
    # far earlier than the interval (a pushed rerun, a click): the charts keep their data
    assert live._shown("main", job(20), 0.2, now=100.25) == 14
    assert live._shown("main", job(20), 0.2, now=100.35) == 20


def test_groups_keep_their_own_cadence(state):
    assert live._shown("main", job(5), live.WATCH_S, now=0.0) == 5
    assert live._shown("side", job(5), live.SIDE_S, now=0.0) == 5
    for step, n in enumerate((8, 11, 14), start=1):  # three watchable refreshes
        now = step * live.WATCH_S
        assert live._shown("main", job(n), live.WATCH_S, now=now) == n
        assert live._shown("side", job(n), live.SIDE_S, now=now) == (14 if step == 3 else 5)


def test_a_new_job_or_a_finished_one_shows_its_newest_events(state):
    assert live._shown("side", job(5), 1.0, now=0.0) == 5
    assert live._shown("side", job(3, job_id="j2"), 1.0, now=0.1) == 3  # another job: its own events at once
    assert live._shown("side", job(9, job_id="j2", active=False), 1.0, now=0.2) == 9  # ended: every event


def test_a_cleared_or_old_style_state_starts_afresh(state):
    state["ui_chart_upto"] = ("j1", 4, 0.0)  # what an older version kept there (a session across a deploy)
    assert live._shown("main", job(7), 0.2, now=0.05) == 7
    state.pop("ui_chart_upto")  # a full run of the Train page clears it
    assert live._shown("main", job(8), 0.2, now=0.06) == 8
