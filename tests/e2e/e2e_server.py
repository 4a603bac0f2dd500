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
           "wait_app_idle", "wait_renderer_idle", "watch_loss_sizes"]

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


#: Resolves once the page's main thread has run animation frames less than 50 ms apart for ``quiet`` ms
#: (Plotly has finished drawing), or after ``most`` ms.
RENDERER_IDLE_JS = """([quiet, most]) => new Promise((resolve) => {
    const t0 = performance.now(); let last = t0, calm = 0;
    function tick(now) { calm = now - last < 50 ? calm + (now - last) : 0; last = now;
        if (calm >= quiet) resolve(true); else if (now - t0 > most) resolve(false); else requestAnimationFrame(tick); }
    requestAnimationFrame(tick); })"""


def wait_renderer_idle(page, quiet_ms: int = 500, most_ms: int = 20_000) -> bool:
    """Wait until the browser has finished drawing the page (its charts draw after the script run ends).

    Returns whether it went quiet within ``most_ms``.
    """
    return bool(page.evaluate(RENDERER_IDLE_JS, [quiet_ms, most_ms]))


def shot(page, name: str) -> Path:
    """Save a full-page screenshot as ``artifacts/e2e_<name>.png``."""
    path = ROOT / "artifacts" / f"e2e_{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


def watch_loss_sizes(page, epochs: int, timeout_s: float = 90.0) -> tuple[set[int], float, list[tuple[float, int]]]:
    """Poll the Train page's live loss chart every 0.1 s until "after N of N epochs" shows (a run just started).

    Returns the distinct point counts the chart showed (-1 and 0 left out), the seconds it took, and
    each change as ``(seconds since the start, point count)`` (to tell a steady pace from a stall).
    """
    import time

    sizes, changes, t0 = set(), [], time.monotonic()
    while time.monotonic() - t0 < timeout_s:
        size = page.evaluate(LOSS_POINTS)
        if size > 0 and size not in sizes:
            changes.append((round(time.monotonic() - t0, 2), size))
        sizes.add(size)
        if f"after {epochs} of {epochs} epochs" in page.evaluate(MAIN_TEXT):
            break
        time.sleep(0.1)
    return sizes - {-1, 0}, time.monotonic() - t0, changes
