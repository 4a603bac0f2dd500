"""Start and stop ``streamlit run app.py`` on a free localhost port (shared by the e2e tests and benchmarks)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run"]


def free_port() -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Server:
    """A ``streamlit run app.py`` subprocess; ``url`` once :meth:`wait_healthy` returned."""

    def __init__(self, port: int | None = None, env: dict[str, str] | None = None) -> None:
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = open(ROOT / "artifacts" / f"streamlit-{self.port}.log", "w")  # noqa: SIM115
        cmd = [sys.executable, "-m", "streamlit", "run", "app.py", "--server.port", str(self.port),
               "--server.headless", "true", "--server.address", "127.0.0.1", "--browser.gatherUsageStats", "false",
               "--server.fileWatcherType", "none"]  # no module reloads while others edit the tree
        self.started = time.monotonic()
        self.proc = subprocess.Popen(cmd, cwd=ROOT, stdout=self.log, stderr=subprocess.STDOUT,
                                     env={**os.environ, **(env or {})})

    def wait_healthy(self, timeout: float = 60.0) -> float:
        """Block until ``/_stcore/health`` answers ok; returns seconds since start."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"streamlit exited with code {self.proc.returncode}; see {self.log.name}")
            try:
                with urllib.request.urlopen(self.url + "/_stcore/health", timeout=1) as r:
                    if r.status == 200:
                        return time.monotonic() - self.started
            except OSError:
                pass
            time.sleep(0.05)
        raise TimeoutError(f"streamlit did not become healthy in {timeout} s")

    def stop(self) -> None:
        """Terminate the server (kill it if it does not exit in 10 s)."""
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)
        self.log.close()


def wait_app_idle(page, timeout_ms: int = 60_000) -> None:
    """Wait until the Streamlit app finished its script run (no 'running' indicator, content present)."""
    page.wait_for_selector("[data-testid='stApp']", timeout=timeout_ms)
    page.wait_for_function(
        """() => {
            const app = document.querySelector("[data-testid='stApp']");
            return app && app.getAttribute("data-test-script-state") === "notRunning"
                && !document.querySelector("[data-testid='stSkeleton']")
                && document.querySelector("[data-testid='stMainBlockContainer'] [data-testid='stElementContainer']");
        }""", timeout=timeout_ms)


def shot(page, name: str) -> Path:
    """Save a full-page screenshot as ``artifacts/e2e_<name>.png``."""
    path = ROOT / "artifacts" / f"e2e_{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path
