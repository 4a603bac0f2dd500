"""Benchmark: issue 16's attacks on a live ``streamlit run app.py`` server, before and after.

Each attack (``tests/e2e/live_attacks.py``) runs in a fresh Chromium context against a real server
while ``/_stcore/health`` is asked every 50 ms and the server's resident memory is sampled.  The
table gives, per attack: the server's memory growth and peak, the training workers' peak, the
server's CPU-seconds, the slowest health answer, whether the page showed an exception, and the
start of what it said.

    python benchmarks/bench_live_attacks.py                      # the working tree only
    python benchmarks/bench_live_attacks.py --baseline a6ec164   # also a git revision (a worktree)
    python benchmarks/bench_live_attacks.py --only "import"      # attacks whose name contains a word

Needs ``/usr/bin/chromium`` and Playwright.  Asserts nothing (``tests/e2e/test_attacks_live.py``
does); an attack that fails to complete on a checkout is reported with its error.  The baseline's
attacks can take minutes each and GBs of memory: that is what is measured.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests" / "e2e")]
os.environ.setdefault("PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD", "1")

from e2e_server import CHROMIUM, CHROMIUM_ARGS, Server, wait_app_idle  # noqa: E402
from live_attacks import Outcome, attacks, run_attack  # noqa: E402


def measure(app_dir: Path, names: list[str], browser) -> list[Outcome]:
    server = Server(app_dir=app_dir)
    try:
        server.wait_healthy(timeout=180)
        context = browser.new_context()
        page = context.new_page()
        for path in ("/", "/train", "/data", "/uncertainty"):
            page.goto(server.url + path)
            wait_app_idle(page, timeout_ms=120_000)
        context.close()
        out = []
        with tempfile.TemporaryDirectory() as tmp:
            for name in names:
                try:
                    out.append(run_attack(browser, server, name, attacks()[name], Path(tmp)))
                except Exception as exc:  # noqa: BLE001 - report it as the row
                    out.append(Outcome(name, said=f"(did not complete: {type(exc).__name__}: "
                                                  f"{str(exc).splitlines()[0][:80]})"))
                if server.proc.poll() is not None:
                    out[-1].said += " (server died)"
                    break
        return out
    finally:
        server.stop()


def table(label: str, rows: list[Outcome]) -> None:
    print(f"\n{label}")
    print(f"{'attack':52s} {'growth':>8s} {'server':>8s} {'workers':>8s} {'CPU-s':>6s} {'health':>7s} {'exc':>4s}"
          "  the page said")
    for o in rows:
        said = (o.said[:70] + "…") if len(o.said) > 70 else o.said
        print(f"{o.name:52s} {o.growth_mb:6.0f}MB {o.server_peak_mb:6.0f}MB {o.workers_peak_mb:6.0f}MB "
              f"{o.server_cpu_s:6.1f} {o.health_max_s:6.2f}s {o.exceptions:4d}  {said}"
              + (f"  LEAKED {len(o.leaked_requests)} request(s)" if o.leaked_requests else ""))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--baseline", help="a git revision to measure too (checked out in a temporary worktree)")
    ap.add_argument("--only", default="", help="only attacks whose name contains this text")
    args = ap.parse_args()
    names = [n for n in attacks() if args.only.lower() in n.lower()]
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        results = {}
        if args.baseline:
            with tempfile.TemporaryDirectory() as tmp:
                wt = Path(tmp) / "base"
                subprocess.run(["git", "worktree", "add", "--detach", str(wt), args.baseline], cwd=ROOT,
                               check=True, capture_output=True)
                try:
                    results[f"before ({args.baseline})"] = measure(wt, names, browser)
                finally:
                    subprocess.run(["git", "worktree", "remove", "--force", str(wt)], cwd=ROOT, check=False)
        results["after (working tree)"] = measure(ROOT, names, browser)
        browser.close()
    for label, rows in results.items():
        table(label, rows)
    if len(results) == 2:
        before, after = results.values()
        print("\nratio of server memory growth before/after:")
        for b, a in zip(before, after):
            print(f"  {a.name:52s} {b.growth_mb / max(a.growth_mb, 1.0):8.1f}x   "
                  f"health {b.health_max_s:.2f}s -> {a.health_max_s:.2f}s")


if __name__ == "__main__":
    main()
