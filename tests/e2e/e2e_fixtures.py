"""Fixtures of the browser tests (a named module, not conftest.py: see tests/app/conftest.py).

One ``streamlit run app.py`` and one Chromium per session.  Without
``/usr/bin/chromium`` the tests skip with that reason, unless the ``CI``
environment variable is set, where they fail instead.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from e2e_server import CHROMIUM, CHROMIUM_ARGS, ROOT, Server, shot, wait_app_idle


@pytest.fixture(scope="session")
def chromium_path() -> str:
    if not Path(CHROMIUM).exists():
        if os.environ.get("CI"):
            pytest.fail(f"{CHROMIUM} is missing but CI is set: the browser tests must run in CI")
        pytest.skip(f"{CHROMIUM} not found: browser tests need Debian's chromium (apt-get install chromium)")
    return CHROMIUM


#: Each test module imports these fixtures, so pytest holds one definition per module; the first
#: module to start the server and Chromium shares them with the others (two sync Playwright
#: instances cannot run in one thread).
_SHARED: dict[str, object] = {}


@pytest.fixture(scope="session")
def server(chromium_path):
    if "server" in _SHARED:
        yield _SHARED["server"]
        return
    (ROOT / "artifacts").mkdir(exist_ok=True)
    srv = Server()
    try:
        srv.wait_healthy()
        _SHARED["server"] = srv
        yield srv
    finally:
        _SHARED.pop("server", None)
        srv.stop()


@pytest.fixture(scope="session")
def browser(chromium_path):
    if "browser" in _SHARED:
        yield _SHARED["browser"]
        return
    os.environ.setdefault("PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD", "1")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=chromium_path, args=CHROMIUM_ARGS)
        _SHARED["browser"] = b
        try:
            yield b
        finally:
            _SHARED.pop("browser", None)
            b.close()


@pytest.fixture
def app_page(browser, server, request):
    """A fresh browser session (its own Streamlit session) on the home page, fully rendered."""
    context = browser.new_context(viewport={"width": 1440, "height": 900})
    pg = context.new_page()
    pg.set_default_timeout(60_000)
    pg.goto(server.url)
    wait_app_idle(pg)
    failed_before = request.session.testsfailed
    yield pg
    if request.session.testsfailed > failed_before:
        shot(pg, f"FAILED_{request.node.name}")
    context.close()


def open_idle(context, url: str):
    """A new page of ``context`` (one browser) at ``url``, once the app has finished drawing it."""
    page = context.new_page()
    page.set_default_timeout(60_000)
    page.goto(url)
    wait_app_idle(page)
    return page


@pytest.fixture(scope="module")
def store_server(chromium_path, tmp_path_factory):
    """A ``streamlit run`` of its own for one test module, with a run store in a temporary ``LAB_DATA_DIR``."""
    srv = Server(env={"LAB_DATA_DIR": str(tmp_path_factory.mktemp("lab-data"))})
    srv.wait_healthy()
    yield srv
    srv.stop()
