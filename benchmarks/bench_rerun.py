"""Server CPU of one Train-page rerun while a student configures: the schedule chart built each time vs shared.

Every change of a setting reruns the Train page on the server.  Before a run the page draws the
learning-rate schedule; building that Plotly figure was about half of a rerun.  ``charts.lr_plan``
now shares one spec per settings (the seed does not change the schedule).  In one process, with
``streamlit.testing.v1.AppTest`` (the script runs in this process, so its CPU is ours), the Train
page is rerun after changing the seed, alternating:

(a) baseline: the schedule's figure built on every rerun (what the page did before);
(b) candidate: the shared spec (``charts.lr_plan``).

Prints the median and minimum process CPU milliseconds of a rerun and the ratio (a) / (b); asserts
nothing.  The machine is shared, so the numbers are noisy: medians over alternating reruns.

    python benchmarks/bench_rerun.py [--reruns N]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--reruns", type=int, default=30, help="reruns of each kind (alternating)")
    args = ap.parse_args()
    from streamlit.testing.v1 import AppTest

    from dashboard import charts
    from tests.app.apphelpers import open_page

    shared, rebuilt = charts.lr_plan, charts._plan_spec  # rebuilt: the page before, a new figure on every rerun

    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=60).run()
    open_page(at, "train")
    cpu: dict[str, list[float]] = {"(a) schedule figure built on every rerun": [], "(b) shared spec (charts.lr_plan)": []}
    for _ in range(3):  # warm up both paths
        for plan in (rebuilt, shared):
            charts.lr_plan = plan
            at.run()
    seed = 0
    for _ in range(args.reruns):
        for name, plan in zip(cpu, (rebuilt, shared), strict=True):
            charts.lr_plan = plan
            seed += 1
            at.number_input(key="train_seed").set_value(seed)
            t0 = time.process_time()
            at.run()
            cpu[name].append((time.process_time() - t0) * 1000)
            if at.exception:
                raise SystemExit(f"the page failed: {at.exception[0].value}")
    charts.lr_plan = shared
    print(f"Train page rerun after a seed change, {args.reruns} each, process CPU (ms)")
    print(f"{'setting':<44} {'median':>8} {'min':>8}")
    for name, ms in cpu.items():
        print(f"{name:<44} {statistics.median(ms):>8.1f} {min(ms):>8.1f}")
    a, b = (statistics.median(ms) for ms in cpu.values())
    print(f"{'ratio (a) / (b), medians':<44} {a / b:>8.2f}")


if __name__ == "__main__":
    main()
