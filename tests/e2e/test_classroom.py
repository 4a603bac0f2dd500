"""Issue 4 in a real Chromium: classroom links, the URL round-trip, presentation mode, click to add data."""

from __future__ import annotations

import re
import time

import pytest
from e2e_fixtures import app_page, browser, chromium_path, server  # noqa: F401 - fixtures
from e2e_server import shot, wait_app_idle

from ensemble_core import persistence, share
from ensemble_core.config import RunConfig

pytestmark = pytest.mark.e2e


def open_link(page, url: str) -> None:
    page.goto(url)
    time.sleep(0.3)
    wait_app_idle(page)


def main_text(page) -> str:
    return page.locator("[data-testid='stMain']").inner_text()


def test_a_classroom_link_shows_only_the_chosen_controls(app_page, server):  # noqa: F811 - the fixtures imported above
    cfg = RunConfig().replace(**{"strategy.members": 3, "optim.lr": 0.003, "optim.epochs": 50})
    hidden = frozenset(c for c in share.CONTROLS if c not in ("strategy.members", "strategy.kind"))
    open_link(app_page, share.make_link(server.url, share.ShareState(config=cfg, page="train", hidden=hidden)))
    assert app_page.locator(".st-key-train_members input[type='range']").input_value() == "3"
    labels = app_page.locator("[data-testid='stMain'] [data-testid='stWidgetLabel']").all_inner_texts()
    # the two controls the link shows, and the pace control (how to watch, not what to train: never hidden)
    assert [t.strip() for t in labels] == ["Strategy", "Members M", "Pace"]
    assert app_page.get_by_role("tab").all_inner_texts() == ["Ensemble"]
    assert "hide=" in app_page.url and "optim.lr=0.003" in app_page.url
    assert app_page.locator("[data-testid='stException']").count() == 0
    shot(app_page, "classroom_train")
    app_page.get_by_role("button", name="Share this setup").click()
    link = app_page.locator("[data-testid='stPopoverBody'] code").first.inner_text()
    assert "hide=" in link and "strategy.members=3" in link and "/train?" in link
    shot(app_page, "classroom_share_box")


def test_a_setting_changed_in_the_browser_survives_opening_the_url(app_page, browser):  # noqa: F811 - the fixtures imported above
    app_page.locator("[data-testid='stSidebarNav'] a", has_text="Train").first.click()
    time.sleep(0.3)
    wait_app_idle(app_page)
    app_page.get_by_role("tab", name="Optimiser").click()
    box = app_page.get_by_role("spinbutton", name="Epochs", exact=True)
    box.fill("42")
    box.press("Enter")
    app_page.wait_for_function("() => window.location.search.includes('optim.epochs=42')")
    url = app_page.url
    assert re.search(r"/train\?", url), url
    other = browser.new_context(viewport={"width": 1440, "height": 900}).new_page()
    try:
        open_link(other, url)
        other.get_by_role("tab", name="Optimiser").click()
        assert other.get_by_role("spinbutton", name="Epochs", exact=True).input_value() == "42"
    finally:
        other.context.close()


def test_presentation_mode(app_page, server):  # noqa: F811 - the fixtures imported above
    open_link(app_page, share.make_link(server.url, share.ShareState(page="train", presentation=True)))
    size = app_page.evaluate("() => parseFloat(getComputedStyle(document.querySelector('h1')).fontSize)")
    assert size >= 40, size
    assert app_page.get_by_text("Settings", exact=True).is_visible()
    assert app_page.locator(".st-key-train_members input[type='range']").is_hidden()  # tucked away until opened
    shot(app_page, "presentation_train")


def test_a_click_on_the_regression_plot_adds_a_training_point(app_page):  # noqa: F811 - the fixtures imported above
    app_page.locator("[data-testid='stSidebarNav'] a", has_text="Data").first.click()
    time.sleep(0.3)
    wait_app_idle(app_page)
    sidebar = app_page.locator("[data-testid='stSidebarUserContent']")
    assert "20 training rows" in sidebar.inner_text()
    area = app_page.locator(".st-key-data_fig .nsewdrag").first
    box = area.bounding_box()
    app_page.mouse.click(box["x"] + 0.75 * box["width"], box["y"] + 0.3 * box["height"])
    app_page.wait_for_function("() => document.querySelector(\"[data-testid='stSidebarUserContent']\")"
                               ".innerText.includes('21 training rows')", timeout=30_000)
    wait_app_idle(app_page)
    assert "1 point(s) added" in main_text(app_page)
    shot(app_page, "data_after_click")
    app_page.get_by_role("button", name="Reset", exact=True).click()
    app_page.wait_for_function("() => document.querySelector(\"[data-testid='stSidebarUserContent']\")"
                               ".innerText.includes('20 training rows')", timeout=30_000)


def test_the_run_and_its_report_download_from_the_uncertainty_page(app_page, server, tmp_path):  # noqa: F811 - the fixtures imported above
    cfg = RunConfig().replace(**{"strategy.members": 2, "optim.epochs": 15, "model.width": 16})
    open_link(app_page, share.make_link(server.url, share.ShareState(config=cfg, page="train")))
    app_page.get_by_role("button", name="Train", exact=True).click()
    app_page.wait_for_function("() => document.querySelector(\"[data-testid='stSidebarUserContent']\")"
                               ".innerText.includes('Done')", timeout=120_000)
    app_page.locator("[data-testid='stSidebarNav'] a", has_text="Uncertainty").first.click()
    time.sleep(0.3)
    wait_app_idle(app_page)
    with app_page.expect_download() as dl:
        app_page.get_by_role("button", name="Download the run (.zip)").click()
    dl.value.save_as(tmp_path / "run.zip")
    run = persistence.import_zip((tmp_path / "run.zip").read_bytes())
    assert run.config == cfg.replace(data=run.config.data) and len(run.members) == 2
    with app_page.expect_download() as dl:
        app_page.get_by_role("button", name="HTML report").click()
    dl.value.save_as(tmp_path / "report.html")
    html = (tmp_path / "report.html").read_text()
    assert html.lstrip().lower().startswith("<!doctype html") and "<script src" not in html
    app_page.get_by_role("heading", name="Export and share").scroll_into_view_if_needed()
    shot(app_page, "uncertainty_exports")
