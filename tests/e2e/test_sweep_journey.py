"""Issue 19's Sweep page in a real Chromium: a reload mid-sweep re-attaches, a shared link shows the same best
trial read-only in another browser, and a revoked link says so.

The server gets its own ``LAB_DATA_DIR`` (a temporary folder).  One browser context is one browser (its own
identity cookie); a fresh context is another person.  Screenshots go to ``artifacts/screens/``.
"""

from __future__ import annotations

import re
import time

import pytest
from e2e_fixtures import browser, chromium_path, open_idle, store_server  # noqa: F401 - fixtures
from e2e_server import ROOT, wait_app_idle

pytestmark = pytest.mark.e2e

SCREENS = ROOT / "artifacts" / "screens"
T0 = 0.0  # the journey's start (for the timings it prints, -s)
BEST_JS = """() => { const m = document.body.innerText.match(/Best: trial (\\d+) \\(([^)]*)\\): Test NLL ([-0-9.e]+)/);
    return m ? m[0] : null; }"""


@pytest.fixture(scope="module")
def srv(store_server):  # noqa: F811 - the fixture imported above
    return store_server


def _has(page, text: str, timeout: float = 60_000) -> None:
    page.wait_for_function("t => document.body.innerText.includes(t)", arg=text, timeout=timeout)


def _type(page, label: str, value: str) -> None:
    box = page.get_by_label(label, exact=True)
    box.fill(value)
    box.press("Enter")
    time.sleep(0.3)
    wait_app_idle(page)


def _best(page) -> str:
    page.wait_for_function(BEST_JS, timeout=60_000)
    return page.evaluate(BEST_JS)


def _share_link(page) -> str:
    page.get_by_role("button", name="Share this sweep").first.click()
    page.get_by_role("button", name="Make a link").click()
    time.sleep(1.0)
    wait_app_idle(page)
    code = page.locator("[data-testid='stPopoverBody'] [data-testid='stCode'] code")
    if not page.locator("[data-testid='stPopoverBody']").is_visible():  # the rerun closed it: open it again
        page.get_by_role("button", name="Share this sweep").first.click()
    code.last.wait_for(state="visible", timeout=20_000)
    link = code.last.inner_text().strip()
    page.keyboard.press("Escape")
    return link


def _tall_shot(page, name: str) -> None:
    """The whole page in one picture: a viewport as tall as the app's content (Streamlit scrolls inside)."""
    height = page.evaluate("() => document.querySelector('[data-testid=\"stMain\"]').scrollHeight")
    page.set_viewport_size({"width": 1440, "height": min(max(int(height) + 40, 1000), 4000)})
    _charts_drawn(page)
    page.screenshot(path=str(SCREENS / name))
    page.set_viewport_size({"width": 1440, "height": 1000})


def _charts_drawn(page) -> None:
    """Wait until every Plotly chart on the page has drawn (Streamlit shows a grey placeholder until then)."""
    page.wait_for_function("() => { const c = [...document.querySelectorAll('.js-plotly-plot')];"
                           " return c.length > 0 && c.every(p => p.querySelector('.main-svg')) &&"
                           " !document.querySelector('[data-testid=\"stSkeleton\"]'); }", timeout=30_000)
    time.sleep(1.0)


def test_sweep_reload_share_revoke(browser, srv):  # noqa: F811 - the fixture imported above
    SCREENS.mkdir(parents=True, exist_ok=True)
    global T0
    T0 = time.monotonic()
    owner = browser.new_context(viewport={"width": 1440, "height": 1000})
    try:
        page = open_idle(owner, srv.url + "/sweep")
        deadline = time.monotonic() + 20  # the cookie's script loads after the page's first run
        while not any(c["name"] == "del_browser" for c in owner.cookies()) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert any(c["name"] == "del_browser" for c in owner.cookies()), "the browser got its identity cookie"
        # -- 4 trials: member counts 1 and 4 x 300 and 5000 epochs, each its own program; the long ones end last (800 ended before the reload on a quiet machine)
        print(f"{time.monotonic() - T0:6.1f} s: 4 trials: member counts 1 and 4 x 3", flush=True)
        _type(page, "Learning rate: values", "0.03")
        for name in ("Members M", "Epochs"):
            page.locator(".st-key-sweep_params input").click()
            page.get_by_role("option", name=name, exact=True).click()
            page.keyboard.press("Escape")
            time.sleep(0.3)
            wait_app_idle(page)
        _type(page, "Members M: values", "1, 4")
        _type(page, "Epochs: values", "300, 5000")
        _has(page, "4 trials")  # (the suggested values would make 9): the typed values are in
        page.get_by_role("button", name="Start the sweep").click()
        _has(page, "1 of 4 trials", timeout=90_000)  # mid-way: one trial ended, the long ones still to come
        page.wait_for_selector(".st-key-sweep_chart_metric .js-plotly-plot", timeout=30_000)
        page.set_viewport_size({"width": 1440, "height": 1500})  # no waiting for more: the sweep goes on
        time.sleep(0.5)
        page.screenshot(path=str(SCREENS / "sweep_running.png"))
        page.set_viewport_size({"width": 1440, "height": 1000})
        # -- a reload mid-way re-attaches: the live view goes on and Stop is there
        print(f"{time.monotonic() - T0:6.1f} s: a reload mid-way re-attaches: the l", flush=True)
        page.reload()
        wait_app_idle(page)
        body = page.locator("body").inner_text()
        assert re.search(r"[1-3] of 4 trials ended", body), body[:2000]  # the live view, mid-way, after the reload
        assert page.get_by_role("button", name="Stop the sweep").is_enabled()
        _has(page, "Sweep finished: 4 of 4 trials done", timeout=120_000)
        mine = _best(page)
        # -- share the ended sweep; another browser opens the link read-only and sees the same best trial
        print(f"{time.monotonic() - T0:6.1f} s: share the ended sweep; another brow", flush=True)
        link = _share_link(page)
        assert "/sweep?sweep=" in link, link
        visitor = browser.new_context(viewport={"width": 1440, "height": 1000})
        try:
            p2 = open_idle(visitor, link)
            _has(p2, "A shared sweep, run")
            assert _best(p2) == mine
            assert p2.get_by_role("button", name="Start the sweep").count() == 0
            assert p2.get_by_role("button", name="Stop the sweep").count() == 0
            _has(p2, "Parallel coordinates")
            p2.wait_for_selector(".st-key-sweep_shared_chart_curves .js-plotly-plot", timeout=30_000)
            _tall_shot(p2, "sweep_shared.png")
            # -- the owner's saved list; open the saved sweep
            print(f"{time.monotonic() - T0:6.1f} s: the owner's saved list; open the sa", flush=True)
            page.locator(".st-key-sweep_list_open button").click()
            wait_app_idle(page)
            _has(page, "Saved sweep of")
            page.set_viewport_size({"width": 1440, "height": 1200})
            heading = page.get_by_role("heading", name="Your saved sweeps")
            heading.evaluate("h => h.scrollIntoView({block: 'start'})")
            time.sleep(1.0)
            page.screenshot(path=str(SCREENS / "sweep_saved_list.png"))
            page.set_viewport_size({"width": 1440, "height": 1000})
            # -- the owner revokes it; the link now says so
            print(f"{time.monotonic() - T0:6.1f} s: the owner revokes it; the link now ", flush=True)
            page.get_by_role("button", name="Share this sweep").first.click()
            page.get_by_role("button", name="Revoke the link").click()
            wait_app_idle(page)
            p3 = open_idle(visitor, link)
            _has(p3, "This sweep link cannot be opened")
            _has(p3, "revoked")
        finally:
            visitor.close()
    finally:
        owner.close()
