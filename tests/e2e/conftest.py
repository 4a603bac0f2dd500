"""Fixtures for the browser tests: one ``streamlit run app.py`` and one Chromium for the module.

Without ``/usr/bin/chromium`` the tests skip with that reason, unless the
``CI`` environment variable is set, where they fail instead.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from server import CHROMIUM, CHROMIUM_ARGS, ROOT, Server, wait_app_idle

ARTIFACTS = ROOT / "artifacts"


def pytest_collection_modifyitems(items):
    for item in items:
        if "tests/e2e" in str(item.fspath):
            item.add_marker(pytest.mark.e2e)


@pytest.fixture(scope="session")
def chromium_path() -> str:
    if not Path(CHROMIUM).exists():
        if os.environ.get("CI"):
            pytest.fail(f"{CHROMIUM} is missing but CI is set: the browser tests must run in CI")
        pytest.skip(f"{CHROMIUM} not found: browser tests need Debian's chromium (apt-get install chromium)")
    return CHROMIUM


@pytest.fixture(scope="session")
def server(chromium_path):
    ARTIFACTS.mkdir(exist_ok=True)
    srv = Server()
    try:
        srv.wait_healthy()
        yield srv
    finally:
        srv.stop()


@pytest.fixture(scope="session")
def browser(chromium_path):
    os.environ.setdefault("PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD", "1")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=chromium_path, args=CHROMIUM_ARGS)
        yield b
        b.close()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    report = yield
    if report.when == "call":
        item.e2e_failed = report.failed
    return report


@pytest.fixture
def page(browser, server, request):
    """A fresh browser session (its own Streamlit session) on the home page, fully rendered."""
    context = browser.new_context(viewport={"width": 1440, "height": 900})
    pg = context.new_page()
    pg.set_default_timeout(60_000)
    pg.goto(server.url)
    wait_app_idle(pg)
    yield pg
    if getattr(request.node, "e2e_failed", False):
        shot(pg, f"FAILED_{request.node.name}")
    context.close()


def shot(page, name: str) -> Path:
    """Save a full-page screenshot as ``artifacts/e2e_<name>.png``."""
    path = ARTIFACTS / f"e2e_{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path
