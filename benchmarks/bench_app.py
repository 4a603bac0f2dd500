"""Dashboard benchmark: live-chart overhead and time to first render (issue 3).

In one run:

(a) the default training run (the Train page's defaults: cubic toy, 5 members)
    headless through :class:`ensemble_core.jobs.JobPool` in this process, against
    the same run started from the Train page of ``streamlit run app.py`` in
    Chromium with its live charts on.  Both are warmed up with a 2-epoch run
    first (the engine's first call pays one-off costs), and the training time is
    the run's own ``Run.seconds`` in both cases (the median of P runs of N, N+1,
    ... epochs: each browser run needs its own "after N of N epochs" text), the
    headless and live runs alternating.  Target: ratio <= 1.25.
(a') the same Train page at the watchable pace (issue 20): the same run spread over ~9 s; the
    distinct loss-chart sizes seen while it trains (target >= 20) against the fast runs' count.
(b) the time from launching ``streamlit run app.py`` to the first page fully
    rendered in an already running Chromium.  Target <= 3 s.  Beside it, the
    same measure for a bare Streamlit app (a title and a heading, same config):
    the floor that Streamlit's own start and frontend set on this machine.

Usage: ``python benchmarks/bench_app.py [--epochs N] [--train-repeats P] [--watch-repeats W] [--repeats R]``
(``--repeats 0`` skips (b)).  The
machine is shared, so the numbers are noisy: medians, and runs that alternate.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests" / "e2e"))

from e2e_server import CHROMIUM, CHROMIUM_ARGS, Server, wait_app_idle  # noqa: E402

os.environ.setdefault("PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD", "1")


class Headless:
    """The default config trained through a :class:`JobPool` (as the server does, minus the UI)."""

    def __init__(self) -> None:
        from dashboard.state import default_config
        from ensemble_core.data import load_dataset
        from ensemble_core.jobs import JobPool

        self.pool = JobPool(heartbeat_timeout=None)
        self.cfg = default_config()
        self.ds = load_dataset(self.cfg.data)
        self.run(2)  # warm-up

    def run(self, epochs: int) -> float:
        """One run of ``epochs``; its ``Run.seconds``."""
        job = self.pool.submit(self.cfg.replace(**{"optim.epochs": epochs}), self.ds, owner="bench")
        while job.active:
            time.sleep(0.05)
        if job.status != "done":
            raise RuntimeError(f"headless run ended {job.status}: {job.error}")
        return float(job.result.seconds)

    def close(self) -> None:
        self.pool.shutdown()


#: (points in the loss chart's first trace, the main area's text): no layout, no Playwright text search.
_PROBE_JS = """() => [document.querySelector('.st-key-train_loss_fig .js-plotly-plot')?.data?.[0]?.x?.length ?? -1,
                      document.querySelector("[data-testid='stMain']")?.textContent ?? '']"""


class Live:
    """The Train page of ``streamlit run app.py`` in Chromium, training with its live charts on."""

    def __init__(self, browser) -> None:
        self.srv = Server()
        self.srv.wait_healthy()
        self.page = browser.new_page(viewport={"width": 1440, "height": 900})
        self.page.set_default_timeout(600_000)
        self.page.goto(self.srv.url + "/train")
        wait_app_idle(self.page)
        self.page.get_by_role("tab", name="Optimiser").click()
        self.run(2)  # warm-up

    def set_pace(self, label: str) -> None:
        """Press the Train page's pace control (``"As fast as possible"`` or ``"Watchable (~9 s)"``)."""
        self.page.locator("button", has_text=label).first.click()
        time.sleep(0.5)
        wait_app_idle(self.page)

    def run(self, epochs: int) -> tuple[float, int]:
        """One run of ``epochs`` (each run needs its own count: the Done text names it); its
        ``Run.seconds`` and how many sizes of the loss chart were seen while it trained."""
        page = self.page
        box = page.get_by_role("spinbutton", name="Epochs", exact=True)
        box.fill(str(epochs))
        box.press("Enter")
        time.sleep(0.5)
        wait_app_idle(page)
        page.get_by_role("button", name="Train", exact=True).click()
        sizes = set()
        while True:  # one cheap probe every 0.25 s: the watcher must not load the browser it measures
            size, text = page.evaluate(_PROBE_JS)
            sizes.add(size)
            if f"after {epochs} of {epochs} epochs" in text:
                break
            time.sleep(0.25)
        wait_app_idle(page)
        # "... Done: 5 member(s) after N of N epochs in X s. ..."
        return float(text.split(f"after {epochs} of {epochs} epochs in ")[1].split(" s")[0]), len(sizes)

    def close(self) -> None:
        self.page.close()
        self.srv.stop()


def training_pairs(browser, epochs: int, repeats: int, watch: int = 1
                   ) -> tuple[list[tuple[float, float, int]], list[tuple[float, int, float]]]:
    """``repeats`` pairs (headless seconds, live seconds, chart sizes seen) of N, N+1, ... epochs at the
    fast pace, then ``watch`` watchable runs (training seconds, chart sizes seen, wall seconds).

    The two alternate, so a drift of the shared machine's speed hits both alike.
    """
    headless, live = Headless(), Live(browser)
    try:
        pairs, watched = [], []
        for k in range(repeats):
            h = headless.run(epochs + k)
            pairs.append((h, *live.run(epochs + k)))
            print(f"fast pair {k + 1}: headless / live s, sizes {pairs[-1]}", file=sys.stderr, flush=True)
        live.set_pace("Watchable (~9 s)")
        for k in range(watch):
            t0 = time.monotonic()
            seconds, sizes = live.run(epochs + repeats + k)
            watched.append((seconds, sizes, time.monotonic() - t0))
            print(f"watchable run {k + 1}: training s, sizes, wall s {watched[-1]}", file=sys.stderr, flush=True)
        return pairs, watched
    finally:
        live.close()
        headless.close()


#: The floor: a Streamlit app with nothing but the Home page's title and first heading, same config.
_BARE_APP = """import streamlit as st
st.title("Deep Ensemble Lab")
st.subheader("Four ways to build an ensemble")
"""


def first_render(browser, app_dir: Path | None = None) -> float:
    """Seconds from launching `streamlit run app.py` (in ``app_dir``, default the dashboard) to the
    home page fully rendered."""
    t0 = time.monotonic()
    srv = Server(app_dir=app_dir)
    try:
        srv.wait_healthy(poll_s=0.02)
        page = browser.new_page(viewport={"width": 1440, "height": 900})
        page.goto(srv.url)
        wait_app_idle(page)
        page.get_by_text("Four ways to build an ensemble").wait_for()
        elapsed = time.monotonic() - t0
        page.close()
        return elapsed
    finally:
        srv.stop()


def bare_app(tmp: Path) -> Path:
    """A folder with :data:`_BARE_APP` as ``app.py`` and the dashboard's ``.streamlit/config.toml``."""
    (tmp / ".streamlit").mkdir(parents=True, exist_ok=True)
    (tmp / ".streamlit" / "config.toml").write_text((ROOT / ".streamlit" / "config.toml").read_text())
    (tmp / "app.py").write_text(_BARE_APP)
    return tmp


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--epochs", type=int, default=None, help="epochs of the measured run (default: the app's)")
    ap.add_argument("--train-repeats", type=int, default=11, help="headless/live pairs of runs for (a)")
    ap.add_argument("--watch-repeats", type=int, default=2, help="watchable runs for (a')")
    ap.add_argument("--repeats", type=int, default=3, help="cold starts of each app for (b); 0 skips (b)")
    args = ap.parse_args()
    from dashboard.state import default_config

    epochs = args.epochs or default_config().optim.epochs
    from playwright.sync_api import sync_playwright

    (ROOT / "artifacts").mkdir(exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        pairs, watched = training_pairs(browser, epochs, args.train_repeats, args.watch_repeats)
        with tempfile.TemporaryDirectory() as tmp:
            bare = bare_app(Path(tmp))
            starts, floors = [], []
            for _ in range(args.repeats):  # interleaved, so both see the same machine
                starts.append(first_render(browser))
                floors.append(first_render(browser, bare))
        browser.close()
    base, live = statistics.median(p[0] for p in pairs), statistics.median(p[1] for p in pairs)
    ratio = live / base
    load = os.getloadavg()[0]
    print(f"\nDashboard benchmark (cubic toy, 5 members, {epochs} epochs; load average {load:.1f} on "
          f"{os.cpu_count()} cores: numbers are noisy)")
    print(f"{'measure':<46}{'value':>12}{'target':>10}{'ok':>5}")
    print(f"{f'headless training, s (median of {len(pairs)})':<46}{base:>12.2f}")
    print(f"{'training with live charts in Chromium, s (median)':<46}{live:>12.2f}")
    print(f"{'  distinct loss-chart sizes seen while training':<46}{statistics.median(p[2] for p in pairs):>12.0f}")
    print(f"{'ratio live / headless (medians)':<46}{ratio:>12.2f}{'<= 1.25':>10}{'yes' if ratio <= 1.25 else 'NO':>5}")
    print(f"{'  each pair, headless / live s':<46}{'  '.join(f'{h:.2f}/{x:.2f}' for h, x, _ in pairs)}")
    if watched:
        sizes = statistics.median(w[1] for w in watched)
        print(f"{'watchable pace: distinct loss-chart sizes':<46}{sizes:>12.0f}{'>= 20':>10}"
              f"{'yes' if sizes >= 20 else 'NO':>5}")
        print(f"{'  watchable: wall s / training s (median)':<46}"
              f"{statistics.median(w[2] for w in watched):>7.1f} / {statistics.median(w[0] for w in watched):.2f}")
        print(f"{'  ratio of sizes watchable / fast':<46}"
              f"{sizes / max(1.0, statistics.median(p[2] for p in pairs)):>12.1f}")
    if not starts:
        return
    med, floor = statistics.median(starts), statistics.median(floors)
    print(f"{'streamlit run -> first page rendered, s':<46}{med:>12.2f}{'<= 3.0':>10}{'yes' if med <= 3 else 'NO':>5}")
    print(f"{'  each cold start, s':<46}{', '.join(f'{s:.2f}' for s in starts):>12}")
    print(f"{'  floor: a bare Streamlit app (title only), s':<46}{floor:>12.2f}")
    print(f"{'  each floor start, s':<46}{', '.join(f'{s:.2f}' for s in floors):>12}")
    print(f"{'  ratio dashboard / bare Streamlit':<46}{med / floor:>12.2f}")


if __name__ == "__main__":
    main()
