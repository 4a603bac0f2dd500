"""Browser mode of ``load_classroom.py``: N students in one niced Chromium, timed by the server's job pool.

Three pieces, all benchmark-only (nothing in ``ensemble_core``/``dashboard`` changes):

* **The traced server.**  ``python benchmarks/classroom_browsers.py run app.py ...`` is
  ``streamlit run`` with one observer added before the app is imported: every time a
  :class:`~ensemble_core.jobs.Job` notifies its listener (it started; it ended), one JSON line with
  its owner, seed, status and the pool's own ``submitted_at`` / ``started_at`` / ``finished_at``
  (``time.monotonic``, which on Linux is one clock for every process of the machine) is appended to
  the file named by :data:`TRACE_ENV`.  So queue wait and training are the *server's* times: a
  starved browser that draws its result late does not lengthen them.  :class:`TracedServer` starts
  it on a free loopback port and kills its whole process tree (training workers, a local Ray) by PID.
* **The yielding browser.**  :class:`YieldingChromium` starts Chromium under ``nice -n 19`` and
  ``SCHED_IDLE`` in the server's own scheduling group, keeps every browser thread there, and
  reads the browsers' CPU (utime+stime of its process tree, reaped children included) from
  ``/proc``; Playwright connects to it over CDP.  One Chromium serves every student, each in a browser context of its own (own cookies, so own browser token,
  session and owner key at the server).
* **The class.**  :func:`browser_class` trains one student alone four times (the first on the
  fresh server pays its warm-up and is dropped), then N students open the Train page through a
  share link carrying their own seed (``train?seed=k&pace=fast&...``: what a teacher hands out;
  typing into the widgets would cost each niced browser several script runs before the class
  starts), wait until all are ready, press **Train** together and wait until their page shows
  the result.

Bounded: every browser wait has a timeout, and the server's tree is killed in a ``finally``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

#: Environment variable naming the server's job trace file (JSON lines, appended).
TRACE_ENV = "LOAD_CLASSROOM_TRACE"
#: Seeds of the single-user runs (the class's students use 1..N).
SINGLE_SEED = 1000


# ------------------------------------------------------------------------------ server side
def install_trace(path: str) -> None:
    """Append one JSON line to ``path`` each time a pool job starts or ends (an observer only).

    Wraps :meth:`ensemble_core.jobs.Job._notify`, which the pool calls when a job starts and when
    it ends; the wrapper records the job's fields, then calls the original unchanged.
    """
    from ensemble_core import jobs

    lock = threading.Lock()
    original = jobs.Job._notify

    def traced(job: Any) -> None:
        try:  # an observer: whatever happens here, the pool's own notification below goes ahead
            cfg, result = job.config, job.result
            rec = {"id": job.id, "owner": job.owner, "seed": cfg.seed, "status": job.status,
                   "epochs": cfg.optim.epochs, "members": cfg.strategy.members,
                   "submitted_at": job.submitted_at, "started_at": job.started_at, "finished_at": job.finished_at,
                   "seconds": getattr(result, "seconds", None), "slots": job._pool.max_running,
                   "executor": getattr(job, "executor", None) or getattr(job._pool, "executor", None)}
            with lock, open(path, "a") as f:
                f.write(json.dumps(rec) + "\n")
        except Exception:  # noqa: BLE001
            logging.getLogger(__name__).exception("load trace: could not record job %s", getattr(job, "id", "?"))
        original(job)

    jobs.Job._notify = traced  # type: ignore[method-assign]


def read_trace(path: Path) -> dict[str, dict[str, Any]]:
    """The trace's last record of each job, by job id (a job's end record replaces its start)."""
    out: dict[str, dict[str, Any]] = {}
    if path.exists():
        for line in path.read_text().splitlines():
            if line.strip():
                rec = json.loads(line)
                out[rec["id"]] = rec
    return out


# ------------------------------------------------------------------------------ /proc
def _children_map() -> dict[int, list[int]]:
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    ppid = int(f.read().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(entry))
    return children


def proc_tree(pid: int) -> list[int]:
    """``pid`` and all its living descendants (from /proc)."""
    children = _children_map()
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        todo.extend(children.get(p, []))
    return out


_HZ = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """utime+stime of ``pid`` plus cutime+cstime (its children that ended and were reaped); 0 if gone."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return sum(int(x) for x in fields[11:15]) / _HZ
    except (OSError, IndexError, ValueError):
        return 0.0


def tree_cpu(pid: int) -> float:
    """CPU seconds of ``pid``'s whole living tree (ended, reaped processes counted by their parent)."""
    return sum(cpu_seconds(p) for p in proc_tree(pid))


# ------------------------------------------------------------------------------ the server
class TracedServer:
    """The dashboard under ``streamlit run`` with the job trace, on a free 127.0.0.1 port.

    Args:
        trace: the trace file (emptied first).
        env: extra environment (``LAB_EXECUTOR``, ``RAY_TMPDIR`` ...).
        log_path: where the server's output goes.
    """

    def __init__(self, trace: Path, env: dict[str, str], log_path: Path) -> None:
        from tests.load.harness import free_port

        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.trace = trace
        trace.write_text("")
        self.log_path = log_path
        self._log = open(log_path, "w")  # noqa: SIM115 - closed in stop()
        cmd = [sys.executable, str(Path(__file__).resolve()), "run", "app.py", "--server.port", str(self.port),
               "--server.headless", "true", "--server.address", "127.0.0.1", "--browser.gatherUsageStats", "false",
               "--server.fileWatcherType", "none"]
        self.started = time.monotonic()
        self.proc = subprocess.Popen(cmd, cwd=ROOT, stdout=self._log, stderr=subprocess.STDOUT,
                                     env={**os.environ, **env, TRACE_ENV: str(trace)})
        self.seen: set[int] = {self.proc.pid}

    def wait_healthy(self, timeout: float = 120.0) -> float:
        """Block until ``/_stcore/health`` answers; seconds since start.  Raises RuntimeError / TimeoutError."""
        import urllib.request

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"the server exited ({self.proc.returncode}); see {self.log_path}")
            try:
                with urllib.request.urlopen(self.url + "/_stcore/health", timeout=2) as r:
                    if r.status == 200:
                        return time.monotonic() - self.started
            except OSError:
                pass
            time.sleep(0.2)
        raise TimeoutError(f"the server was not healthy in {timeout:.0f} s; see {self.log_path}")

    def cpu(self) -> dict[str, float]:
        """CPU seconds so far of the server process itself and of its descendants (workers, Ray)."""
        tree = proc_tree(self.proc.pid)
        self.seen.update(tree)
        own = cpu_seconds(self.proc.pid)
        return {"server": own, "workers": sum(cpu_seconds(p) for p in tree if p != self.proc.pid)}

    def log_text(self) -> str:
        """What the server printed so far."""
        if not self._log.closed:
            self._log.flush()
        return self.log_path.read_text(errors="replace")

    def stop(self) -> list[int]:
        """Terminate the server, then kill by PID whatever of its tree (ever seen) is left; returns those PIDs."""
        self.seen.update(proc_tree(self.proc.pid))
        start_times = {p: _start_time(p) for p in self.seen}
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        killed = []
        for p in sorted(self.seen - {self.proc.pid}):
            if start_times[p] is not None and _start_time(p) == start_times[p]:  # the same process, not a reused PID
                try:
                    os.kill(p, signal.SIGKILL)
                    killed.append(p)
                except OSError:
                    pass
        self._log.close()
        return killed


def _start_time(pid: int) -> int | None:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return int(f.read().rsplit(")", 1)[1].split()[19])
    except (OSError, IndexError, ValueError):
        return None


# ------------------------------------------------------------------------------ the browser
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run"]
os.environ.setdefault("PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD", "1")


#: Flags Playwright itself passes to the browsers it launches that matter for many pages in one browser:
#: no page of the class is "in the background" and slowed down.
PLAYWRIGHT_LIKE_ARGS = ["--disable-background-timer-throttling", "--disable-backgrounding-occluded-windows",
                        "--disable-renderer-backgrounding", "--disable-ipc-flooding-protection",
                        "--disable-hang-monitor", "--no-default-browser-check", "--mute-audio"]


class YieldingChromium:
    """One headless Chromium at ``nice`` (0-19) in the *server's* scheduling group; Playwright connects over CDP.

    Why not Playwright's ``launch``: Playwright starts the browser in a session of its own, and with
    the kernel's autogroup scheduling (``/proc/sys/kernel/sched_autogroup_enabled``) each session is
    one group that gets an equal share of the CPU whatever its processes' nice values.  A nice value
    alone then does not make the browsers yield to the server; lowering their group's priority
    instead makes them yield to *every* process on the machine (with other people's tests running,
    a nice-19 group did not show one result within 400 s).  Started here, by the benchmark, the
    browser joins the group of the benchmark and the server it started, so within that group the
    kernel ranks them by nice value: the browsers take only what the server leaves, and the group
    as a whole competes with the rest of the machine as any program does.

    Chromium (run as root here) sets its own processes' nice values (its main process to -8, its
    renderers to 0 or 5), which undoes ``nice -n 19``.  So the browser also runs under the
    ``SCHED_IDLE`` policy (``idle``, on when ``nice`` > 0), which every process and thread inherits
    and which makes the nice value irrelevant, and :meth:`enforce` (called by the CPU sampler twice
    a second) puts back nice ``nice`` and ``SCHED_IDLE`` on any browser thread found without them
    (counted in :attr:`reset`).

    ``pid`` is Chromium's main process (``nice`` execs it), the root of every browser process.
    """

    def __init__(self, nice: int, user_data_dir: Path, idle: bool | None = None) -> None:
        if not 0 <= nice <= 19:
            raise ValueError(f"nice must be 0-19, not {nice}")
        self.user_data_dir = user_data_dir
        (user_data_dir / "DevToolsActivePort").unlink(missing_ok=True)
        cmd = ["nice", "-n", str(nice), CHROMIUM, "--headless", "--remote-debugging-port=0",
               "--remote-debugging-address=127.0.0.1", f"--user-data-dir={user_data_dir}",
               *CHROMIUM_ARGS, *PLAYWRIGHT_LIKE_ARGS, "about:blank"]
        self.log = open(ROOT / "artifacts" / f"{user_data_dir.name}.log", "w")  # noqa: SIM115 - closed in stop()
        self.nice = nice
        self.idle = nice > 0 if idle is None else idle
        self.reset = 0

        def idle_policy() -> None:  # in the child, before exec: inherited by every browser process and thread
            os.sched_setscheduler(0, os.SCHED_IDLE, os.sched_param(0))

        self.proc = subprocess.Popen(cmd, stdout=self.log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                     preexec_fn=idle_policy if self.idle else None)  # noqa: PLW1509
        self.pid = self.proc.pid
        self.seen: set[int] = {self.pid}

    def enforce(self) -> int:
        """Put nice :attr:`nice` (and ``SCHED_IDLE``) back on every browser thread that lost it; how many did."""
        fixed = 0
        for p in proc_tree(self.pid):
            try:
                tids = [int(t) for t in os.listdir(f"/proc/{p}/task")]
            except OSError:
                continue
            for tid in tids:
                try:
                    if self.idle and os.sched_getscheduler(tid) != os.SCHED_IDLE:
                        os.sched_setscheduler(tid, os.SCHED_IDLE, os.sched_param(0))
                        fixed += 1
                    if os.getpriority(os.PRIO_PROCESS, tid) < self.nice:  # (on Linux a tid names one thread)
                        os.setpriority(os.PRIO_PROCESS, tid, self.nice)
                        fixed += 1
                except OSError:  # the thread ended
                    continue
        self.reset += fixed
        return fixed

    def endpoint(self, timeout: float = 60.0) -> str:
        """``http://127.0.0.1:PORT`` once Chromium listens (its ``DevToolsActivePort`` file).  Raises TimeoutError."""
        port_file = self.user_data_dir / "DevToolsActivePort"
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"Chromium exited ({self.proc.returncode}); see {self.log.name}")
            try:
                port = int(port_file.read_text().split()[0])
                return f"http://127.0.0.1:{port}"
            except (OSError, ValueError, IndexError):
                time.sleep(0.1)
        raise TimeoutError(f"Chromium did not open its debugging port in {timeout:.0f} s")

    def cpu(self) -> float:
        """CPU seconds so far of every browser process (the tree under Chromium's main process)."""
        tree = proc_tree(self.pid)
        self.seen.update(tree)
        return sum(cpu_seconds(p) for p in tree)

    def stop(self) -> None:
        """Terminate Chromium, then kill by PID any of its processes (ever seen) that are left."""
        self.seen.update(proc_tree(self.pid))
        start_times = {p: _start_time(p) for p in self.seen}
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        for p in self.seen - {self.pid}:
            if start_times[p] is not None and _start_time(p) == start_times[p]:
                with contextlib.suppress(OSError):
                    os.kill(p, signal.SIGKILL)
        self.log.close()


def student_link(seed: int, epochs: int | None) -> str:
    """The Train page's share link for the default run with ``seed`` (and ``epochs``), at the fast pace."""
    from dashboard.settings import default_config
    from ensemble_core import share

    cfg = default_config().replace(seed=seed)
    if epochs:
        cfg = cfg.replace(**{"optim.epochs": epochs})
    return "train?" + urlencode(share.to_query(share.ShareState(config=cfg, page="train", pace="fast")))


@dataclass
class Student:
    """One browser student: what the page did and showed (times are ``time.monotonic``)."""

    name: str
    seed: int
    ok: bool = False
    error: str = ""
    opened_at: float = float("nan")
    clicked_at: float = float("nan")
    shown_at: float = float("nan")
    page_run_s: float = float("nan")
    page_queue_s: float = float("nan")
    max_queue_position: int = 0
    exceptions: int = 0
    nll: str = ""
    log: list[str] = field(default_factory=list)


#: True once the page shows a finished run's result (the "Done" line and the Test NLL metric), a traceback or
#: a failure: the one condition a student waits for.
RESULT_JS = """() => {
  const main = document.querySelector("[data-testid='stMain']");
  const text = main ? main.textContent : "";
  const nll = [...document.querySelectorAll("[data-testid='stMetricLabel']")].some(e => e.textContent.trim() === "Test NLL");
  return (nll && /(Done|Stopped early): \\d+ member/.test(text))
      || document.querySelector("[data-testid='stException'], .stException") !== null
      || [...document.querySelectorAll("[data-testid='stAlertContentError']")].some(e => e.textContent.includes("Training failed"));
}"""
#: How often a waiting student's page is checked.  Rarely: each check is work for a browser that is
#: meant to yield, and the times that matter come from the server's trace, not from these checks.
CHECK_MS = 1000


async def _student(browser: Any, url: str, name: str, seed: int, epochs: int | None, timeout_s: float,
                   start: Any = None, st: Student | None = None) -> Student:
    """Open the seed's link in a fresh context, (wait for the class,) press Train, wait for the result.

    Fills and returns ``st`` (a new :class:`Student` if None), which keeps what was seen if the task is
    cancelled.  The page is checked once a second (:data:`CHECK_MS`) and read in full once, at the end.
    """
    from tests.load.harness import _DONE_RE, APP_IDLE_JS, _metric, page_state, watch_page

    st = st or Student(name=name, seed=seed)
    context = None
    ready = False
    step = "open"
    try:
        st.opened_at = time.monotonic()
        context = await browser.new_context(viewport={"width": 1400, "height": 1000})
        page = await context.new_page()
        watch_page(page, st.log)
        await page.goto(f"{url}/{student_link(seed, epochs)}", timeout=timeout_s * 1000)
        await page.wait_for_function(APP_IDLE_JS, timeout=timeout_s * 1000, polling=CHECK_MS)
        if start is not None:
            ready = True
            await start.ready()
        step = "train"
        st.clicked_at = time.monotonic()
        await page.get_by_role("button", name="Train", exact=True).click(timeout=timeout_s * 1000)
        step = "result"
        await page.wait_for_function(RESULT_JS, timeout=timeout_s * 1000, polling=CHECK_MS)
        st.shown_at = time.monotonic()
        state = await page_state(page)
        st.exceptions = state["exceptions"]
        done = _DONE_RE.search(state["main"])
        failed = [e for e in state["errors"] if "Training failed" in e]
        if st.exceptions:
            st.error = "a traceback (stException) is on the page"
        elif failed:
            st.error = failed[0]
        elif done:
            st.ok = True
            st.page_run_s = float(done.group(5))
            st.page_queue_s = float(done.group(6) or 0.0)
            st.nll = _metric(state["metrics"], "Test NLL")
    except Exception as exc:  # noqa: BLE001 - reported per student; the others go on
        st.error = st.error or f"{step}: {type(exc).__name__}: {str(exc).splitlines()[0][:200]}"
        if start is not None and not ready:
            await start.ready()
    finally:
        if context is not None:
            try:
                await context.close()
            except Exception:  # noqa: BLE001, S110 - the browser may be gone
                pass
    return st


class ClassStart:
    """The teacher's "now press Train": each student calls :meth:`ready` and waits; :meth:`go` releases all."""

    def __init__(self, n: int) -> None:
        self.n, self.count = n, 0
        self._all, self._go = asyncio.Event(), asyncio.Event()

    async def ready(self) -> None:
        """Count this student ready (also one that failed to get ready) and wait for :meth:`go`."""
        self.count += 1
        if self.count >= self.n:
            self._all.set()
        await self._go.wait()

    async def all_ready(self) -> None:
        """Wait until every student called :meth:`ready`."""
        await self._all.wait()

    def go(self) -> None:
        """Everyone presses Train."""
        self._go.set()

    async def started(self) -> None:
        """Wait until :meth:`go`."""
        await self._go.wait()


async def settle(browser_cpu: Any, quiet_cores: float = 0.1, window_s: float = 2.0, bound_s: float = 120.0) -> float:
    """Wait until the browsers use under ``quiet_cores`` for ``window_s`` (their pages drawn), at most ``bound_s``.

    A page is "ready" for the harness before its charts are drawn; a class pressing Train then has
    its clicks queued behind that drawing in browsers that yield the CPU, and they reach the server
    over a minute instead of together.  Returns the seconds waited.
    """
    t0 = time.monotonic()
    last_t, last_cpu = t0, browser_cpu()
    while time.monotonic() - t0 < bound_s:
        await asyncio.sleep(window_s)
        now, cpu = time.monotonic(), browser_cpu()
        if (cpu - last_cpu) / (now - last_t) < quiet_cores:
            break
        last_t, last_cpu = now, cpu
    return time.monotonic() - t0


class CpuSampler:
    """Samples (time, browsers' CPU, server's, its workers') every ``interval`` s in a thread."""

    def __init__(self, server: TracedServer, browser: YieldingChromium, interval: float = 0.5) -> None:
        self.server, self.browser, self.interval = server, browser, interval
        self.samples: list[tuple[float, float, float, float]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="cpu-sampler", daemon=True)

    def take(self) -> tuple[float, float, float, float]:
        """One sample now (also stored)."""
        srv = self.server.cpu()
        s = (time.monotonic(), self.browser.cpu(), srv["server"], srv["workers"])
        self.samples.append(s)
        return s

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            self.browser.enforce()
            self.take()

    def start(self) -> None:
        """Start sampling."""
        self._thread.start()

    def stop(self) -> None:
        """Stop sampling (one last sample is taken)."""
        self._stop.set()
        self._thread.join(5)
        self.take()

    def at(self, t: float) -> tuple[float, float, float, float]:
        """The first sample at or after ``t`` (the last one if none)."""
        for s in sorted(self.samples):
            if s[0] >= t:
                return s
        return max(self.samples)


async def browser_class(server: TracedServer, n: int, epochs: int | None, timeout_s: float, nice: int,
                        singles: int = 3, grace_s: float = 120.0) -> dict[str, Any]:
    """The whole browser measurement on a running ``server``; returns raw students, trace and CPU samples.

    Once the server's trace shows every student's run ended, the pages get ``grace_s`` more seconds
    to show their results (the starved browsers draw late; that is not the server's time); a page
    still drawing then is stopped and reported as such.

    Returns a dict with ``singles`` / ``students`` (:class:`Student` lists; the first single run,
    on the fresh server, is left out of ``singles``), ``trace`` (:func:`read_trace`), ``cpu`` (the
    :class:`CpuSampler`), ``t_open`` / ``t_click`` (when the class began opening its pages and
    when it pressed Train) and ``t_end``.
    """
    from playwright.async_api import async_playwright

    from tests.load.harness import warm_up

    profile = Path(tempfile.mkdtemp(prefix="lc-chromium-"))
    chromium = YieldingChromium(nice, profile)
    sampler = None
    try:
        endpoint = chromium.endpoint()
        async with async_playwright() as p:
            browser = await p.chromium.connect_over_cdp(endpoint)
            try:
                chromium.enforce()
                sampler = CpuSampler(server, chromium)
                sampler.start()
                await warm_up(browser, server.url, timeout_s)
                alone = [await _student(browser, server.url, f"single{k}", SINGLE_SEED + k, epochs, timeout_s)
                         for k in range(singles + 1)]
                start = ClassStart(n)
                t_open = sampler.take()[0]
                students = [Student(name=f"s{i + 1:02d}", seed=i + 1) for i in range(n)]
                tasks = [asyncio.create_task(_student(browser, server.url, st.name, st.seed, epochs, timeout_s, start,
                                                      st)) for st in students]
                await start.all_ready()
                settled_s = await settle(chromium.cpu)
                start.go()
                t_click = sampler.take()[0]
                bound = time.monotonic() + 2 * timeout_s + 30
                ended_at = None
                while time.monotonic() < bound and not all(t.done() for t in tasks):
                    await asyncio.sleep(1.0)
                    if ended_at is None:
                        ended = {r["seed"] for r in read_trace(server.trace).values() if r["finished_at"] is not None}
                        if all(st.seed in ended for st in students):
                            ended_at = time.monotonic()
                            bound = min(bound, ended_at + grace_s)
                pending = [t for t in tasks if not t.done()]
                for t in pending:
                    t.cancel()
                await asyncio.wait(pending, timeout=30) if pending else None
                for st in students:
                    if not st.ok and not st.error:
                        st.error = (f"result not on the page {grace_s:.0f} s after the server's last run ended"
                                    if ended_at is not None else "unfinished at the bound")
                t_end = time.monotonic()
            finally:
                if sampler is not None:
                    sampler.stop()
                with contextlib.suppress(Exception):
                    await browser.close()
    finally:
        chromium.stop()
        shutil.rmtree(profile, ignore_errors=True)
    return {"first": alone[0], "singles": alone[1:], "students": students, "trace": read_trace(server.trace),
            "browser_threads_reset": chromium.reset, "settled_s": settled_s, "browser_idle_policy": chromium.idle,
            "cpu": sampler, "t_open": t_open, "t_click": t_click, "t_end": t_end}


if __name__ == "__main__":  # the traced server: `python benchmarks/classroom_browsers.py run app.py ...`
    trace_path = os.environ.get(TRACE_ENV)
    if trace_path:
        install_trace(trace_path)
    if os.environ.get("LAB_EXECUTOR") == "ray" and not os.environ.get("RAY_ADDRESS"):
        # Workaround, benchmark only: Ray ties a local Ray's processes to the *thread* that started it
        # (PR_SET_PDEATHSIG), and the app starts it in a Streamlit script thread, which soon ends and
        # takes the GCS and raylet with it (seen 3 times here).  Started on this main thread, start_ray()
        # in the app finds it running.
        from ensemble_core.ray_executor import start_ray

        start_ray()
    from streamlit.web import cli

    sys.argv = ["streamlit", *sys.argv[1:]]
    sys.exit(cli.main())
