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

__all__ = ["CHROMIUM", "CHROMIUM_ARGS", "ROOT", "Server", "free_port", "shot", "wait_app_idle"]


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
