"""A running race and a running lesson survive a reload in a real Chromium; another browser sees neither.

Both run at the watchable pace (~9 s per trained run, however fast the machine), so the reload lands
mid-way.  After the reload the page is a new Streamlit session of the same browser (its identity
cookie): it must show the same live progress, still advancing, and its Stop button must stop it.
A fresh browser context is another person: nothing of it shows there.
"""

from __future__ import annotations

import re
import time

import pytest
from e2e_fixtures import browser, chromium_path, open_idle, store_server  # noqa: F401 - fixtures
from e2e_server import ROOT, wait_app_idle

pytestmark = pytest.mark.e2e

SCREENS = ROOT / "artifacts" / "screens"
# The live view's progress bar: its text (which run, which epoch) and its value in percent.
PROGRESS_JS = """() => { const p = document.querySelector('.st-key-live_view [data-testid="stProgress"]');
    if (!p) return null; const bar = p.querySelector('[role="progressbar"]');
    return {text: p.innerText, value: bar ? Number(bar.getAttribute('aria-valuenow')) : -1}; }"""
# The results table's "epochs done" per entry ({label: epochs}), or null before the table shows.
EPOCHS_JS = """() => { for (const t of document.querySelectorAll('[data-testid="stTable"] table')) {
    const head = [...t.querySelectorAll('thead th')].map(th => th.innerText.trim());
    const col = head.indexOf('epochs done'); if (col < 0) continue; const out = {};
    for (const tr of t.querySelectorAll('tbody tr')) {
        const cells = [...tr.children].map(c => c.innerText.trim());
        out[cells[0]] = Number(cells[col].replace(/,/g, '')); }
    return out; } return null; }"""


@pytest.fixture(scope="module")
def srv(store_server):  # noqa: F811 - the fixture imported above
    return store_server


def _with_cookie(ctx, url: str):
    """A page of ``ctx`` once the browser holds its identity cookie (written after the first page run)."""
    page = open_idle(ctx, url)
    deadline = time.monotonic() + 20
    while not any(c["name"] == "del_browser" for c in ctx.cookies()) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert any(c["name"] == "del_browser" for c in ctx.cookies()), "the browser got its identity cookie"
    return page


def _where(page) -> tuple[float, str]:
    """How far the live view is: (position as ``run index + epoch fraction``, the progress text)."""
    p = page.evaluate(PROGRESS_JS)
    if p is None:
        return -1.0, ""
    m = re.search(r"(\d+) of (\d+).*?epoch (\d+) of (\d+)", p["text"], re.S)
    if m is None:
        return p["value"] / 100.0, p["text"]
    i, _, e, n = map(int, m.groups())
    return i - 1 + e / n, p["text"]


def _wait_past(page, than: float, timeout: float = 40) -> float:
    deadline = time.monotonic() + timeout
    last = ""
    while time.monotonic() < deadline:
        at, last = _where(page)
        if at > than:
            return at
        time.sleep(0.25)
    raise AssertionError(f"the live progress did not pass {than:.3f}; it says {last!r}")


def _reload_and_check(page, stop_label: str, shot: str) -> None:
    """Mid-way: reload, the progress continues from where it was and advances; a screenshot; Stop works."""
    before = _wait_past(page, 0.15)
    page.reload()
    wait_app_idle(page)
    page.wait_for_function(f"() => ({PROGRESS_JS})() !== null", timeout=60_000)  # the live view, re-attached
    after = _wait_past(page, before - 1e-9)  # continues from where it was (no restart from 0) ...
    assert after >= before, (before, after)
    _wait_past(page, after)  # ... and keeps advancing
    assert page.get_by_text("Re-attached to the", exact=False).count() == 1
    page.evaluate("() => document.querySelector('.st-key-live_view').scrollIntoView({block: 'end'})")
    page.screenshot(path=str(SCREENS / shot), full_page=True)
    m, said, deadline = None, "", time.monotonic() + 30
    while m is None and time.monotonic() < deadline:  # between entries the bar says "starting" for a moment
        _, said = _where(page)
        m = re.search(r"\d+ of \d+: (.+?) · epoch (\d+) of (\d+)", said)
        time.sleep(0.1)
    assert m, f"no entry showed its epochs within 30 s; the progress says {said!r}"
    label, planned = m.group(1).strip(), int(m.group(3))
    page.get_by_role("button", name=stop_label, exact=True).click()
    try:  # the live view ends as stopped: the entries not started say so, the stopped one kept its epochs
        page.wait_for_function(f"() => ({PROGRESS_JS})() === null && (document.body.innerText.includes("
                               f"'Skipped: the sequence was stopped.') || ({EPOCHS_JS})() !== null)", timeout=60_000)
        if "Skipped: the sequence was stopped." not in page.inner_text("body"):  # stopped in the last entry
            assert page.evaluate(EPOCHS_JS)[label] < planned, (label, planned, page.evaluate(EPOCHS_JS))
    except Exception:
        page.screenshot(path=str(ROOT / "artifacts" / f"e2e_FAILED_stop_{shot}"), full_page=True)
        raise


def test_a_race_survives_a_reload_and_another_browser_sees_nothing(browser, srv):  # noqa: F811
    SCREENS.mkdir(parents=True, exist_ok=True)
    mine = browser.new_context(viewport={"width": 1440, "height": 1000})
    other = browser.new_context(viewport={"width": 1440, "height": 1000})
    try:
        page = _with_cookie(mine, srv.url + "/compare?pace=watchable")  # ~9 s per strategy
        for name in ("Single network", "MC dropout"):  # 5 strategies: the Stop below lands before the last
            page.locator(".st-key-compare_strategies input").click()
            page.get_by_role("option", name=name).click()
            page.keyboard.press("Escape")
            time.sleep(0.3)
            wait_app_idle(page)
        page.get_by_role("button", name="Start the race").click()
        _wait_past(page, 0.0, timeout=120)  # the first run after the server starts loads the engine
        stranger = open_idle(other, srv.url + "/compare")
        assert stranger.get_by_role("button", name="Stop the race").count() == 0
        assert stranger.evaluate(PROGRESS_JS) is None and stranger.get_by_text("Re-attached").count() == 0
        _reload_and_check(page, "Stop the race", "reattach_race.png")
        stranger.reload()
        wait_app_idle(stranger)
        assert stranger.get_by_text("Skipped").count() == 0 and stranger.get_by_text("Re-attached").count() == 0
    finally:
        mine.close()
        other.close()


def test_a_lesson_survives_a_reload(browser, srv):  # noqa: F811
    SCREENS.mkdir(parents=True, exist_ok=True)
    mine = browser.new_context(viewport={"width": 1440, "height": 1000})
    try:
        page = _with_cookie(mine, srv.url + "/lessons?lesson=figure1&pace=watchable")  # 4 panels, ~9 s each
        page.get_by_role("button", name="Run this lesson").click()
        _wait_past(page, 0.0, timeout=120)
        _reload_and_check(page, "Stop", "reattach_lesson.png")
        stranger = browser.new_context()
        try:
            p = open_idle(stranger, srv.url + "/lessons?lesson=figure1")
            assert p.get_by_text("Press Run this lesson", exact=False).count() == 1  # nothing of ours
        finally:
            stranger.close()
    finally:
        mine.close()
