"""The load harness's own behaviour: the yielding browser of ``load_classroom.py --browser-nice``, its CPU split, the bare page."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from .harness import (
    _DONE_RE,
    _cpu_seconds,
    bare_class,
    chromium_available,
    cpu_split,
    launch,
    run_async,
    yielding_chromium,
)

pytestmark = [pytest.mark.e2e]


def _chromium_pids() -> set[int]:
    pids = set()
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                cmd = Path(f"/proc/{entry}/cmdline").read_bytes()
            except OSError:
                continue
            if b"chromium" in cmd and b"crashpad" not in cmd:  # crash handlers start sessions of their own
                pids.add(int(entry))
    return pids


def _priority(pid: int) -> int:
    """The autogroup's nice value where the kernel groups by session, else the process's own."""
    try:
        return int(Path(f"/proc/{pid}/autogroup").read_text().split("nice")[1])
    except (OSError, IndexError, ValueError):
        return os.getpriority(os.PRIO_PROCESS, pid)


def test_the_done_line_is_read_with_and_without_a_queue_wait() -> None:
    # the page's wording (pages/chrome.job_status; its AppTest pins the same words)
    waited = _DONE_RE.search("Done: 5 member(s) after 300 of 300 epochs in 2.18 s (waited 10.7 s in the queue). The run")
    assert waited.groups() == ("Done", "5", "300", "300", "2.18", "10.7")
    at_once = _DONE_RE.search("Stopped early: 2 member(s) after 40 of 300 epochs in 0.52 s. The run is kept")
    assert at_once.groups() == ("Stopped early", "2", "40", "300", "0.52", None)


def test_the_launcher_rejects_priorities_outside_1_to_19() -> None:
    for bad in (0, 20, -5):
        with pytest.raises(ValueError, match="1-19"):
            yielding_chromium(bad)


def test_a_yielding_browser_runs_at_the_lower_priority() -> None:
    if not chromium_available():
        pytest.skip("Chromium (/usr/bin/chromium) or Playwright is not installed")
    before = _chromium_pids()

    async def browse() -> dict[int, int]:
        from playwright.async_api import async_playwright

        async with async_playwright() as p:
            browser = await launch(p, nice=7)
            try:
                page = await browser.new_page()
                await page.set_content("<p>ready</p>")
                assert await page.text_content("p") == "ready"
                return {pid: _priority(pid) for pid in _chromium_pids() - before}
            finally:
                await browser.close()

    seen = run_async(browse())
    assert seen, "no Chromium process started"
    assert set(seen.values()) == {7}, seen


def test_the_cpu_split_counts_the_server_and_its_training_workers() -> None:
    """This process stands in for the server: its own CPU and a 'spawn_main' child's are told apart."""
    import subprocess
    import sys
    import time

    before = cpu_split(os.getpid())
    burn = "import time\nt = time.process_time()\nwhile time.process_time() - t < 0.3: pass\ntime.sleep(60)"
    child = subprocess.Popen([sys.executable, "-c", "# spawn_main (a training worker's command line)\n" + burn])
    try:
        t = time.process_time()
        while time.process_time() - t < 0.3:
            pass
        deadline = time.monotonic() + 30
        while _cpu_seconds(child.pid) < 0.3 and time.monotonic() < deadline:
            time.sleep(0.05)
        after = cpu_split(os.getpid())
    finally:
        child.kill()
        child.wait()
    assert after["server"] - before["server"] >= 0.29
    assert after["training workers"] - before["training workers"] >= 0.29
    assert after["browsers"] >= before["browsers"]


def test_the_bare_page_class_reaches_every_result_and_measures_the_browsers() -> None:
    """The benchmark's floor: a bare page with the Train page's journey, two students at once."""
    if not chromium_available():
        pytest.skip("Chromium (/usr/bin/chromium) or Playwright is not installed")
    got = run_async(bare_class(2, timeout_s=60, settle_s=1.0))
    assert got["completed"] == 2
    assert got["wall_s"] >= 1.5  # a "run" takes 1.5 s after the click
    assert 0 < got["browsers"] < 20 and got["per_student"] == got["browsers"] / 2
