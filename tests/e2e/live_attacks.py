"""Attacks on a live ``streamlit run app.py`` server, measured from outside (issue 16).

Each attack is what one hostile (or careless) browser can do: open a link, upload a file, open
tabs.  While it runs, a thread asks ``/_stcore/health`` every 50 ms and records the slowest answer,
and another samples the server process's resident memory (its own ``VmRSS``; training workers are
separate processes and are reported apart).  :func:`run_attack` returns one :class:`Outcome` per
attack: what the page said, the server's memory growth and peak, the workers' peak, the server's
CPU-seconds and the slowest health answer.

Used by ``tests/e2e/test_attacks_live.py`` (asserts the bounds) and
``benchmarks/bench_live_attacks.py`` (prints the table, also against an older checkout).
"""

from __future__ import annotations

import threading
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

from e2e_server import Server, wait_app_idle

from tests.load.harness import _cpu_seconds, _proc_tree, _status_kib

#: What the issue allows: a link or an import may grow the server by ~300 MB at most, and the
#: health check answers within a second throughout.
MAX_GROWTH_MB = 300.0
MAX_HEALTH_S = 1.0

LEAK_URL = "http://127.0.0.1:9/leak.png"


@dataclass
class Outcome:
    """What one attack did to the server and what the page said."""

    name: str
    said: str = ""
    exceptions: int = 0
    growth_mb: float = 0.0
    server_peak_mb: float = 0.0
    workers_peak_mb: float = 0.0
    server_cpu_s: float = 0.0
    health_max_s: float = 0.0
    health_failures: int = 0
    seconds: float = 0.0
    leaked_requests: list[str] = field(default_factory=list)


class Watch:
    """Health latency and memory of a server while an attack runs (two daemon threads)."""

    def __init__(self, server: Server, every: float = 0.05) -> None:
        self.server, self.every = server, every
        self.base_kib = _status_kib(server.proc.pid, "VmRSS")
        self.peak_kib = self.base_kib
        self.workers_peak_kib = 0
        self.health_max = 0.0
        self.failures = 0
        self.cpu0 = _cpu_seconds(server.proc.pid)
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._health, daemon=True),
                         threading.Thread(target=self._memory, daemon=True)]
        for t in self._threads:
            t.start()

    def _health(self) -> None:
        while not self._stop.is_set():
            t0 = time.perf_counter()
            try:
                with urllib.request.urlopen(self.server.url + "/_stcore/health", timeout=5) as r:
                    r.read()
            except OSError:
                self.failures += 1
            self.health_max = max(self.health_max, time.perf_counter() - t0)
            self._stop.wait(self.every)

    def _memory(self) -> None:
        pid = self.server.proc.pid
        while not self._stop.is_set():
            self.peak_kib = max(self.peak_kib, _status_kib(pid, "VmRSS"))
            workers = sum(_status_kib(p, "VmRSS") for p in _proc_tree(pid) if p != pid)
            self.workers_peak_kib = max(self.workers_peak_kib, workers)
            self._stop.wait(self.every)

    def finish(self, out: Outcome) -> Outcome:
        self._stop.set()
        for t in self._threads:
            t.join(5)
        pid = self.server.proc.pid
        self.peak_kib = max(self.peak_kib, _status_kib(pid, "VmRSS"))
        out.growth_mb = (self.peak_kib - self.base_kib) / 1024
        out.server_peak_mb = self.peak_kib / 1024
        out.workers_peak_mb = self.workers_peak_kib / 1024
        out.server_cpu_s = _cpu_seconds(pid) - self.cpu0
        out.health_max_s = self.health_max
        out.health_failures = self.failures
        return out


def _said(page: Any) -> tuple[str, int]:
    """The page's error/warning/info texts, and how many exception boxes it shows."""
    texts = page.locator("[data-testid='stAlertContainer']").all_inner_texts()
    exceptions = page.locator("[data-testid='stException']").count()
    return " | ".join(" ".join(t.split()) for t in texts), exceptions


def _open(page: Any, url: str) -> None:
    page.goto(url)
    wait_app_idle(page, timeout_ms=120_000)


# ------------------------------------------------------------------------------- the attacks
def link(path: str) -> Callable[[Any, str, Path], None]:
    def attack(page: Any, base: str, tmp: Path) -> None:
        _open(page, base + path)
    return attack


def nested_link(depth: int = 3000) -> Callable[[Any, str, Path], None]:
    value = quote("[" * depth + "]" * depth)
    return link(f"/train?data.source=csv&data.features={value}&page=train")


def import_zip(make: Callable[[], bytes], name: str) -> Callable[[Any, str, Path], None]:
    def attack(page: Any, base: str, tmp: Path) -> None:
        path = tmp / name
        path.write_bytes(make())
        _open(page, base + "/uncertainty")
        page.get_by_text("Or import a run you exported earlier").click()
        page.locator("[data-testid='stFileUploader'] input[type='file']").set_input_files(str(path))
        # the import ended when it was refused, or when the page shows the imported run
        page.wait_for_function("""() => {
            const t = (document.querySelector("[data-testid='stMain']") || {}).textContent || "";
            return t.includes("cannot be imported") || t.includes("Cannot show this run") || !t.includes("No run yet");
        }""", timeout=300_000, polling=200)
        wait_app_idle(page, timeout_ms=120_000)
    return attack


def leaking_csv() -> Callable[[Any, str, Path], None]:
    """A CSV whose constant target column is named as a Markdown image pointing at LEAK_URL."""
    def attack(page: Any, base: str, tmp: Path) -> None:
        path = tmp / "leak.csv"
        rows = "\n".join(f"{i},{i * 2},5" for i in range(30))
        path.write_text(f"a,b,![t]({LEAK_URL})\n{rows}\n")
        _open(page, base + "/data")
        page.get_by_text("Your CSV", exact=True).click()
        wait_app_idle(page)
        page.locator("[data-testid='stFileUploader'] input[type='file']").set_input_files(str(path))
        page.wait_for_selector("[data-testid='stAlertContainer']", timeout=60_000)
        wait_app_idle(page)
        page.wait_for_timeout(500)  # give an injected image time to be fetched
    return attack


def attacks() -> dict[str, Callable[[Any, str, Path], None]]:
    """The issue's cases, by name."""
    from tests.attack_zips import float8_model_zip, huge_lr_trace_zip

    return {
        "link: schedule chart, 100k rows, batch 1, 1500 ep": link(
            "/train?data.n=100000&optim.epochs=1500&optim.batch_size=1&optim.schedule=constant"
            "&hide=optim,data&page=train"),
        "link: 10k rows, batch 8, 5000 ep, 20 members": link(
            "/train?data.n=10000&optim.epochs=5000&strategy.members=20&model.hidden_layers=0"
            "&optim.batch_size=8&page=train"),
        "link: 15k rows, full batch, 20 x 1x1024": link(
            "/train?data.n=15000&optim.batch_size=15000&optim.epochs=7&strategy.members=20"
            "&model.hidden_layers=1&model.width=1024&page=train"),
        "link: features JSON nested 3,000 deep": nested_link(),
        "import: run.json with a 100 MB lr_trace": import_zip(huge_lr_trace_zip, "lr_trace.zip"),
        "import: float8 40-member 8x1024 model": import_zip(float8_model_zip, "float8.zip"),
        "upload: CSV column named as a Markdown image": leaking_csv(),
    }


def run_attack(browser: Any, server: Server, name: str, attack: Callable[[Any, str, Path], None],
               tmp: Path) -> Outcome:
    """Run ``attack`` in a fresh browser context against ``server``, measured."""
    out = Outcome(name)
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.on("request", lambda r: out.leaked_requests.append(r.url) if r.url.startswith("http://127.0.0.1:9") else None)
    watch = Watch(server)
    t0 = time.perf_counter()
    try:
        attack(page, server.url, tmp)
        out.said, out.exceptions = _said(page)
    finally:
        out.seconds = time.perf_counter() - t0
        watch.finish(out)
        context.close()
    return out
