"""Fixtures of the browser load/isolation tests: one ``streamlit run app.py`` on 127.0.0.1 for the package.

The tests skip (with the reason) when Debian's Chromium or Playwright is missing.  Browsers are
driven with Playwright's async API (many contexts at once); each test runs its own event loop.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from .harness import AppServer, chromium_available, launch, run_async, warm_up


@pytest.fixture(scope="package")
def server() -> Iterator[AppServer]:
    """A running dashboard (``streamlit run app.py --server.port <free> --server.headless true``).

    Waits for ``/_stcore/health``, opens the root once (see :func:`harness.warm_up`), yields the
    :class:`AppServer` (``.url``) and kills the server afterwards.
    """
    if not chromium_available():
        pytest.skip("Chromium (/usr/bin/chromium) or Playwright is not installed")
    srv = AppServer()
    try:
        srv.wait_healthy(timeout=90)
        srv.start_sampling()

        async def _warm() -> None:
            from playwright.async_api import async_playwright

            async with async_playwright() as p:
                browser = await launch(p)
                try:
                    await warm_up(browser, srv.url)
                finally:
                    await browser.close()

        run_async(_warm())
        yield srv
    finally:
        srv.stop()


@pytest.fixture(scope="package")
def app_url(server: AppServer) -> str:
    """The running dashboard's URL (``http://127.0.0.1:<port>``)."""
    return server.url
