"""Drive the real dashboard from many browser sessions at once (load and isolation tests, the benchmark).

* :class:`AppServer` starts ``streamlit run app.py`` on a free 127.0.0.1 port, waits for
  ``/_stcore/health``, samples the server's memory (VmRSS/VmHWM of the process and its children)
  and kills it.
* :func:`train_session` is one student: a fresh browser context opens the Train page, sets the seed
  (and optionally epochs, members, data size), clicks **Train** and polls the page until the result
  is shown, recording the queue position and run state it saw on the way.
* :func:`expected_result` trains the same config headless to know what that student must see.

Everything is bounded: every wait has a timeout and the server is always killed.  Only loopback is
used.  Nothing here imports Streamlit.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run"]
os.environ.setdefault("PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD", "1")


def chromium_available() -> bool:
    """Whether Debian's Chromium and the Playwright client are installed."""
    try:
        import playwright  # noqa: F401
    except ImportError:
        return False
    return Path(CHROMIUM).exists()


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nobody listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _proc_tree(pid: int) -> list[int]:
    """``pid`` and all its descendants (from /proc)."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                ppid = int(f.read().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        children.setdefault(ppid, []).append(int(entry))
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        todo.extend(children.get(p, []))
    return out


def _status_kib(pid: int, key: str) -> int:
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith(key + ":"):
                    return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        pass
    return 0


_HZ = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def _cpu_seconds(pid: int) -> float:
    """CPU seconds of ``pid`` and of its children that ended and were reaped (utime+stime+cutime+cstime)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return sum(int(x) for x in fields[11:15]) / _HZ
    except (OSError, IndexError, ValueError):
        return 0.0


def cpu_split(server_pid: int) -> dict[str, float]:
    """CPU seconds used so far by the browsers (every Chromium process), the server and its training workers.

    Take it twice and subtract: a renderer that ended in between is counted by the Chromium
    process that reaped it, a worker by the server.
    """
    server_tree = set(_proc_tree(server_pid))
    out = {"browsers": 0.0, "server": 0.0, "training workers": 0.0}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        pid = int(entry)
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                cmd = f.read()
        except OSError:
            continue
        if pid in server_tree:
            out["training workers" if pid != server_pid and b"spawn_main" in cmd else "server"] += _cpu_seconds(pid)
        elif b"chromium" in cmd:
            out["browsers"] += _cpu_seconds(pid)
    return out


class AppServer:
    """``streamlit run app.py`` on 127.0.0.1, with a memory sampler.

    Args:
        log_path: where the server's output goes (default: ``artifacts/<log_prefix>-<port>.log``).
        env: extra environment variables for the server.
        log_prefix: the default log file's name prefix.
        app_dir: the folder whose ``app.py`` is served (default: the dashboard).
    """

    def __init__(self, log_path: Path | None = None, env: dict[str, str] | None = None,
                 log_prefix: str = "streamlit-load", app_dir: Path | None = None) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        (ROOT / "artifacts").mkdir(exist_ok=True)
        self.log_path = log_path or ROOT / "artifacts" / f"{log_prefix}-{self.port}.log"
        self._log = open(self.log_path, "w")  # noqa: SIM115 - closed in stop()
        cmd = [sys.executable, "-m", "streamlit", "run", "app.py", "--server.port", str(self.port),
               "--server.headless", "true", "--server.address", "127.0.0.1", "--browser.gatherUsageStats", "false",
               # no module reloads when files change under the running server (other people edit the
               # tree while tests run; a reload makes old session objects fail isinstance checks)
               "--server.fileWatcherType", "none"]
        self.started = time.monotonic()
        self.proc = subprocess.Popen(cmd, cwd=app_dir or ROOT, stdout=self._log, stderr=subprocess.STDOUT,
                                     env={**os.environ, **(env or {})})
        self.peak_rss_kib = 0
        self.peak_hwm_kib = 0
        self._stop_sampling = threading.Event()
        self._sampler: threading.Thread | None = None

    def wait_healthy(self, timeout: float = 90.0, poll_s: float = 0.1) -> float:
        """Block until ``/_stcore/health`` answers 200; returns seconds since start.

        Raises:
            RuntimeError: the server exited.  TimeoutError: not healthy within ``timeout``.
        """
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"streamlit exited with code {self.proc.returncode}; see {self.log_path}")
            try:
                with urllib.request.urlopen(self.url + "/_stcore/health", timeout=2) as r:
                    if r.status == 200:
                        return time.monotonic() - self.started
            except OSError:
                pass
            time.sleep(poll_s)
        raise TimeoutError(f"streamlit did not become healthy in {timeout} s; see {self.log_path}")

    def memory_kib(self) -> tuple[int, int]:
        """Current total VmRSS and the sum of VmHWM (peak RSS) over the server's process tree, in KiB."""
        pids = _proc_tree(self.proc.pid)
        return sum(_status_kib(p, "VmRSS") for p in pids), sum(_status_kib(p, "VmHWM") for p in pids)

    def start_sampling(self, interval: float = 0.25) -> None:
        """Sample the server's memory in a background thread until :meth:`stop`."""
        def loop() -> None:
            while not self._stop_sampling.wait(interval):
                rss, hwm = self.memory_kib()
                self.peak_rss_kib = max(self.peak_rss_kib, rss)
                self.peak_hwm_kib = max(self.peak_hwm_kib, hwm)

        self._sampler = threading.Thread(target=loop, name="rss-sampler", daemon=True)
        self._sampler.start()

    def log_text(self) -> str:
        """What the server printed so far."""
        if not self._log.closed:
            self._log.flush()
        return self.log_path.read_text(errors="replace")

    def stop(self) -> None:
        """Stop sampling, then terminate the server (kill it after 10 s)."""
        self._stop_sampling.set()
        if self.proc.poll() is None:
            rss, hwm = self.memory_kib()
            self.peak_rss_kib, self.peak_hwm_kib = max(self.peak_rss_kib, rss), max(self.peak_hwm_kib, hwm)
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        self._log.close()


# ------------------------------------------------------------------------------ browser side
#: One round trip that tells the poller everything it needs about a page.  ``textContent``, not
#: ``innerText``: the latter forces a layout, and 20 pages polled a few times a second then cost the
#: shared 2 cores more than the app itself.  (Text of elements hidden by CSS is included.)
_PAGE_STATE_JS = """() => {
  const q = (s) => document.querySelector(s);
  const text = (e) => e ? e.textContent.replace(/\\s+/g, " ") : "";
  const app = q("[data-testid='stApp']");
  return {
    script: app ? app.getAttribute("data-test-script-state") : null,
    main: text(q("[data-testid='stMain']")),
    side: text(q("[data-testid='stSidebar']")),
    metrics: [...document.querySelectorAll("[data-testid='stMetric']")].map(m =>
      [...m.querySelectorAll("[data-testid='stMetricLabel'], [data-testid='stMetricValue']")].map(text).join("\\n")),
    exceptions: document.querySelectorAll("[data-testid='stException'], .stException").length,
    errors: [...document.querySelectorAll("[data-testid='stAlertContentError']")].map(text),
    warnings: [...document.querySelectorAll("[data-testid='stAlertContentWarning']")].map(text),
  };
}"""

_QUEUE_RE = re.compile(r"you are number (\d+) in the queue")
_DONE_RE = re.compile(r"(Done|Stopped early): (\d+) member\(s\) after (\d+) of (\d+) epochs in ([\d.]+) s"
                      r"(?: \(waited ([\d.]+) s in the queue\))?")
_RUNNING_RE = re.compile(r"Training — epoch (\d+) of (\d+)")


async def page_state(page: Any) -> dict[str, Any]:
    """The page's text, metrics, exceptions, error and warning boxes (one JS round trip)."""
    return await page.evaluate(_PAGE_STATE_JS)


#: True once the app's script run is over and the main area shows content (sync and async waits share it).
APP_IDLE_JS = """() => {
    const app = document.querySelector("[data-testid='stApp']");
    return app && app.getAttribute("data-test-script-state") === "notRunning"
        && !document.querySelector("[data-testid='stSkeleton']")
        && document.querySelector("[data-testid='stMainBlockContainer'] [data-testid='stElementContainer']");
}"""


async def wait_idle(page: Any, timeout_s: float = 60.0) -> None:
    """Wait until the app's script run is over and the main area shows content."""
    await page.wait_for_selector("[data-testid='stApp']", timeout=timeout_s * 1000)
    # polled every 100 ms, not every animation frame: 20 pages share 2 cores
    await page.wait_for_function(APP_IDLE_JS, timeout=timeout_s * 1000, polling=100)


async def set_number(page: Any, label: str, value: int | float, timeout_s: float = 30.0) -> None:
    """Type ``value`` into the number input labelled ``label`` and commit it (Enter), then wait idle."""
    box = page.locator("[data-testid='stNumberInput']").filter(has_text=label).locator("input")
    await box.fill(str(value), timeout=timeout_s * 1000)
    await box.press("Enter", timeout=timeout_s * 1000)  # (its default, 30 s, lost students under a class's load)
    await asyncio.sleep(0.3)
    await wait_idle(page, timeout_s)


async def nudge_slider(page: Any, label: str, steps: int, timeout_s: float = 30.0) -> None:
    """Move the slider labelled ``label`` by ``steps`` (keyboard arrows), then wait idle."""
    thumb = page.locator("[data-testid='stSlider']").filter(has_text=label).get_by_role("slider")
    await thumb.focus(timeout=timeout_s * 1000)
    key = "ArrowRight" if steps > 0 else "ArrowLeft"
    for _ in range(abs(steps)):
        await thumb.press(key, timeout=timeout_s * 1000)
    await asyncio.sleep(0.5)  # the slider commits after a short debounce
    await wait_idle(page, timeout_s)


@dataclass
class SessionResult:
    """What one browser session did and saw.

    Attributes:
        name: a label for reports.
        seed: the seed it set on the Train page.
        ok: it saw a finished run (``Done``) before its deadline.
        error: why not (timeout, failure message, exception element, ...).
        time_to_result: seconds from pressing Train (the start of Playwright's click, which waits
            until the page can take it) to the result's metrics on screen.
        click_seconds: the part of that the click itself took: a page busy under the class's load
            takes a click late, and a student would be waiting all that time.
        run_seconds: the training seconds the page reported ("... in 2.3 s").
        queue_seconds: the seconds the run waited for a free slot, as the page reported them
            ("(waited 12.3 s in the queue)"; 0 when it started at once).
        members, epochs: from the "Done: M member(s) after E of E epochs" line.
        nll, rmse: the test metrics shown, as text (formatted by the page).
        max_queue_position: the largest "you are number k in the queue" seen (0 = never queued).
        sidebar: the sidebar text once done.
        timeline: (seconds since click, "queued k" | "running" | "done") transitions.
        exceptions: number of traceback elements seen at any poll.
    """

    name: str
    seed: int
    ok: bool = False
    error: str = ""
    time_to_result: float = float("nan")
    run_seconds: float = float("nan")
    queue_seconds: float = float("nan")
    members: int = 0
    epochs: int = 0
    nll: str = ""
    rmse: str = ""
    max_queue_position: int = 0
    sidebar: str = ""
    main: str = ""
    timeline: list[tuple[float, str]] = field(default_factory=list)
    exceptions: int = 0
    script_state: str = ""
    browser_log: list[str] = field(default_factory=list)
    clicked_at: float = float("nan")
    click_seconds: float = float("nan")
    done_at: float = float("nan")


def _metric(metrics: list[str], label: str) -> str:
    for m in metrics:
        lines = [x.strip() for x in m.splitlines() if x.strip()]
        if lines and lines[0] == label and len(lines) > 1:
            return lines[1]
    return ""


def watch_page(page: Any, log: list[str], keep: int = 30) -> None:
    """Record the page's console errors, uncaught exceptions, crashes and navigations in ``log``."""
    t0 = time.monotonic()

    def add(text: str) -> None:
        log.append(f"{time.monotonic() - t0:7.1f}s {text[:300]}")
        del log[:-keep]

    page.on("console", lambda m: add(f"console.{m.type}: {m.text}") if m.type in ("error", "warning") else None)
    page.on("pageerror", lambda e: add(f"pageerror: {e}"))
    page.on("crash", lambda _: add("renderer crashed"))
    page.on("framenavigated", lambda f: add(f"navigated: {f.url}") if f == page.main_frame else None)


async def open_app(browser: Any, url: str, path: str = "train", timeout_s: float = 90.0) -> tuple[Any, Any]:
    """A fresh context (= a new browser session, its own cookies) on ``url/path``, rendered."""
    context = await browser.new_context(viewport={"width": 1400, "height": 1000})
    page = await context.new_page()
    await page.goto(f"{url}/{path}", timeout=timeout_s * 1000)
    await wait_idle(page, timeout_s)
    return context, page


async def configure(page: Any, *, seed: int | None = None, epochs: int | None = None,
                    members_delta: int = 0, timeout_s: float = 60.0) -> None:
    """Set the Train page's seed / members / epochs through the widgets (on the Train page)."""
    if seed is not None:
        await page.get_by_role("tab", name="Ensemble").click(timeout=timeout_s * 1000)
        await set_number(page, "Seed", seed, timeout_s)
    if members_delta:
        await page.get_by_role("tab", name="Ensemble").click(timeout=timeout_s * 1000)
        await nudge_slider(page, "Members M", members_delta, timeout_s)
    if epochs is not None:
        await page.get_by_role("tab", name="Optimiser").click(timeout=timeout_s * 1000)
        await set_number(page, "Epochs", epochs, timeout_s)


async def train_and_wait(page: Any, result: SessionResult, timeout_s: float,
                         on_poll: Any = None, poll_s: float = 0.5) -> SessionResult:
    """Click **Train** and poll until the result's metrics are on screen, a failure, or ``timeout_s``.

    ``on_poll(result, state)`` (optional) is called with each poll's state (for shared bookkeeping).
    On a timeout the page's script state is recorded and a screenshot saved (``load-stuck-<name>.png``).
    The clock starts when the student presses Train: a page that takes the click late (Playwright waits
    until the button can take it; under a class's load that took 2-6 s, in some runs over 40 s) counts
    against its time-to-result, and the click may take the session's whole budget.
    """
    t0 = time.monotonic()
    result.clicked_at = t0
    await page.get_by_role("button", name="Train", exact=True).click(timeout=timeout_s * 1000)
    result.click_seconds = time.monotonic() - t0
    last = ""
    while True:
        now = time.monotonic() - t0
        if now > timeout_s:
            result.error = f"no result after {timeout_s:.0f} s (last state: {last or 'none'})"
            try:
                result.script_state = (await page_state(page))["script"] or ""
                result.error += f"; script {result.script_state}"
                await page.screenshot(path=str(ROOT / "artifacts" / f"load-stuck-{result.name}.png"), timeout=10_000)
            except Exception:  # noqa: BLE001, S110 - best effort
                pass
            break
        try:
            st = await page_state(page)
        except Exception as exc:  # noqa: BLE001 - a navigation in flight; try again
            await asyncio.sleep(poll_s)
            last = f"page error {type(exc).__name__}"
            continue
        result.exceptions = max(result.exceptions, st["exceptions"])
        q = _QUEUE_RE.search(st["main"])
        state = ""
        if q:
            pos = int(q.group(1))
            result.max_queue_position = max(result.max_queue_position, pos)
            state = f"queued {pos}"
        elif _RUNNING_RE.search(st["side"]) or "Epoch " in st["main"] and " left" in st["main"]:
            state = "running"
        done = _DONE_RE.search(st["main"])
        nll = _metric(st["metrics"], "Test NLL")
        if done and nll:
            state = "done"
        if state and state != last:
            result.timeline.append((round(now, 2), state))
            last = state
        if on_poll is not None:
            on_poll(result, state)
        if st["exceptions"]:
            result.error = "a traceback (stException) is on the page"
            break
        failed = [e for e in st["errors"] if "Training failed" in e]
        if failed:
            result.error = failed[0]
            break
        if state == "done":
            result.ok = True
            result.time_to_result = time.monotonic() - t0
            result.done_at = time.monotonic()
            result.members, result.epochs = int(done.group(2)), int(done.group(3))
            result.run_seconds = float(done.group(5))
            result.queue_seconds = float(done.group(6) or 0.0)
            result.nll, result.rmse = nll, _metric(st["metrics"], "Test RMSE")
            result.sidebar, result.main = st["side"], st["main"]
            break
        await asyncio.sleep(poll_s)
    return result


class StartSignal:
    """The teacher's "now press Train": sessions get ready on their own, then all click together.

    Args:
        n: sessions that will call :meth:`ready` (a session that failed to get ready calls it too).
    """

    def __init__(self, n: int) -> None:
        self._n, self._ready, self._go = n, 0, asyncio.Event()

    async def ready(self) -> None:
        """Count this session ready and wait until every session is."""
        self._ready += 1
        if self._ready >= self._n:
            self._go.set()
        await self._go.wait()

    async def started(self) -> None:
        """Wait until the class clicks (without counting as a session)."""
        await self._go.wait()


async def train_session(browser: Any, url: str, name: str, seed: int, *, epochs: int | None = None,
                        timeout_s: float = 300.0, on_poll: Any = None,
                        start: StartSignal | None = None) -> SessionResult:
    """One student: open Train in a new context, set ``seed`` (and ``epochs``), train, wait for the result.

    With ``start``, the session waits after configuring until every session of ``start`` is ready.
    """
    result = SessionResult(name=name, seed=seed)
    context = page = None
    step = "open"
    signalled = False
    try:
        context, page = await open_app(browser, url, "train", timeout_s)
        watch_page(page, result.browser_log)
        step = "configure"
        await configure(page, seed=seed, epochs=epochs, timeout_s=timeout_s)
        if start is not None:
            signalled = True
            await start.ready()
        step = "train"
        await train_and_wait(page, result, timeout_s, on_poll)
    except Exception as exc:  # noqa: BLE001 - reported per session, the others go on
        result.error = result.error or f"{step}: {type(exc).__name__}: {str(exc).splitlines()[0][:200]}"
        result.browser_log += [f"call log: {line.strip()[:160]}"  # what Playwright waited for
                               for line in str(exc).splitlines()[1:][-8:]]
        if start is not None and not signalled:
            await start.ready()  # do not hold the others back
        if page is not None:
            try:
                await page.screenshot(path=str(ROOT / "artifacts" / f"load-fail-{name}.png"), timeout=10_000)
            except Exception:  # noqa: BLE001, S110 - best effort
                pass
    finally:
        if context is not None:
            await context.close()
    return result


@contextlib.asynccontextmanager
async def browser_page(url: str, path: str = "train", timeout_s: float = 90.0) -> AsyncIterator[Any]:
    """One headless Chromium with one fresh session on ``url/path``, rendered; both closed on exit."""
    from playwright.async_api import async_playwright

    async with async_playwright() as p:
        browser = await launch(p)
        try:
            context, page = await open_app(browser, url, path, timeout_s)
            try:
                yield page
            finally:
                await context.close()
        finally:
            await browser.close()


def yielding_chromium(nice: int) -> str:
    """A launcher for Chromium whose whole browser runs at scheduling priority ``nice`` (1-19).

    Playwright starts the browser in a session of its own, and with the kernel's
    autogroup scheduling (``/proc/sys/kernel/sched_autogroup_enabled``) every
    session gets an equal share of the CPU, whatever its processes' nice values:
    20 simulated students' browsers then take at least half the cores from the server and
    its training workers.  The launcher lowers its autogroup's priority (and its own
    nice value, where autogroups are off) and then runs Chromium.  Returns the
    launcher's path (under ``artifacts/``).
    """
    if not 1 <= nice <= 19:
        raise ValueError(f"nice must be 1-19, not {nice}")
    path = ROOT / "artifacts" / f"chromium-nice{nice}.sh"
    path.parent.mkdir(exist_ok=True)
    path.write_text(f"#!/bin/sh\necho {nice} > /proc/self/autogroup 2>/dev/null\n"
                    f'exec nice -n {nice} {CHROMIUM} "$@"\n')
    path.chmod(0o755)
    return str(path)


async def launch(playwright: Any, nice: int = 0) -> Any:
    """Debian's Chromium, headless, with the project's flags (never downloads a browser).

    ``nice`` > 0 runs the browser at that lower priority (see :func:`yielding_chromium`).
    """
    executable = yielding_chromium(nice) if nice else CHROMIUM
    return await playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS, headless=True)


# ------------------------------------------------------------------------------ the truth
def expected_result(seed: int, epochs: int | None = None, *, members: int = 5, n: int = 20) -> dict[str, Any]:
    """Train the Train page's default config with ``seed`` headless: what the page must show.

    Args:
        seed: the run's seed (Train page, Ensemble tab).
        epochs: epochs (default: the page's 300).
        members: members M.
        n: training points of the default cubic toy (Data page).

    Uses one torch thread, as the server's job pool does on a small machine, so the numbers are
    the same bit for bit.  Returns the page-formatted ``nll`` (``.3f``) and ``rmse`` (``.3g``),
    the raw values, the healthy member count and the training seconds.
    """
    import torch

    from ensemble_core.config import DataSpec, RunConfig
    from ensemble_core.data import load_dataset
    from ensemble_core.metrics import evaluate
    from ensemble_core.predict import predict
    from ensemble_core.training import train

    torch.set_num_threads(1)
    spec = DataSpec(n=n)
    cfg = RunConfig(data=spec).replace(**{"optim.epochs": epochs or 300, "seed": seed, "strategy.members": members})
    ds = load_dataset(spec)
    run = train(cfg, ds)
    scores = evaluate(predict(run, ds.x_test), ds.y_test)
    return {"seed": seed, "nll": f"{scores['nll']:.3f}", "rmse": f"{scores['rmse']:.3g}",
            "nll_value": scores["nll"], "rmse_value": scores["rmse"], "members": len(run.healthy),
            "seconds": run.seconds}


async def warm_up(browser: Any, url: str, timeout_s: float = 90.0) -> None:
    """Open the app's root once and wait for it to render.

    Works around a Streamlit race (see tests/load/test_isolation.py::test_concurrent_first_visits...):
    until one session has run ``app.py`` (which calls ``st.navigation``), Streamlit treats the
    ``pages/`` folder as a v1 multipage app, and concurrent first visitors of a deep link crash.
    """
    context, _ = await open_app(browser, url, "", timeout_s)
    await context.close()


#: A bare Streamlit page with the Train page's journey and none of its content (see its docstring).
BARE_APP = ROOT / "benchmarks" / "bare_app" / "app.py"


async def bare_class(n: int, timeout_s: float = 120.0, settle_s: float = 5.0) -> dict[str, float]:
    """``n`` students press Train together on :data:`BARE_APP`: what Streamlit alone costs them.

    Serves the bare page (with the dashboard's ``.streamlit/config.toml``) from a temporary folder,
    opens ``n`` sessions in a Chromium of its own (the project's flags), lets them settle for
    ``settle_s``, then clicks Train in all of them at once and waits until each shows its result.
    Returns the CPU seconds from the click to the last result of the browsers (``browsers``: every
    Chromium process on the machine, so run it with no other browser open) and of the server
    (``server``), the browsers' per student (``per_student``), the wall seconds (``wall_s``) and
    how many got their result (``completed``).

    Raises:
        RuntimeError / TimeoutError: the server did not start.
    """
    import shutil
    import tempfile

    from playwright.async_api import async_playwright

    with tempfile.TemporaryDirectory(prefix="bare-app-") as tmp:
        shutil.copy(BARE_APP, Path(tmp) / "app.py")
        shutil.copytree(ROOT / ".streamlit", Path(tmp) / ".streamlit")
        server = AppServer(app_dir=Path(tmp), log_prefix="streamlit-bare")
        try:
            server.wait_healthy(timeout=timeout_s)
            async with async_playwright() as p:
                browser = await launch(p)
                try:
                    pages = [(await open_app(browser, server.url, "", timeout_s))[1] for _ in range(n)]
                    await asyncio.sleep(settle_s)

                    async def student(page: Any) -> bool:
                        try:
                            await page.get_by_role("button", name="Train", exact=True).click(timeout=timeout_s * 1000)
                            await page.wait_for_function(  # polled as train_and_wait polls the dashboard
                                "() => document.body.innerText.includes('Test NLL')", timeout=timeout_s * 1000,
                                polling=500)
                            return True
                        except Exception:  # noqa: BLE001 - counted as not completed
                            return False

                    before, t0 = cpu_split(server.proc.pid), time.monotonic()
                    done = await asyncio.gather(*(student(page) for page in pages))
                    after, wall = cpu_split(server.proc.pid), time.monotonic() - t0
                finally:
                    await browser.close()
        finally:
            server.stop()
    used = {k: after[k] - before[k] for k in ("browsers", "server")}
    return {**used, "per_student": used["browsers"] / max(1, n), "wall_s": wall, "completed": float(sum(done))}


def run_async(coro: Any) -> Any:
    """``asyncio.run(coro)`` in a fresh thread.

    The e2e suite's session-scoped sync Playwright keeps an event loop running in the
    main thread, where ``asyncio.run`` refuses to start; a thread of our own has none.
    """
    box: dict[str, Any] = {}

    def target() -> None:
        try:
            box["value"] = asyncio.run(coro)
        except BaseException as exc:  # re-raised in the caller's thread
            box["error"] = exc

    t = threading.Thread(target=target, name="load-test-asyncio")
    t.start()
    t.join()
    if "error" in box:
        raise box["error"]
    return box.get("value")
