"""The user journeys of issue 3 in a real Chromium against ``streamlit run app.py``."""

from __future__ import annotations

import time

import pytest
from e2e_fixtures import app_page, browser, chromium_path, server  # noqa: F401 - fixtures
from e2e_server import shot, wait_app_idle

pytestmark = pytest.mark.e2e

CSV = "area,rooms,district,price\n" + "".join(
    f"{40 + i},{1 + i % 4},{'NS'[i % 2]},{90 + 2.5 * i + (i % 7)}\n" for i in range(60))


def nav(page, title: str) -> None:
    """Open a page through the sidebar menu (keeps the session, unlike a reload)."""
    page.locator("[data-testid='stSidebarNav'] a", has_text=title).first.click()
    page.wait_for_function(f"() => document.title.includes({title!r}) || true")
    time.sleep(0.3)
    wait_app_idle(page)


def sidebar_status(page) -> str:
    return page.locator("[data-testid='stSidebarUserContent']").inner_text()


def loss_points(page) -> int:
    """Points per trace of the live loss chart, read from the Plotly graph in the DOM (-1 if absent)."""
    return page.evaluate("""() => {
        const el = document.querySelector('.st-key-train_loss_fig .js-plotly-plot');
        if (!el || !el.data || !el.data.length) return -1;
        const x = el.data[0].x; return x ? x.length : 0; }""")


def set_number(page, label: str, value: int) -> None:
    box = page.get_by_role("spinbutton", name=label, exact=True)
    box.fill(str(value))
    box.press("Enter")
    time.sleep(0.3)
    wait_app_idle(page)


def start_training(page, epochs: int, members: int | None = None) -> None:
    nav(page, "Train")
    page.get_by_role("tab", name="Optimiser").click()
    set_number(page, "Epochs", epochs)
    page.get_by_role("button", name="Train", exact=True).click()
    page.wait_for_function("() => document.querySelector('[data-testid=\"stSidebarUserContent\"]')"
                           ".innerText.match(/in progress|Done/)", timeout=60_000)


def test_open_the_app(app_page):  # noqa: F811 - the fixture imported above
    page = app_page
    assert page.get_by_role("heading", name="Deep Ensemble Lab").is_visible()
    assert "Cubic toy" in sidebar_status(page) and "Idle" in sidebar_status(page)
    assert page.locator("[data-testid='stException']").count() == 0
    shot(page, "home")


def test_train_cubic_live_then_see_the_bands(app_page):  # noqa: F811 - the fixture imported above
    page = app_page
    nav(page, "Data")
    page.get_by_role("combobox", name="Generator").click()
    page.get_by_role("option", name="Cubic toy (regression)").click()
    wait_app_idle(page)
    shot(page, "data")
    epochs = 1500  # long enough (several seconds) to see the chart grow: the charts redraw about once a second
    start_training(page, epochs=epochs)
    seen, deadline, shot_taken = set(), time.monotonic() + 240, False
    while time.monotonic() < deadline:
        n = loss_points(page)
        if n > 0:
            seen.add(n)
        status = sidebar_status(page)
        if "in progress" in status and n > 20 and not shot_taken:
            shot(page, "train_live")
            shot_taken = True
        if "Done" in status:
            break
        time.sleep(0.25)
    assert "Done" in sidebar_status(page), "the run finished"
    assert len({n for n in seen if n < epochs}) >= 2, f"the loss chart grew while training: {sorted(seen)}"
    page.wait_for_function("() => document.querySelector('.st-key-train_loss_fig .js-plotly-plot')"
                           f"?.data[0].x.length === {epochs}", timeout=30_000)
    assert page.evaluate("() => document.querySelector('.st-key-train_loss_fig .js-plotly-plot').data.length") == 5
    assert page.get_by_text("Test NLL").is_visible()
    shot(page, "train_done")
    nav(page, "Uncertainty")
    page.wait_for_function("""() => [...document.querySelectorAll('.js-plotly-plot')].some(
        el => (el.data || []).some(t => /aleatoric/i.test(t.name || '')))""", timeout=60_000)
    names = page.evaluate("""() => [...document.querySelectorAll('.js-plotly-plot')]
        .flatMap(el => (el.data || []).map(t => t.name || ''))""")
    assert any("Epistemic" in n for n in names) and any("Aleatoric" in n for n in names)
    assert page.locator("[data-testid='stException']").count() == 0
    shot(page, "uncertainty")


#: CSS transitions/animations running in the live view or a progress bar.  Restarted by every refresh,
#: Streamlit's progress easing kept a software-rendered browser compositing 60 frames a second.  (Not
#: counted: the shimmer of a placeholder Streamlit shows once per page while an element's code loads.)
_LIVE_ANIMATIONS_JS = """() => document.getAnimations().filter(a => {
    const t = a.effect && a.effect.target;
    return t && t.closest && !t.closest("[data-testid='stSkeleton']")
        && (t.closest('.st-key-live_view') || t.closest("[data-testid='stProgressBarTrack']"));
}).map(a => (a.transitionProperty || a.animationName) + ' on ' + String(a.effect.target.className).slice(0, 60))"""


_LOSS_JS = "document.querySelector('.st-key-train_loss_fig .js-plotly-plot')"


def zoom_loss_chart(page, epochs: int) -> tuple[list[float], int]:
    """Drag a zoom box over the live loss chart as a viewer would; (its x range then, its last epoch then).

    The plot is also marked, so a later check can tell it was updated in place, not drawn anew.
    """
    box = page.locator(".st-key-train_loss_fig .nsewdrag").first.bounding_box()
    x0, y0, w, h = box["x"], box["y"], box["width"], box["height"]
    page.mouse.move(x0 + 0.1 * w, y0 + 0.2 * h)
    page.mouse.down()
    page.mouse.move(x0 + 0.3 * w, y0 + 0.6 * h, steps=5)
    page.mouse.move(x0 + 0.5 * w, y0 + 0.8 * h, steps=5)
    page.mouse.up()
    # the chart spans every planned epoch; the box covers about 40% of it
    page.wait_for_function(f"() => {{ const r = {_LOSS_JS}.layout.xaxis.range; return r[1] - r[0] < 0.6 * {epochs}; }}")
    return page.evaluate(f"() => {{ const el = {_LOSS_JS}; el.__journeyMark = 'zoomed'; "
                         "return [el.layout.xaxis.range, el.data[0].x.at(-1)]; }")


#: Keeps the page's fragment timers from firing: Streamlit's browser side reruns a ``run_every``
#: fragment from a ``setInterval`` whose callback sends the rerun request.  Counts what it blocked.
NO_POLLING = """(() => {
  const setInterval = window.setInterval;
  window.__blockedPolls = 0;
  window.setInterval = function (fn, ms, ...rest) {
    if (typeof fn === 'function' && String(fn).includes('sendUpdateWidgetsMessage')) {
      window.__blockedPolls++;
      return 0;
    }
    return setInterval.call(this, fn, ms, ...rest);
  };
})();"""


def test_a_runs_end_reaches_a_page_that_never_polls(browser, server):  # noqa: F811 - fixtures imported above
    """The server pushes a run's start and end to its page: the result arrives although the page never asks."""
    context = browser.new_context(viewport={"width": 1440, "height": 900})
    context.add_init_script(NO_POLLING)
    page = context.new_page()
    page.set_default_timeout(60_000)
    try:
        page.goto(server.url)
        wait_app_idle(page)
        start_training(page, epochs=200)
        page.wait_for_function("() => document.querySelector('[data-testid=\"stSidebarUserContent\"]')"
                               ".innerText.includes('Done')", timeout=60_000)
        wait_app_idle(page)
        assert page.evaluate("() => window.__blockedPolls") >= 1  # the live view's timer was set, and never ran
        main = page.locator("[data-testid='stMain']").inner_text()
        assert "Done: 5 member(s) after 200 of 200 epochs" in main and "Test NLL" in main
        assert page.locator("[data-testid='stException']").count() == 0
    finally:
        context.close()


def test_no_page_asks_anything_of_another_server(browser, server):  # noqa: F811 - fixtures imported above
    """An offline classroom gets the whole app, and nobody else learns of a visit: every request stays on
    the app's own server.  (The tab's icon, once a ":material/hub:" icon, was fetched from fonts.gstatic.com.)"""
    from urllib.parse import urlsplit

    here = urlsplit(server.url).netloc
    elsewhere: list[str] = []
    context = browser.new_context(viewport={"width": 1440, "height": 900})
    page = context.new_page()
    page.set_default_timeout(60_000)
    page.on("request", lambda r: elsewhere.append(r.url) if urlsplit(r.url).scheme in ("http", "https", "ws", "wss")
            and urlsplit(r.url).netloc != here else None)
    try:
        page.goto(server.url)
        wait_app_idle(page)
        for title in ("Data", "Train", "Uncertainty", "Lessons", "Compare", "Home"):
            nav(page, title)
        time.sleep(1.0)  # late requests (fonts, icons) too
        assert elsewhere == []
        icon = page.evaluate("() => document.querySelector('link[rel~=icon]').href")
        assert urlsplit(icon).netloc == here
        reply = page.request.get(icon)
        assert reply.ok and reply.headers["content-type"] == "image/png" and len(reply.body()) > 1000
    finally:
        context.close()


def test_stop_keeps_the_partial_run(app_page):  # noqa: F811 - the fixture imported above
    page = app_page
    start_training(page, epochs=3000)
    page.wait_for_function("() => (document.querySelector('.st-key-train_loss_fig .js-plotly-plot')"
                           "?.data?.[0]?.x?.length || 0) >= 3", timeout=120_000)
    for _ in range(4):  # the live view eases and fades nothing while it refreshes (see live.LIVE_CSS)
        assert page.evaluate(_LIVE_ANIMATIONS_JS) == []
        time.sleep(0.3)
    zoomed, before = zoom_loss_chart(page, 3000)
    page.wait_for_function(f"() => {_LOSS_JS}.data[0].x.at(-1) > {before + 20}", timeout=60_000)
    time.sleep(0.3)  # a refresh or two later: the same plot, updated in place, still zoomed
    assert page.evaluate(f"() => {_LOSS_JS}.__journeyMark") == "zoomed", "the live chart was drawn anew"
    assert page.evaluate(f"() => {_LOSS_JS}.layout.xaxis.range") == zoomed
    page.get_by_role("button", name="Stop", exact=True).click()
    page.get_by_text("Stopped early").wait_for(timeout=60_000)
    assert "Stopped after" in sidebar_status(page)
    kept = loss_points(page)
    assert 3 <= kept < 3000
    shot(page, "train_stopped")
    nav(page, "Uncertainty")
    assert page.locator("[data-testid='stException']").count() == 0
    assert page.locator(".js-plotly-plot").count() > 0  # the partial run is explorable


def test_upload_a_csv(app_page, tmp_path):  # noqa: F811 - the fixture imported above
    page = app_page
    path = tmp_path / "flats.csv"
    path.write_text(CSV)
    nav(page, "Data")
    page.get_by_text("Your CSV", exact=True).click()
    wait_app_idle(page)
    page.locator("[data-testid='stFileUploader'] input[type='file']").set_input_files(str(path))
    page.get_by_text("flats.csv").first.wait_for()
    page.wait_for_function("() => document.body.innerText.includes('not used')", timeout=30_000)
    wait_app_idle(page)
    assert "flats.csv" in sidebar_status(page)
    assert page.get_by_text("district").first.is_visible()  # the dropped text column is named
    assert page.locator("[data-testid='stException']").count() == 0
    shot(page, "data_csv")
