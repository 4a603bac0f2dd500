"""The e2e tests' and benchmarks' view of a ``streamlit run app.py`` server (sync Playwright helpers).

The server itself is :class:`tests.load.harness.AppServer` (free 127.0.0.1 port, health wait, log,
memory sampling); this module adds the synchronous waits and screenshots the e2e journeys use.
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from tests.load.harness import APP_IDLE_JS, CHROMIUM, CHROMIUM_ARGS, AppServer, free_port  # noqa: E402

__all__ = ["CHROMIUM", "CHROMIUM_ARGS", "LOSS_POINTS", "MAIN_TEXT", "ROOT", "Server", "free_port", "shot",
           "wait_app_idle", "watch_loss_sizes"]

#: JS: how many points the Train page's live loss chart draws for its first member (-1: no chart yet).
LOSS_POINTS = """() => { const el = document.querySelector('.st-key-train_loss_fig .js-plotly-plot');
    return el && el.data && el.data.length && el.data[0].x ? el.data[0].x.length : -1; }"""
#: JS: the main area's text.
MAIN_TEXT = "() => document.querySelector(\"[data-testid='stMain']\")?.textContent ?? ''"


class Server(AppServer):
    """A ``streamlit run app.py`` subprocess; ``url`` once :meth:`wait_healthy` returned."""

    def __init__(self, env: dict[str, str] | None = None, app_dir: Path | None = None) -> None:
        super().__init__(env=env, log_prefix="streamlit", app_dir=app_dir)


def wait_app_idle(page, timeout_ms: int = 60_000) -> None:
    """Wait until the Streamlit app finished its script run (no 'running' indicator, content present)."""
    page.wait_for_selector("[data-testid='stApp']", timeout=timeout_ms)
    page.wait_for_function(APP_IDLE_JS, timeout=timeout_ms, polling=100)


def shot(page, name: str) -> Path:
    """Save a full-page screenshot as ``artifacts/e2e_<name>.png``."""
    path = ROOT / "artifacts" / f"e2e_{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


def watch_loss_sizes(page, epochs: int, timeout_s: float = 90.0) -> tuple[set[int], float]:
    """Poll the Train page's live loss chart every 0.1 s until "after N of N epochs" shows (a run just started).

    Returns the distinct point counts the chart showed (-1 and 0 left out) and the seconds it took.
    """
    import time

    sizes, t0 = set(), time.monotonic()
    while time.monotonic() - t0 < timeout_s:
        sizes.add(page.evaluate(LOSS_POINTS))
        if f"after {epochs} of {epochs} epochs" in page.evaluate(MAIN_TEXT):
            break
        time.sleep(0.1)
    return sizes - {-1, 0}, time.monotonic() - t0
