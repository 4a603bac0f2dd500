"""Issue 17 in a real Chromium: reload re-attaches, runs are per browser, result links, a server restart keeps both.

The server gets its own ``LAB_DATA_DIR`` (a temporary folder), so these runs never mix with others'.
One browser context is one browser (its own cookies); a fresh context is another person.
"""

from __future__ import annotations

import time

import pytest
from e2e_fixtures import browser, chromium_path, open_idle  # noqa: F401 - fixtures
from e2e_server import ROOT, Server, wait_app_idle

pytestmark = pytest.mark.e2e

SCREENS = ROOT / "artifacts" / "screens"
LOSS_JS = """() => { const el = document.querySelector('.st-key-train_loss_fig .js-plotly-plot');
    return el && el.data && el.data.length && el.data[0].x ? el.data[0].x.length : -1; }"""
# The Uncertainty page's members-vs-ensemble table: the ensemble's NLL as shown.
ENSEMBLE_NLL_JS = """() => { for (const t of document.querySelectorAll('[data-testid="stTable"] table')) {
    const head = [...t.querySelectorAll('thead th')].map(th => th.innerText.trim());
    const col = head.indexOf('NLL'); if (col < 0) continue;
    for (const tr of t.querySelectorAll('tbody tr')) {
        const cells = [...tr.children].map(c => c.innerText.trim());
        if (cells[0] === 'Ensemble') return cells[col]; } } return null; }"""


@pytest.fixture(scope="module")
def lab_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("lab-data")


@pytest.fixture(scope="module")
def srv(chromium_path, lab_dir):  # noqa: F811 - the fixture imported above
    box = {"server": Server(env={"LAB_DATA_DIR": str(lab_dir)}), "lab_dir": str(lab_dir)}
    box["server"].wait_healthy()
    yield box
    box["server"].stop()


def _nav(page, title: str) -> None:
    page.locator("[data-testid='stSidebarNav'] a", has_text=title).first.click()
    time.sleep(0.4)
    wait_app_idle(page)


def _status(page) -> str:
    return page.locator("[data-testid='stSidebarUserContent']").inner_text()


def _start(page, epochs: int, *, watchable: bool = False) -> None:
    _nav(page, "Train")
    page.get_by_role("tab", name="Optimiser").click()
    box = page.get_by_role("spinbutton", name="Epochs", exact=True)
    box.fill(str(epochs))
    box.press("Enter")
    time.sleep(0.3)
    wait_app_idle(page)
    if watchable:  # at least ~9 s however fast the machine trains (4,000 epochs alone take ~3 s on a quiet one)
        page.get_by_text("Watchable (~9 s)", exact=True).click()
        wait_app_idle(page)
    page.get_by_role("button", name="Train", exact=True).click()


def _wait_points(page, more_than: int, timeout: float = 90) -> int:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        n = page.evaluate(LOSS_JS)
        if n > more_than:
            return n
        time.sleep(0.2)
    raise AssertionError(f"the loss chart did not grow past {more_than} points")


def _ensemble_nll(page) -> str:
    page.wait_for_function(ENSEMBLE_NLL_JS, timeout=60_000)
    return page.evaluate(ENSEMBLE_NLL_JS)


def test_runs_reload_links_isolation_and_restart(browser, srv):  # noqa: F811 - the fixture imported above
    SCREENS.mkdir(parents=True, exist_ok=True)
    url = srv["server"].url
    owner = browser.new_context(viewport={"width": 1440, "height": 1000})
    try:
        page = open_idle(owner, url)
        deadline = time.monotonic() + 20  # the cookie's script loads after the page's first run
        while not any(c["name"] == "del_browser" for c in owner.cookies()) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert any(c["name"] == "del_browser" for c in owner.cookies()), "the browser got its identity cookie"
        # -- a reload mid-run re-attaches and the loss chart keeps growing
        # long enough to be running still when Stop is pressed: the reload and two chart refreshes took
        # more than a 4,000-epoch watchable run's ~9 s in CI, and Stop is rightly disabled once a run ended
        _start(page, epochs=40_000, watchable=True)
        before = _wait_points(page, 20)
        page.reload()
        wait_app_idle(page)
        assert "in progress" in _status(page) or "Queued" in _status(page), _status(page)
        after = _wait_points(page, before)
        _wait_points(page, after)  # and keeps growing after the reload
        assert "in progress" in _status(page), _status(page)
        page.get_by_role("button", name="Stop", exact=True).click(timeout=20_000)
        page.wait_for_function("() => document.querySelector('[data-testid=\"stSidebarUserContent\"]')"
                               ".innerText.includes('Stopped') || document.querySelector("
                               "'[data-testid=\"stSidebarUserContent\"]').innerText.includes('Done')", timeout=60_000)
        # -- a second finished run, then the Runs page lists both
        _start(page, epochs=60)
        page.wait_for_function("() => document.querySelector('[data-testid=\"stSidebarUserContent\"]')"
                               ".innerText.includes('Done')", timeout=90_000)
        _nav(page, "Runs")
        page.wait_for_function("() => document.body.innerText.includes('2** of 2 runs') || "
                               "document.body.innerText.includes('2 of 2 runs')", timeout=30_000)
        page.screenshot(path=str(SCREENS / "runs_list.png"), full_page=True)
        # -- compare the two
        page.get_by_text("Pick 2 to 4 runs").click()
        combo = page.locator(".st-key-runs_compare input")
        combo.click()
        page.get_by_role("option").first.click()
        combo.click()
        page.get_by_role("option").first.click()
        page.keyboard.press("Escape")
        time.sleep(0.5)
        wait_app_idle(page)
        page.wait_for_function("() => document.body.innerText.includes('Best test NLL')", timeout=60_000)
        page.get_by_text("Validation curves").scroll_into_view_if_needed()
        page.screenshot(path=str(SCREENS / "runs_compare.png"), full_page=True)
        # -- share the newest run: open it, make a link on the Uncertainty page
        page.locator(".st-key-runs_open button:visible").first.click()
        wait_app_idle(page)
        _nav(page, "Uncertainty")
        mine = _ensemble_nll(page)
        page.get_by_role("button", name="Share this result").click()
        page.get_by_role("button", name="Make a link").click()
        wait_app_idle(page)
        code = page.locator("[data-testid='stCode'] code")
        time.sleep(1.0)
        wait_app_idle(page)
        if not page.locator("[data-testid='stPopoverBody']").is_visible():  # the rerun closed it: open it again
            page.get_by_role("button", name="Share this result").click()
        try:
            code.last.wait_for(state="visible", timeout=20_000)
        finally:
            page.screenshot(path=str(SCREENS / "share_box.png"))
        link = code.last.inner_text()
        assert "result=" in link, link
        link = link.strip()
        page.keyboard.press("Escape")
        # -- another browser: no runs of the first; the link opens the same result read-only
        other = browser.new_context(viewport={"width": 1440, "height": 1000})
        try:
            p2 = open_idle(other, url + "/runs")
            p2.wait_for_function("() => document.body.innerText.includes('No runs yet')", timeout=30_000)
            p2.goto(link)
            wait_app_idle(p2)
            p2.wait_for_function("() => document.body.innerText.includes('A shared result')", timeout=60_000)
            assert _ensemble_nll(p2) == mine
            p2.screenshot(path=str(SCREENS / "shared_result.png"), full_page=True)
        finally:
            other.close()
        # -- a server restart keeps the runs and the link
        srv["server"].stop()
        srv["server"] = _restart(srv)
        url2 = srv["server"].url
        page = open_idle(owner, url2 + "/runs")  # the same browser (its cookie) on the new server
        page.wait_for_function("() => document.body.innerText.includes('of 2 runs')", timeout=30_000)
        fresh = browser.new_context()
        try:
            p3 = open_idle(fresh, link.replace(url, url2))
            p3.wait_for_function("() => document.body.innerText.includes('A shared result')", timeout=60_000)
            assert _ensemble_nll(p3) == mine
        finally:
            fresh.close()
    finally:
        owner.close()


def _restart(srv: dict) -> Server:
    env = {"LAB_DATA_DIR": srv["lab_dir"]}
    server = Server(env=env)
    server.wait_healthy()
    return server
