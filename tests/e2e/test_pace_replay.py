"""Issue 20 in Chromium: the watchable pace moves the live charts; the replay scrubs with no server rerun."""

from __future__ import annotations

import time

import pytest
from e2e_fixtures import browser, chromium_path, server  # noqa: F401 - fixtures
from e2e_server import ROOT, shot, wait_app_idle, wait_renderer_idle, watch_loss_sizes

pytestmark = pytest.mark.e2e

SCREENS = ROOT / "artifacts" / "screens"


def replay_state(page, key: str) -> dict:
    """The replay chart's slider position, its title and the first loss trace's drawn length."""
    return page.evaluate("""(key) => { const el = document.querySelector('.st-key-' + key + ' .js-plotly-plot');
        if (!el || !el._fullLayout) return null;
        const t = el._fullLayout.title.text, s = el._fullLayout.sliders[0];
        const loss = el.data.find((d) => (d.name || '').endsWith(' loss'));
        return {active: s.active, steps: s.steps.length, title: t, points: loss ? loss.x.length : -1}; }""", key)


def scrub(page, key: str, fraction: float) -> None:
    """Drag the replay slider's grip to ``fraction`` of its rail (Plotly snaps to the nearest epoch)."""
    rail = page.locator(f".st-key-{key} .slider-rail-rect").first.bounding_box()
    grip = page.locator(f".st-key-{key} .slider-grip-rect").first.bounding_box()
    page.mouse.move(grip["x"] + grip["width"] / 2, grip["y"] + grip["height"] / 2)
    page.mouse.down()
    page.mouse.move(rail["x"] + fraction * rail["width"], grip["y"] + grip["height"] / 2, steps=8)
    page.mouse.up()
    time.sleep(0.4)


@pytest.fixture
def page_ws(browser, server):  # noqa: F811 - the fixtures imported above
    """A fresh session whose messages to the server are counted (``page.sent[0]``)."""
    context = browser.new_context(viewport={"width": 1440, "height": 1000})
    page = context.new_page()
    page.sent, page.log = [0], []

    def sent(payload) -> None:
        page.sent[0] += 1
        page.log.append((round(time.monotonic(), 2), len(payload), bytes(payload[:60]) if isinstance(payload, bytes)
                         else payload[:60]))

    page.on("websocket", lambda ws: ws.on("framesent", sent))
    page.set_default_timeout(90_000)
    yield page
    context.close()


def open_train(page, srv, query: str = "") -> None:
    page.goto(f"{srv.url}/train{query}")
    wait_app_idle(page)
    page.get_by_role("heading", name="Train").first.wait_for()


def check_replay(page, key: str, name: str) -> None:
    """Scrub the replay at three epochs: the drawn epoch changes, the server gets nothing, a screenshot each."""
    page.locator(f".st-key-{key} .js-plotly-plot").first.wait_for()
    page.locator(f".st-key-{key}").scroll_into_view_if_needed()
    time.sleep(0.8)
    start = replay_state(page, key)
    assert start["active"] == start["steps"] - 1 and start["steps"] >= 10
    wait_app_idle(page)
    quiet_since, sent, t0 = time.monotonic(), page.sent[0], time.monotonic()
    while time.monotonic() - quiet_since < 2.5 and time.monotonic() - t0 < 30:  # the page's own polls end first
        time.sleep(0.1)
        if page.sent[0] != sent:
            quiet_since, sent = time.monotonic(), page.sent[0]
    seen = []
    for i, fraction in enumerate((0.08, 0.45, 1.0)):
        scrub(page, key, fraction)
        state = replay_state(page, key)
        seen.append((state["active"], state["title"], state["points"]))
        page.locator(f".st-key-{key}").screenshot(path=str(SCREENS / f"replay_{name}_{i + 1}.png"))
    assert seen[0][0] < seen[1][0] < seen[2][0] == start["steps"] - 1, seen
    assert len({t for _, t, _ in seen}) == 3 and seen[0][2] < seen[1][2] <= seen[2][2], seen
    time.sleep(0.5)
    assert page.sent[0] == sent, f"scrubbing the replay sent messages to the server: {page.log[-(page.sent[0] - sent):]}"


def test_watchable_run_moves_and_replays(page_ws, server):  # noqa: F811
    page = page_ws
    SCREENS.mkdir(parents=True, exist_ok=True)
    open_train(page, server, "?pace=watchable")  # a link sets the pace
    wait_renderer_idle(page)  # the page's charts drawn (a busy renderer would hold the first refreshes back)
    page.get_by_role("button", name="Train", exact=True).click()
    sizes, wall, changes = watch_loss_sizes(page, 300)
    wait_app_idle(page)
    check_replay(page, "train_replay", "regression")
    shot(page, "pace_replay_train")
    # It moves all the way: many distinct lengths, and never a still chart for long once drawn.
    gaps = [b[0] - a[0] for a, b in zip(changes, changes[1:])]
    assert len(sizes) >= 15, f"only {len(sizes)} loss-chart sizes in {wall:.1f} s: {changes}"
    assert max(gaps) <= 2.0, f"the loss chart stood still for {max(gaps):.1f} s: {changes}"
    assert wall >= 6.0


def test_classification_and_snapshot_replays_on_uncertainty(page_ws, server):  # noqa: F811
    page = page_ws
    for query, name in (("?data.name=moons&data.n=200&optim.epochs=100", "classification"),
                        ("?strategy.kind=snapshot&strategy.members=1&strategy.snapshots=5&optim.schedule=cyclic"
                         "&optim.lr=0.01&optim.lr_min=0&optim.epochs=300", "snapshot")):
        open_train(page, server, query + "&pace=fast")
        page.get_by_role("button", name="Train", exact=True).click()
        epochs = query.rsplit("optim.epochs=", 1)[1]
        # this run's end (a reopened page re-attaches to the browser's previous, finished run first)
        page.wait_for_function("(n) => document.querySelector(\"[data-testid='stSidebarUserContent']\")"
                               ".innerText.includes(`Done — ${n} epochs`)", arg=epochs, timeout=120_000)
        wait_app_idle(page)
        page.locator(".st-key-train_replay .js-plotly-plot").first.wait_for(timeout=120_000)
        check_replay(page, "train_replay", name)
        page.locator("[data-testid='stSidebarNav'] a", has_text="Uncertainty").first.click()
        time.sleep(0.5)
        wait_app_idle(page)
        check_replay(page, "unc_replay", f"{name}_uncertainty")
        if name == "snapshot":  # each snapshot joins the ensemble as the replay goes on
            titles = [page.evaluate("(k) => document.querySelector('.st-key-' + k + ' .js-plotly-plot')"
                                    "._fullLayout.title.text", "unc_replay")]
            assert "5 of 5 snapshots taken" in titles[0]
