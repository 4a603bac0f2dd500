"""Dashboard benchmark: live-chart overhead and time to first render (issue 3).

In one run:

(a) the default training run (the Train page's defaults: cubic toy, 5 members)
    headless through :class:`ensemble_core.jobs.JobPool` in this process, against
    the same run started from the Train page of ``streamlit run app.py`` in
    Chromium with its live charts on.  Both are warmed up with a 2-epoch run
    first (the engine's first call pays one-off costs), and the training time is
    the run's own ``Run.seconds`` in both cases.  Target: ratio <= 1.25.
(b) the time from launching ``streamlit run app.py`` to the first page fully
    rendered in an already running Chromium.  Target <= 3 s.

Usage: ``python benchmarks/bench_app.py [--epochs N] [--repeats R]``.  The
machine is shared, so the numbers are noisy; the headless baseline is run
before and after the browser run and averaged.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests" / "e2e"))

from e2e_server import CHROMIUM, CHROMIUM_ARGS, Server, wait_app_idle  # noqa: E402

os.environ.setdefault("PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD", "1")


def headless(epochs: int) -> float:
    """Train the default config through a JobPool (as the server does, minus the UI); Run.seconds."""
    from ensemble_core.data import load_dataset
    from ensemble_core.jobs import JobPool
    from pages.ui import default_config

    pool = JobPool(heartbeat_timeout=None)
    try:
        cfg = default_config()
        ds = load_dataset(cfg.data)
        for n in (2, epochs):  # warm-up, then the measured run
            job = pool.submit(cfg.replace(**{"optim.epochs": n}), ds, owner="bench")
            while job.active:
                time.sleep(0.05)
            if job.status != "done":
                raise RuntimeError(f"headless run ended {job.status}: {job.error}")
        return float(job.result.seconds)
    finally:
        pool.shutdown()


def browser_run(browser, epochs: int) -> tuple[float, int]:
    """Train from the Train page with live charts; returns (Run.seconds, chart updates seen)."""
    srv = Server()
    try:
        srv.wait_healthy()
        page = browser.new_page(viewport={"width": 1440, "height": 900})
        page.set_default_timeout(600_000)
        page.goto(srv.url + "/train")
        wait_app_idle(page)
        page.get_by_role("tab", name="Optimiser").click()
        seen = 0
        for n in (2, epochs):
            box = page.get_by_role("spinbutton", name="Epochs", exact=True)
            box.fill(str(n))
            box.press("Enter")
            time.sleep(0.5)
            wait_app_idle(page)
            page.get_by_role("button", name="Train", exact=True).click()
            counts = set()
            done = page.get_by_text(f"after {n} of {n} epochs")
            while not done.count():
                counts.add(page.evaluate("() => document.querySelector('.st-key-train_loss_fig .js-plotly-plot')"
                                         "?.data?.[0]?.x?.length ?? -1"))
                time.sleep(0.2)
            seen = len(counts)
        text = done.first.inner_text()  # "Done: 5 member(s) after N of N epochs in X s. ..."
        seconds = float(text.split(" in ")[1].split(" s")[0])
        page.close()
        return seconds, seen
    finally:
        srv.stop()


def first_render(browser) -> float:
    """Seconds from launching `streamlit run app.py` to the home page fully rendered."""
    t0 = time.monotonic()
    srv = Server()
    try:
        srv.wait_healthy()
        page = browser.new_page(viewport={"width": 1440, "height": 900})
        page.goto(srv.url)
        wait_app_idle(page)
        page.get_by_text("Four ways to build an ensemble").wait_for()
        elapsed = time.monotonic() - t0
        page.close()
        return elapsed
    finally:
        srv.stop()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--epochs", type=int, default=None, help="epochs of the measured run (default: the app's)")
    ap.add_argument("--repeats", type=int, default=3, help="cold starts to time for (b)")
    args = ap.parse_args()
    from pages.ui import default_config

    epochs = args.epochs or default_config().optim.epochs
    from playwright.sync_api import sync_playwright

    (ROOT / "artifacts").mkdir(exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        h1 = headless(epochs)
        live, updates = browser_run(browser, epochs)
        h2 = headless(epochs)
        starts = [first_render(browser) for _ in range(args.repeats)]
        browser.close()
    base = (h1 + h2) / 2
    ratio = live / base
    load = os.getloadavg()[0]
    print(f"\nDashboard benchmark (cubic toy, 5 members, {epochs} epochs; load average {load:.1f} on "
          f"{os.cpu_count()} cores: numbers are noisy)")
    print(f"{'measure':<46}{'value':>12}{'target':>10}{'ok':>5}")
    print(f"{'headless training, s (before / after)':<46}{f'{h1:.1f} / {h2:.1f}':>12}")
    print(f"{'training with live charts in Chromium, s':<46}{live:>12.1f}")
    print(f"{'  distinct loss-chart sizes seen while training':<46}{updates:>12d}")
    print(f"{'ratio live / headless':<46}{ratio:>12.2f}{'<= 1.25':>10}{'yes' if ratio <= 1.25 else 'NO':>5}")
    med = statistics.median(starts)
    print(f"{'streamlit run -> first page rendered, s':<46}{med:>12.2f}{'<= 3.0':>10}{'yes' if med <= 3 else 'NO':>5}")
    print(f"{'  each cold start, s':<46}{', '.join(f'{s:.2f}' for s in starts):>12}")


if __name__ == "__main__":
    main()
