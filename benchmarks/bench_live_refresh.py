"""Cost of a watchable Train-page run's live refreshes in the browser and on the server: a baseline revision vs the tree.

A watchable run (``/train?pace=watchable``, 300 epochs over ~9 s) refreshes its live view every
``live.WATCH_S``; how many distinct loss-chart frames a viewer sees depends on what each refresh
costs, mostly in the browser (Streamlit's re-render of the fragment and one Plotly redraw per
changed chart).  For each of (a) the baseline (``--base``, a git revision, extracted to a temporary
folder) and (b) the working tree, alternating, ``--runs`` times: a ``streamlit run app.py`` server
and Chromium (as the e2e tests start them), Train clicked, the loss chart sampled like
``tests/e2e/test_pace_replay.py`` until the run's end.  Per run:

- sizes: distinct loss-chart lengths seen (what the e2e test counts);
- loss/other redraws: ``Plotly.react`` calls on the loss chart and on the other live charts;
- refreshes: the page's messages to the server (~ one per fragment refresh);
- renderer s, ms/refresh, ms/loss redraw: the page's main-thread task time (CDP
  ``Performance.getMetrics``), in all, per refresh and per new frame of the loss chart;
- server ms/refresh: the server process's CPU per such message;
- KB received: WebSocket bytes to the page.

Prints the medians per side and the ratios (b) / (a); asserts nothing.  ``--hog`` keeps one core
busy with a spinning process (a loaded CI machine).  The machine is shared: numbers are noisy.

    python benchmarks/bench_live_refresh.py [--base REV] [--runs N] [--hog]
"""

from __future__ import annotations

import argparse
import io
import os
import statistics
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests" / "e2e"))

# counts Plotly.react per chart key: wraps the library as the page installs it (window.Plotly)
COUNT_REACTS = """(() => { let lib = null; window.__benchReacts = {};
  Object.defineProperty(window, 'Plotly', { configurable: true, get: () => lib, set: (P) => {
    lib = P; if (!P || P.__benchCounted) return;
    const react = P.react;
    P.react = function (div, ...rest) {
      const key = ((div.closest('[class*="st-key-"]') || {}).className || '').match(/st-key-(\\S+)/);
      const k = key ? key[1] : '?'; window.__benchReacts[k] = (window.__benchReacts[k] || 0) + 1;
      return react.call(this, div, ...rest); };
    P.__benchCounted = true; } }); })();"""


def one_run(app_dir: Path, browser) -> dict[str, float]:
    """One watchable run served from ``app_dir``; the measures of the module docstring."""
    from e2e_server import Server, wait_app_idle, wait_renderer_idle, watch_loss_sizes

    from tests.load.harness import cpu_split

    srv = Server(app_dir=app_dir)
    try:
        srv.wait_healthy()
        context = browser.new_context(viewport={"width": 1440, "height": 1000})
        context.add_init_script(COUNT_REACTS)
        page = context.new_page()
        sent, received = [0], [0]
        page.on("websocket", lambda ws: (ws.on("framesent", lambda _: sent.__setitem__(0, sent[0] + 1)),
                                         ws.on("framereceived", lambda f: received.__setitem__(0, received[0] + len(f)))))
        page.goto(f"{srv.url}/train?pace=watchable")
        wait_app_idle(page)
        wait_renderer_idle(page)  # the page's own charts drawn: the renderer's time below is the run's
        cdp = context.new_cdp_session(page)
        cdp.send("Performance.enable")

        def task_s() -> float:
            return next(m["value"] for m in cdp.send("Performance.getMetrics")["metrics"] if m["name"] == "TaskDuration")

        cpu0, task0, sent0, received0 = cpu_split(srv.proc.pid)["server"], task_s(), sent[0], received[0]
        page.get_by_role("button", name="Train", exact=True).click()
        sizes, seconds, _ = watch_loss_sizes(page, 300)
        refreshes = max(1, sent[0] - sent0)
        reacts = page.evaluate("() => window.__benchReacts || {}")
        task = task_s() - task0
        out = {"sizes": len(sizes), "loss redraws": reacts.get("train_loss_fig", 0),
               "other redraws": sum(v for k, v in reacts.items() if k != "train_loss_fig"),
               "refreshes": refreshes, "renderer s": task, "renderer ms/refresh": 1000 * task / refreshes,
               "renderer ms/loss redraw": 1000 * task / max(1, reacts.get("train_loss_fig", 0)),
               "server ms/refresh": 1000 * (cpu_split(srv.proc.pid)["server"] - cpu0) / refreshes,
               "KB received": (received[0] - received0) / 1024, "seconds": seconds}
        wait_app_idle(page)
        context.close()
        return out
    finally:
        srv.stop()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--base", default="e1e5ebc", help="baseline git revision (default: before the refresh changes)")
    ap.add_argument("--runs", type=int, default=2, help="runs of each side (alternating)")
    ap.add_argument("--hog", action="store_true", help="keep one core busy meanwhile (a loaded machine)")
    args = ap.parse_args()
    os.environ.setdefault("PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD", "1")
    from playwright.sync_api import sync_playwright

    from tests.load.harness import CHROMIUM, CHROMIUM_ARGS

    with tempfile.TemporaryDirectory(prefix="bench-live-refresh-") as tmp:
        archive = subprocess.run(["git", "archive", args.base], cwd=ROOT, check=True, capture_output=True).stdout
        tarfile.open(fileobj=io.BytesIO(archive)).extractall(tmp, filter="data")
        sides = {"(a) baseline " + args.base: Path(tmp), "(b) working tree": ROOT}
        results: dict[str, list[dict[str, float]]] = {name: [] for name in sides}
        hog = subprocess.Popen([sys.executable, "-c", "while True: pass"]) if args.hog else None
        try:
            with sync_playwright() as p:
                browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
                for i in range(args.runs):
                    for name, folder in sides.items():
                        results[name].append(one_run(folder, browser))
                        print(f"run {i + 1} {name}: " + ", ".join(f"{k} {v:.1f}" for k, v in results[name][-1].items()),
                              flush=True)
                browser.close()
        finally:
            if hog is not None:
                hog.kill()
    names = list(results)
    keys = list(results[names[0]][0])
    med = {n: {k: statistics.median(r[k] for r in results[n]) for k in keys} for n in names}
    print(f"\nmedians over {args.runs} runs each{' (one core kept busy)' if args.hog else ''}")
    print(f"{'measure':<22}" + "".join(f"{n:>30}" for n in names) + f"{'ratio (b)/(a)':>16}")
    for k in keys:
        a, b = med[names[0]][k], med[names[1]][k]
        print(f"{k:<22}{a:>30.1f}{b:>30.1f}{(b / a if a else float('nan')):>16.2f}")


if __name__ == "__main__":
    main()
