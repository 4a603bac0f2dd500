"""Benchmark: the run-cost model and the limits against the runs that knocked the old server over.

Usage::

    python benchmarks/bench_limits.py              # the table (~2.5 minutes)
    python benchmarks/bench_limits.py --calibrate  # fit ensemble_core.costs.CALIBRATION / PROCESS_BYTES

The table, in one run:

1. the attacks measured on the old code (runs the old limit accepted, a link's schedule chart):
   their estimated steps, CPU-seconds and peak memory and whether the limits now refuse them, with
   the message;
2. a few accepted mid-size runs trained for real, each in its own Python process (one torch thread,
   as a pool worker trains): estimated vs measured CPU-seconds of the training
   (``resource.getrusage`` before and after ``train``) and peak memory (the process's
   ``ru_maxrss``, torch and all, against the estimate's total), with the ratios;
3. the Train page's schedule chart of the batch-1, 1,500-epoch link: server time and memory
   (``tracemalloc`` peak) of the old way (every step's learning rate, ``lr_schedule``, then a figure
   of its thinned points; at 1,000 rows, as it grows linearly) and the new one
   (``charts._plan_spec``: ``schedule_points``) at 1,000 and 100,000 rows.

``--calibrate`` trains a set of shapes in one process (one torch thread), fits the per-cost
constants by non-negative least squares on relative error, measures the resident memory of a worker
before it trains, and prints the constants to paste into ``ensemble_core/costs.py``.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
import tracemalloc
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from ensemble_core import costs  # noqa: E402
from ensemble_core.config import RunConfig  # noqa: E402
from ensemble_core.jobs import LimitError, Limits, check_limits  # noqa: E402


def cfg_of(**kv: object) -> RunConfig:
    return RunConfig().replace(**kv)


#: A synthetic set's ``data.n`` is its number of training rows (validation and test come on top).
ATTACKS = {
    "batch 8, 10k rows, 5000 ep, 20 m, 0 hidden": cfg_of(**{
        "data.n": 10_000, "optim.epochs": 5000, "strategy.members": 20, "model.hidden_layers": 0,
        "optim.batch_size": 8}),
    "batch 15k, 15k rows, 7 ep, 20 m, 1x1024": cfg_of(**{
        "data.n": 15_000, "optim.batch_size": 15_000, "optim.epochs": 7, "strategy.members": 20,
        "model.hidden_layers": 1, "model.width": 1024}),
    "batch 1, 50k rows, 5000 ep": cfg_of(**{
        "data.n": 50_000, "optim.batch_size": 1, "optim.epochs": 5000, "strategy.members": 1,
        "model.hidden_layers": 0}),
}
#: The split of the calibration cases (their fit was made with it).
SPLIT = {"data.val_fraction": 0.1, "data.test_fraction": 0.1}

#: Mid-size runs the limits accept, trained for real.
MEASURED = {
    "default (cubic 20 rows, 5 m, 2x64)": cfg_of(),
    "1k rows, batch 16, 40 ep, 5 m, 2x64": cfg_of(**{"data.n": 1000, "optim.batch_size": 16, "optim.epochs": 40}),
    "moons 2k, batch 64, 20 ep, 10 m, 2x128": cfg_of(**{
        "data.name": "moons", "data.n": 2000, "data.noise": 0.2, "optim.batch_size": 64, "optim.epochs": 20,
        "strategy.members": 10, "model.width": 128}),
    "4k rows, batch 4000, 4 ep, 20 m, 1x1024": cfg_of(**{
        "data.n": 4000, "optim.batch_size": 4000, "optim.epochs": 4, "strategy.members": 20,
        "model.hidden_layers": 1, "model.width": 1024}),
    "adversarial 2k, batch 32, 20 ep, 5 m": cfg_of(**{
        "data.n": 2000, "optim.batch_size": 32, "optim.epochs": 20, "strategy.adversarial": True}),
    "snapshot 1k, batch 8, 25 ep, 2x5 snaps": cfg_of(**{
        "data.n": 1000, "optim.batch_size": 8, "optim.epochs": 25, "strategy.kind": "snapshot",
        "strategy.members": 2, "strategy.snapshots": 5, "optim.schedule": "cyclic", "optim.optimizer": "sgd"}),
}

CHART = cfg_of(**{"data.n": 100_000, "optim.batch_size": 1, "optim.epochs": 1500, "optim.schedule": "cyclic",
                  "strategy.kind": "snapshot", "strategy.members": 1, "strategy.snapshots": 5})


# --------------------------------------------------------------- one process per measured run
def _measure_child(cfg_json: str) -> None:
    """In a fresh process: load, warm up, train once; print CPU-s of ``train`` and peak RSS (one JSON line)."""
    import torch

    torch.set_num_threads(1)
    from ensemble_core.data import load_dataset
    from ensemble_core.training import train

    cfg = RunConfig.from_json(cfg_json)
    data = load_dataset(cfg.data)
    train(cfg_of(**{"optim.epochs": 1}), load_dataset(RunConfig().data))  # torch's lazy imports
    r0 = resource.getrusage(resource.RUSAGE_SELF)
    t0 = time.perf_counter()
    train(cfg, data)
    wall = time.perf_counter() - t0
    r1 = resource.getrusage(resource.RUSAGE_SELF)
    cpu = (r1.ru_utime + r1.ru_stime) - (r0.ru_utime + r0.ru_stime)
    print(json.dumps({"cpu": cpu, "wall": wall, "maxrss": peak_rss()}))


def peak_rss() -> float:
    """This process's peak resident bytes: ``VmHWM`` (``ru_maxrss`` survives ``exec`` on Linux, so a
    child started by a big parent would report the parent's peak)."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return float(line.split()[1]) * 1024
    except OSError:
        pass
    return float(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss) * 1024


def measure(cfg: RunConfig) -> dict:
    out = subprocess.run([sys.executable, __file__, "--child", cfg.to_json(indent=None)], capture_output=True,
                         text=True, check=True, cwd=ROOT, timeout=300)
    return json.loads(out.stdout.strip().splitlines()[-1])


def estimate_of(cfg: RunConfig) -> costs.RunCost:
    from ensemble_core.data import load_dataset

    return costs.estimate(cfg, costs.shape_of(cfg, load_dataset(cfg.data)))


# -------------------------------------------------------------------------------- calibration
CALIBRATION_CASES = [
    # (name, config overrides); each trains ~0.3-2 s
    ("tiny batch 1", {"data.n": 2500, "optim.batch_size": 1, "optim.epochs": 2, "strategy.members": 1,
                      "model.hidden_layers": 0, **SPLIT}),
    ("2x64 batch 8", {"data.n": 2500, "optim.batch_size": 8, "optim.epochs": 3, **SPLIT}),
    ("8x16 batch 4", {"data.n": 1250, "optim.batch_size": 4, "optim.epochs": 2, "strategy.members": 2,
                      "model.hidden_layers": 8, "model.width": 16, **SPLIT}),
    ("1x1024 batch 512", {"data.n": 2500, "optim.batch_size": 512, "optim.epochs": 2, "strategy.members": 10,
                          "model.hidden_layers": 1, "model.width": 1024, **SPLIT}),
    ("1x512 batch 2000, 20 m", {"data.n": 5000, "optim.batch_size": 2000, "optim.epochs": 2,
                                "strategy.members": 20, "model.hidden_layers": 1, "model.width": 512, **SPLIT}),
    ("3x512 batch 64 (params)", {"data.n": 1250, "optim.batch_size": 64, "optim.epochs": 1,
                                 "strategy.members": 20, "model.hidden_layers": 3, "model.width": 512, **SPLIT}),
    ("2x256 batch 256", {"data.n": 5000, "optim.batch_size": 256, "optim.epochs": 2, "strategy.members": 10,
                         "model.width": 256, **SPLIT}),
    ("cubic 20 rows, 1000 ep", {"optim.epochs": 1000}),
    ("20k rows full batch, 20 m", {"data.n": 25_000, "optim.batch_size": 20_000, "optim.epochs": 30,
                                   "strategy.members": 20, "model.hidden_layers": 0, **SPLIT}),
    ("adversarial 2x64 batch 16", {"data.n": 2500, "optim.batch_size": 16, "optim.epochs": 2,
                                   "strategy.adversarial": True, **SPLIT}),
    ("moons 2x128 batch 32", {"data.name": "moons", "data.n": 2500, "data.noise": 0.2, "optim.batch_size": 32,
                              "optim.epochs": 3, "strategy.members": 10, "model.width": 128, **SPLIT}),
    ("val-heavy 30 ep", {"data.n": 2000, "data.val_fraction": 0.5, "data.test_fraction": 0.0,
                          "optim.batch_size": 1000, "optim.epochs": 30, "strategy.members": 20,
                          "model.width": 128}),
]

FEATURES = tuple(costs.CALIBRATION)


def features(cfg: RunConfig, shape: costs.DataShape) -> list[float]:
    """The cost model's terms for ``cfg`` (one column per constant)."""
    terms = costs.cpu_terms(cfg, shape)
    return [terms.get(k, 0.0) for k in FEATURES]


def calibrate() -> None:
    import numpy as np
    import torch
    from scipy.optimize import nnls

    from ensemble_core.data import load_dataset
    from ensemble_core.training import train

    torch.set_num_threads(1)
    train(cfg_of(**{"optim.epochs": 1}), load_dataset(RunConfig().data))
    rows, times = [], []
    for name, kv in CALIBRATION_CASES:
        cfg = cfg_of(**kv)
        data = load_dataset(cfg.data)
        best = float("inf")
        for _ in range(1 if name.startswith(("3x512", "1x1024", "val")) else 2):
            t0 = time.process_time()
            train(cfg, data)
            best = min(best, time.process_time() - t0)
        rows.append(features(cfg, costs.shape_of(cfg, data)))
        times.append(best)
        print(f"{name:32s} {best:7.3f} s", flush=True)
    a, b = np.asarray(rows), np.asarray(times)
    coef, _ = nnls(a / b[:, None], np.ones(len(b)))  # relative error
    print("\nCALIBRATION = {")
    for k, v in zip(FEATURES, coef):
        print(f'    "{k}": {v:.3g},')
    costs.CALIBRATION.update(dict(zip(FEATURES, coef)))
    print("}")
    pred = a @ coef
    for (name, _), m, p in zip(CALIBRATION_CASES, b, pred):
        print(f"{name:32s} measured {m:7.3f}  fit {p:7.3f}  ratio {p / m:5.2f}")
    tiny = measure(cfg_of(**{"optim.epochs": 5}))
    print(f"\nPROCESS_BYTES = {tiny['maxrss'] / 1e6:.0f}e6  # peak RSS of a worker after a tiny run")


# ------------------------------------------------------------------------------------- table
def refusal(cfg: RunConfig) -> str:
    from ensemble_core.data import load_dataset

    try:
        check_limits(cfg, load_dataset(cfg.data), Limits())
    except LimitError as exc:
        return "REFUSED: " + str(exc)
    return "accepted"


def schedule_chart_costs() -> list[tuple[str, float, float, int]]:
    """Server seconds, tracemalloc peak and points of the schedule chart, before and after.

    The old way lists every step (~1 us and ~40 bytes a step in Python), so it is measured on the same
    settings with 1,000 rows (1.5 M steps; it grows linearly with the rows: 100,000 rows was 1.5e8
    steps, minutes and the 4.6 GB the issue measured); the new one on both.
    """
    from dashboard import charts
    from ensemble_core import schedules, viz

    def old(n: int) -> int:  # the old page: every step's rate, then the figure of its thinned points
        lrs = schedules.lr_schedule(CHART, n)
        snaps = [s - 1 for s in schedules.snapshot_steps(CHART, n)]
        fig = viz.lr_figure(lrs, steps_per_epoch=schedules.steps_per_epoch(1, n), snapshot_steps=snaps, height=260)
        return len(fig.data[0].x)

    def new(n: int) -> int:
        charts._plan_spec(CHART, n)
        return len(schedules.schedule_points(CHART, n).steps)

    charts._plan_spec(RunConfig(), 20)  # Plotly's one-off warm-up
    out = []
    for name, fn, n in (("before: lr_schedule, 1k rows (1.5 M st)", old, 1000),
                        ("after: schedule_points, 1k rows", new, 1000),
                        ("after: schedule_points, 100k rows (150 M)", new, 100_000)):
        t0 = time.perf_counter()
        fn(n)
        secs = time.perf_counter() - t0
        tracemalloc.start()
        pts = fn(n)
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        out.append((name, secs, peak, pts))
    return out


def main() -> None:
    from ensemble_core.data import load_dataset

    limits = Limits()
    print(f"limits: {costs.fmt_count(limits.max_steps)} steps, {limits.max_cpu_seconds:,.0f} CPU-s, "
          f"{costs.fmt_bytes(limits.max_memory_bytes)} peak memory, {limits.max_rows:,} rows\n")
    print("1. attacks (accepted by the old check_limits)")
    print(f"{'run':44s} {'steps':>10s} {'CPU-s':>10s} {'memory':>9s}  verdict")
    for name, cfg in ATTACKS.items():
        est = costs.estimate(cfg, costs.shape_of(cfg, load_dataset(cfg.data)))
        print(f"{name:44s} {costs.fmt_count(est.steps):>10s} {est.cpu_seconds:10,.0f} "
              f"{costs.fmt_bytes(est.peak_bytes):>9s}  {refusal(cfg)}")
    print(f"{'link: 100k rows, batch 1, 1500 ep (chart)':44s} "
          f"{costs.fmt_count(costs.estimate(CHART, costs.DataShape(100_000, 0, 1, 2)).steps):>10s}"
          f"{'':>21s}  (its schedule chart: section 3)")

    print("\n2. accepted mid-size runs: estimate vs measured (own process, one torch thread)")
    print(f"{'run':44s} {'est CPU-s':>9s} {'meas':>7s} {'ratio':>6s}   {'est mem':>8s} {'meas':>8s} {'ratio':>6s}")
    for name, cfg in MEASURED.items():
        verdict = refusal(cfg)
        est = estimate_of(cfg)
        m = measure(cfg)
        print(f"{name:44s} {est.cpu_seconds:9.2f} {m['cpu']:7.2f} {est.cpu_seconds / m['cpu']:6.2f}   "
              f"{costs.fmt_bytes(est.peak_bytes):>8s} {costs.fmt_bytes(m['maxrss']):>8s} "
              f"{est.peak_bytes / m['maxrss']:6.2f}" + ("" if verdict == "accepted" else f"  ({verdict})"),
              flush=True)

    print("\n3. the Train page's schedule chart of the 100k-row, batch-1, 1500-epoch link (server side)")
    rows = schedule_chart_costs()
    print(f"{'':42s} {'seconds':>8s} {'peak (tracemalloc)':>19s} {'points':>7s}")
    for name, secs, peak, pts in rows:
        print(f"{name:42s} {secs:8.2f} {costs.fmt_bytes(peak):>19s} {pts:7,d}")
    print(f"ratio before/after at 1k rows: {rows[0][1] / rows[1][1]:.0f}x time, {rows[0][2] / rows[1][2]:.0f}x memory "
          "(before grows linearly with the steps; after does not)")


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--calibrate", action="store_true", help="fit the cost model's constants")
    ap.add_argument("--child", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        _measure_child(args.child)
    elif args.calibrate:
        calibrate()
    else:
        main()
