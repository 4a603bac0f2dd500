"""The page's frame in a real Chromium: browser history, a phone's screen, presentation mode.

* History: one entry per page visit; a setting changed replaces the entry; Back and
  Forward move page by page and bring that page's setup back (dashboard/st_compat/history.py).
* Phone (390 x 844, a phone's user agent): the menu starts closed and stays closed after a
  page change; no chart toolbar covers a legend.
* Presentation: headline metrics at least 1.5 x, chart titles and axis text larger.

``LAYOUT_SCREENS=1`` also saves a screenshot of every step under ``artifacts/screens/``.
"""

from __future__ import annotations

import os
import re
import time

import pytest
from e2e_fixtures import browser, chromium_path, server  # noqa: F401 - fixtures
from e2e_server import ROOT, wait_app_idle

from dashboard.st_compat import history
from ensemble_core import share
from ensemble_core.config import RunConfig

pytestmark = pytest.mark.e2e

PHONE = dict(viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True,
             user_agent="Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 "
                        "(KHTML, like Gecko) Version/17.0 Mobile/15E148 Safari/604.1")
SCREENS = os.environ.get("LAYOUT_SCREENS") == "1"


def screen(page, name: str) -> None:
    """With ``LAYOUT_SCREENS=1``: the whole page (Streamlit scrolls inside its main block) as a PNG."""
    if not SCREENS:
        return
    folder = ROOT / "artifacts" / "screens"
    folder.mkdir(parents=True, exist_ok=True)
    size = page.viewport_size
    tall = page.evaluate("() => Math.ceil(document.querySelector(\"[data-testid='stMain']\").scrollHeight)")
    page.set_viewport_size({"width": size["width"], "height": max(size["height"], tall)})
    time.sleep(0.8)
    page.screenshot(path=str(folder / f"{size['width']}x{size['height']}_{name}.png"))
    page.set_viewport_size(size)


def settle(page) -> None:
    time.sleep(0.3)
    wait_app_idle(page)


def sidebar_open(page) -> bool:
    return page.evaluate("() => document.querySelector(\"[data-testid='stSidebar']\").getBoundingClientRect().right > 0")


def nav(page, title: str) -> None:
    """Open a page through the menu, as a visitor does (on a phone: open the menu first)."""
    if not sidebar_open(page):
        page.locator("[data-testid='stExpandSidebarButton']").click()
        page.wait_for_function("() => document.querySelector(\"[data-testid='stSidebar']\")"
                               ".getBoundingClientRect().left >= 0")
    page.locator("[data-testid='stSidebarNav'] a", has_text=title).first.click()
    page.wait_for_function(f"() => location.pathname.endsWith('/{title.lower()}')")
    settle(page)


def back(page, forward: bool = False) -> None:
    page.go_forward() if forward else page.go_back()
    settle(page)


def set_number(page, label: str, value: int) -> None:
    box = page.get_by_role("spinbutton", name=label, exact=True)
    box.fill(str(value))
    box.press("Enter")
    settle(page)


def query(page) -> dict[str, str]:
    return dict(re.findall(r"[?&]([^=&]+)=([^&]*)", page.url))


# ------------------------------------------------------------------ history
_GUARD_PAGE = "<!doctype html><html><body>lab</body></html>"


def test_history_guard_turns_streamlits_pushes_into_one_entry_per_page(browser):  # noqa: F811 - fixture
    """The guard's rules on the sequences Streamlit 1.67 sends, without a server (both orders of a page change)."""
    context = browser.new_context()
    context.route("http://lab.test/**", lambda route: route.fulfill(body=_GUARD_PAGE, content_type="text/html"))
    page = context.new_page()
    try:
        page.goto("http://lab.test/")
        cfg = {"pages": ["home", "data", "train", "uncertainty"], "home": "home", "param": "page"}
        page.evaluate("""async ([js, cfg]) => {
            const url = URL.createObjectURL(new Blob([js], { type: 'text/javascript' }));
            (await import(url)).default({ data: cfg });
        }""", [history._JS, cfg])
        start = page.evaluate("history.length")

        def push(url: str) -> tuple[int, str]:
            n, where = page.evaluate("u => { history.pushState({}, '', u); return [history.length, location.pathname + location.search]; }", url)
            return n, where

        # the first run's writes, key by key, on the page the address shows: one entry
        assert push("/?optim.epochs=300") == (start, "/?optim.epochs=300")
        assert push("/?optim.epochs=300&page=home") == (start, "/?optim.epochs=300&page=home")
        # a page change whose query comes first: rebuilt key by key, then Streamlit's own push of the path
        assert push("/?optim.epochs=300") == (start, "/?optim.epochs=300&page=home")  # left out: home keeps its setup
        assert push("/?optim.epochs=300&page=data") == (start + 1, "/data?optim.epochs=300&page=data")
        assert push("/data?optim.epochs=300&page=data") == (start + 1, "/data?optim.epochs=300&page=data")
        # a page change whose path comes first
        assert push("/train") == (start + 2, "/train")
        assert push("/train?optim.epochs=300") == (start + 2, "/train?optim.epochs=300")
        assert push("/train?optim.epochs=300&page=train") == (start + 2, "/train?optim.epochs=300&page=train")
        # a setting changed: the entry keeps the newest setup
        assert push("/train?optim.epochs=300&page=train&seed=7") == (start + 2, "/train?optim.epochs=300&page=train&seed=7")
        page.evaluate("() => new Promise(r => { addEventListener('popstate', r, { once: true }); history.back(); })")
        assert page.evaluate("location.pathname + location.search") == "/data?optim.epochs=300&page=data"
        page.evaluate("() => new Promise(r => { addEventListener('popstate', r, { once: true }); history.back(); })")
        assert page.evaluate("location.pathname + location.search") == "/?optim.epochs=300&page=home"
        assert page.evaluate("[__delHistory.pushed, __delHistory.skipped]") == [2, 1]
    finally:
        context.close()


def test_one_history_entry_per_page_visit_and_back_restores_each_page(browser, server):  # noqa: F811 - fixtures
    context = browser.new_context(viewport={"width": 1440, "height": 900})
    page = context.new_page()
    page.set_default_timeout(60_000)
    try:
        page.goto(server.url)
        loaded = page.evaluate("history.length")
        settle(page)
        time.sleep(history.SETTLE_S)  # the guard is in: the URL follows the setup from now on
        assert page.evaluate("history.length") == loaded, "opening the app adds no entry"
        nav(page, "Data")
        data_url = page.url
        nav(page, "Train")
        set_number(page, "Seed", 7)
        page.wait_for_function("() => location.search.includes('seed=7')")
        assert page.evaluate("history.length") == loaded + 2, "a setting changed replaces the page's entry"
        nav(page, "Uncertainty")
        nav(page, "Lessons")
        assert page.evaluate("history.length") == loaded + 4
        screen(page, "history_lessons")

        back(page)
        assert page.evaluate("location.pathname").endswith("/uncertainty")
        back(page)
        assert page.evaluate("location.pathname").endswith("/train") and query(page).get("seed") == "7"
        assert page.get_by_role("spinbutton", name="Seed", exact=True).input_value() == "7"
        back(page)
        assert page.url == data_url, "the Data page's entry as it was left (before the seed changed)"
        assert "seed" not in query(page)
        back(page, forward=True)
        assert page.evaluate("location.pathname").endswith("/train") and query(page).get("seed") == "7"
        assert page.get_by_role("spinbutton", name="Seed", exact=True).input_value() == "7"
        assert page.evaluate("history.length") == loaded + 4
        assert page.locator("[data-testid='stException']").count() == 0
    finally:
        context.close()


# ------------------------------------------------------------------ phone
#: For every Plotly chart on the page: its toolbar's and legend's boxes (``null`` where it has none).
_BOXES_JS = """() => [...document.querySelectorAll('.js-plotly-plot')].map(plot => {
    const box = sel => { const el = plot.querySelector(sel); if (!el) return null;
        const r = el.getBoundingClientRect(); return r.width && r.height ? [r.left, r.top, r.right, r.bottom] : null; };
    return { key: (plot.closest('[class*=st-key-]') || {}).className || '', modebar: box('.modebar'),
             legend: box('.legend'), plot: box('.nsewdrag') };
})"""


def _overlap(a, b) -> float:
    w = min(a[2], b[2]) - max(a[0], b[0])
    h = min(a[3], b[3]) - max(a[1], b[1])
    return max(0.0, w) * max(0.0, h)


def assert_toolbars_clear_legends(page) -> int:
    """No chart's toolbar box overlaps its legend box; how many charts had both."""
    page.locator(".js-plotly-plot .modebar").first.wait_for(state="attached")
    charts = page.evaluate(_BOXES_JS)
    both = [c for c in charts if c["modebar"] and c["legend"]]
    for c in both:
        assert _overlap(c["modebar"], c["legend"]) == 0, c
    return len(both)


def test_phone_menu_stays_closed_and_no_toolbar_covers_a_legend(browser, server):  # noqa: F811 - fixtures
    context = browser.new_context(**PHONE)
    page = context.new_page()
    page.set_default_timeout(60_000)
    try:
        page.goto(server.url)
        settle(page)
        assert not sidebar_open(page), "the menu starts closed on a phone"
        screen(page, "phone_home")
        nav(page, "Data")
        assert not sidebar_open(page), "and closes again after a page change"
        assert assert_toolbars_clear_legends(page) >= 1
        nav(page, "Train")
        assert not sidebar_open(page)
        page.get_by_role("tab", name="Optimiser").click()
        set_number(page, "Epochs", 150)
        page.get_by_role("button", name="Train", exact=True).click()
        page.wait_for_function("() => document.querySelector(\"[data-testid='stSidebarUserContent']\")"
                               ".innerText.includes('Done')", timeout=120_000)
        settle(page)
        assert assert_toolbars_clear_legends(page) >= 1  # the live charts (the in-place component)
        screen(page, "phone_train_done")
        nav(page, "Uncertainty")
        page.wait_for_function("() => document.querySelectorAll('.js-plotly-plot .legend').length >= 3")
        assert assert_toolbars_clear_legends(page) >= 3
        bands = page.evaluate(_BOXES_JS)[0]
        legend_h = bands["legend"][3] - bands["legend"][1]
        assert legend_h < 0.5 * (bands["plot"][3] - bands["plot"][1]), "the bands' legend stays compact"
        assert not sidebar_open(page)
        screen(page, "phone_uncertainty")
    finally:
        context.close()


# ------------------------------------------------------------------ presentation
_METRIC_JS = "() => parseFloat(getComputedStyle(document.querySelector(\"[data-testid='stMetricValue'] p\")).fontSize)"


def _font(page, selector: str) -> float:
    page.locator(selector).first.wait_for(state="attached")
    return page.evaluate("s => parseFloat(getComputedStyle(document.querySelector(s)).fontSize)", selector)


def test_presentation_mode_enlarges_metrics_and_chart_text(browser, server):  # noqa: F811 - fixtures
    real = RunConfig().replace(**{"data.source": "bundled", "data.name": "diabetes"})
    context = browser.new_context(viewport={"width": 1920, "height": 1080})
    page = context.new_page()
    page.set_default_timeout(60_000)
    sizes: dict[bool, dict[str, float]] = {}
    try:
        for present in (False, True):
            page.goto(share.make_link(server.url, share.ShareState(config=real, page="data", presentation=present)))
            settle(page)
            sizes[present] = {
                "metric": page.evaluate(_METRIC_JS),
                # the feature histograms' panel titles (Plotly annotations) and axis ticks
                "title": _font(page, ".st-key-data_hist .annotation-text"),
                "tick": _font(page, ".st-key-data_hist .xtick text"),
            }
            screen(page, "present_data" if present else "data_real")
            page.goto(share.make_link(server.url, share.ShareState(page="train", presentation=present)))
            settle(page)
            sizes[present]["live_axis"] = _font(page, ".st-key-train_lr_plan .g-xtitle text")  # the in-place chart
        normal, big = sizes[False], sizes[True]
        assert big["metric"] >= 1.5 * normal["metric"], sizes
        assert big["title"] > normal["title"] and big["tick"] > normal["tick"], sizes
        assert big["live_axis"] > normal["live_axis"], sizes
    finally:
        context.close()
