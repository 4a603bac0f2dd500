"""Issue 16's attacks through a live ``streamlit run app.py`` server, measured from outside.

For every attack (hostile links, hostile run zips, a CSV with a Markdown-image column name) the
test asserts: a clear message and no exception on the page, the server's own resident memory grows
by at most ~300 MB, ``/_stcore/health`` always answers within 1 s, and nothing was fetched from
the attacker's URL.  The server is this module's own (not the shared e2e one), so the memory it
measures is the attack's.  ``benchmarks/bench_live_attacks.py`` prints the same measurements as a
table (and against an older checkout).
"""

from __future__ import annotations

import pytest
from e2e_fixtures import browser, chromium_path  # noqa: F401 - fixtures
from e2e_server import Server
from live_attacks import MAX_GROWTH_MB, MAX_HEALTH_S, attacks, run_attack

pytestmark = pytest.mark.e2e

#: What the page must say for each attack (a substring of its messages, case-insensitive).
SAYS = {
    "link: schedule chart, 100k rows, batch 1, 1500 ep": "classroom limit is 50,000 rows",
    "link: 10k rows, batch 8, 5000 ep, 20 members": "classroom limit",
    "link: 15k rows, full batch, 20 x 1x1024": "classroom limit",
    "link: features JSON nested 3,000 deep": "link",
    "import: run.json with a 100 MB lr_trace": "cannot be imported",
    "import: float8 40-member 8x1024 model": "cannot be imported",
    "upload: CSV column named as a Markdown image": "cannot be used",
}


@pytest.fixture(scope="module")
def attacked_server():
    srv = Server()
    try:
        srv.wait_healthy()
        yield srv
    finally:
        srv.stop()


@pytest.fixture(scope="module")
def warm(browser, attacked_server, tmp_path_factory):  # noqa: F811
    """Open every page once, so the first attack is not charged the server's cold imports."""
    context = browser.new_context()
    page = context.new_page()
    from e2e_server import wait_app_idle

    for path in ("/", "/train", "/data", "/uncertainty", "/lessons", "/compare"):
        page.goto(attacked_server.url + path)
        wait_app_idle(page, timeout_ms=120_000)
    context.close()
    return attacked_server


@pytest.mark.parametrize("name", list(SAYS))
def test_an_attack_gets_a_message_and_leaves_the_server_healthy(name, browser, warm, tmp_path):  # noqa: F811
    out = run_attack(browser, warm, name, attacks()[name], tmp_path)
    assert out.exceptions == 0, out
    assert SAYS[name].lower() in out.said.lower(), out.said
    assert out.growth_mb <= MAX_GROWTH_MB, f"server grew {out.growth_mb:.0f} MB: {out}"
    assert out.health_failures == 0 and out.health_max_s <= MAX_HEALTH_S, out
    assert not out.leaked_requests, out.leaked_requests
