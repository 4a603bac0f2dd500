"""Fixtures for the AppTest suites: a fresh app session per test.

Helpers live in ``apphelpers.py``.  Bridge: some suites write ``from conftest
import ...``; pytest leaves the *last* imported conftest.py under that name, and
this one is imported after ``tests/conftest.py``.  So this module re-exports the
AppTest helpers (for the page suites here) and the public helpers of
``tests/conftest.py`` (for the core suites collected after this folder).  Import
helpers from a named module instead (``apphelpers``) and this bridge can go.
"""

from __future__ import annotations

import importlib.util

import pytest
from apphelpers import ROOT, RouterPagesManager, chart_specs, open_page, run_until, sidebar_text, values  # noqa: F401 - bridge
from streamlit.testing.v1 import AppTest
from streamlit.testing.v1 import app_test as _app_test


def _reexport_core_helpers() -> None:
    path = ROOT / "tests" / "conftest.py"
    if not path.exists():
        return
    spec = importlib.util.spec_from_file_location("_tests_root_conftest", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    for name in dir(module):
        obj = getattr(module, name)
        if not name.startswith("_") and name not in globals() and not hasattr(obj, "_fixture_function_marker") \
                and not hasattr(obj, "_pytestfixturefunction") and callable(obj) and getattr(obj, "__module__", "") == module.__name__:
            globals()[name] = obj


_reexport_core_helpers()


@pytest.fixture
def app(monkeypatch) -> AppTest:
    """A new browser session of the whole app (router + chrome), already run once (Home)."""
    monkeypatch.setattr(_app_test, "PagesManager", RouterPagesManager)
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=60)
    at.run()
    assert not at.exception, at.exception
    return at


@pytest.fixture
def fresh(monkeypatch):
    """A factory: a new browser session of the whole app opened with ``params`` in its URL."""
    monkeypatch.setattr(_app_test, "PagesManager", RouterPagesManager)

    def make(params: dict[str, str] | None = None, page: str | None = None) -> AppTest:
        at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=60)
        at.query_params.update(params or {})
        at.run()
        assert not at.exception, [e.message for e in at.exception]
        return open_page(at, page) if page else at

    return make
