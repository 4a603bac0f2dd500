"""Issue 16's attacks through a live ``streamlit run app.py`` server, measured from outside.

For every attack (hostile links, hostile run zips, a CSV with a Markdown-image column name) the
test asserts: a clear message and no exception on the page, the server's own resident memory grows
by at most ~300 MB, ``/_stcore/health`` always answers within 1 s, and nothing was fetched from
the attacker's URL.  The server is this module's own (not the shared e2e one), so the memory it
measures is the attack's.  ``benchmarks/bench_live_attacks.py`` prints the same measurements as a
table (and against an older checkout).
"""

from __future__ import annotations

import pytest
from e2e_fixtures import browser, chromium_path  # noqa: F401 - fixtures
from e2e_server import Server
from live_attacks import MAX_GROWTH_MB, MAX_HEALTH_S, attacks, run_attack

pytestmark = pytest.mark.e2e

#: What the page must say for each attack (a substring of its messages, case-insensitive).
SAYS = {
    "link: schedule chart, 100k rows, batch 1, 1500 ep": "classroom limit is 50,000 rows",
    "link: 10k rows, batch 8, 5000 ep, 20 members": "classroom limit",
    "link: 15k rows, full batch, 20 x 1x1024": "classroom limit",
    "link: features JSON nested 3,000 deep": "link",
    "import: run.json with a 100 MB lr_trace": "cannot be imported",
    "import: float8 40-member 8x1024 model": "cannot be imported",
    "upload: CSV column named as a Markdown image": "cannot be used",
}


@pytest.fixture(scope="module")
def attacked_server():
    srv = Server()
    try:
        srv.wait_healthy()
        yield srv
    finally:
        srv.stop()


@pytest.fixture(scope="module")
def warm(browser, attacked_server, tmp_path_factory):  # noqa: F811
    """Open every page once, so the first attack is not charged the server's cold imports."""
    context = browser.new_context()
    page = context.new_page()
    from e2e_server import wait_app_idle

    for path in ("/", "/train", "/data", "/uncertainty", "/lessons", "/compare"):
        page.goto(attacked_server.url + path)
        wait_app_idle(page, timeout_ms=120_000)
    context.close()
    return attacked_server


@pytest.mark.parametrize("name", list(SAYS))
def test_an_attack_gets_a_message_and_leaves_the_server_healthy(name, browser, warm, tmp_path):  # noqa: F811
    out = run_attack(browser, warm, name, attacks()[name], tmp_path)
    assert out.exceptions == 0, out
    assert SAYS[name].lower() in out.said.lower(), out.said
    assert out.growth_mb <= MAX_GROWTH_MB, f"server grew {out.growth_mb:.0f} MB: {out}"
    assert out.health_failures == 0 and out.health_max_s <= MAX_HEALTH_S, out
    assert not out.leaked_requests, out.leaked_requests


def test_tabs_of_one_browser_share_one_quota(browser, warm):  # noqa: F811
    """Three tabs of one browser: a run on Train, a race on Compare, then a lesson is refused (2 per browser).

    Another browser (a new context, its own cookie) still starts a run at once.
    """
    from e2e_server import wait_app_idle

    long_run = "/train?data.n=200&optim.epochs=5000&page=train"  # 35k steps: ~10 s or more
    context = browser.new_context()
    tabs = [context.new_page() for _ in range(3)]
    try:
        tabs[0].goto(warm.url + long_run)
        wait_app_idle(tabs[0])
        tabs[0].get_by_role("button", name="Train", exact=True).click()
        tabs[0].wait_for_function("() => /Epoch \\d+ of 5000/.test(document.body.textContent)", timeout=60_000)
        # the second tab of the same browser shows that run (re-attached), it does not start its own
        tabs[1].goto(warm.url + long_run)
        tabs[1].wait_for_function("() => /Epoch \\d+ of 5000/.test(document.body.textContent)", timeout=60_000)
        tabs[1].goto(warm.url + "/compare?pace=watchable")  # a race of ~9 s per strategy
        wait_app_idle(tabs[1])
        tabs[1].get_by_role("button", name="Start the race").click()
        wait_app_idle(tabs[1])
        tabs[2].goto(warm.url + "/lessons")
        wait_app_idle(tabs[2])
        tabs[2].get_by_role("button", name="Run this lesson").click()
        tabs[2].wait_for_function("() => document.body.textContent.includes('limit is 2 per user')", timeout=60_000)
        other = browser.new_context()
        try:
            page = other.new_page()
            page.goto(warm.url + "/lessons")
            wait_app_idle(page)
            page.get_by_role("button", name="Run this lesson").click()
            wait_app_idle(page)
            assert "limit is 2 per user" not in page.locator("body").text_content()
        finally:
            other.close()
    finally:
        for tab in tabs:  # stop what runs, so the other tests' measurements are not shared with it
            _stop_everything(tab)
        context.close()


def _stop_everything(tab) -> None:
    """Clean-up: press every Stop button of ``tab`` (brought to the front: a background tab's frames are throttled).

    A Stop that cannot be pressed (the run ended meanwhile) is not this test's failure; the tab is
    reloaded once and tried again, so what it started does not slow the next tests down.
    """
    from e2e_server import wait_app_idle

    tab.bring_to_front()
    for attempt in range(2):
        try:
            for name in ("Stop", "Stop the race", "Stop the lesson"):
                button = tab.get_by_role("button", name=name)
                if button.count() and button.first.is_enabled():
                    button.first.click(timeout=15_000)
            return
        except Exception:  # noqa: BLE001 - clean-up only: try once more on a freshly drawn page
            if attempt == 0:
                tab.reload()
                wait_app_idle(tab)
