"""Benchmark: the seed-style loops (reference) vs the vectorised engine, same work.

Usage::

    python benchmarks/bench_engine.py            # full cases (issue 2, section 4)
    python benchmarks/bench_engine.py --quick    # smoke run: few epochs
    python benchmarks/bench_engine.py --json     # last line: one JSON object keyed by case

Cases: Gaussian-NLL members (2x50 ReLU) on 1,000 points of the cubic toy,
batch 64, 100 epochs, M = 5, 10, 20; two moons classification (2x64, M = 5);
a snapshot ensemble (1 trajectory, 5 cycles, SGD + cyclic cosine) and the
combination of 5 trajectories x 5 snapshots.

Every (case, method) runs in its own fresh Python process, so each measures
its own wall time, CPU time and peak memory: *peak memory* is the growth of the
process's peak resident set size (``resource.getrusage().ru_maxrss``) over its
RSS just before training (after imports, data and a tiny warm-up run that
triggers torch's lazy imports).  Wall seconds cover ``train``/
``train_reference`` only.  Both methods use the same torch thread setting:
one intra-op thread by default (``--threads``), which is how
``ensemble_core.jobs`` runs trainings side by side on a small server; with
other processes competing for the cores, multi-threaded small ops mostly spin.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

CASES = {
    "nll_m5": dict(members=5, kind="independent", task="regression", width=50),
    "nll_m10": dict(members=10, kind="independent", task="regression", width=50),
    "nll_m20": dict(members=20, kind="independent", task="regression", width=50),
    "moons_m5": dict(members=5, kind="independent", task="classification", width=64),
    "snapshot_1x5": dict(members=1, kind="snapshot", task="regression", width=50),
    "snapshot_5x5": dict(members=5, kind="snapshot", task="regression", width=50),
}


def _rss_mib() -> float:
    with open("/proc/self/statm") as f:
        pages = int(f.read().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE") / 2**20


def make_data(task: str, n: int = 1000, seed: int = 0):  # noqa: ANN201
    """1,000 training points: the cubic toy y = x^3 + N(0, 3^2) or two moons (+200 val)."""
    import numpy as np

    from ensemble_core.data import Dataset

    rng = np.random.default_rng(seed)
    n_all = n + 200
    if task == "regression":
        x = rng.uniform(-4, 4, size=(n_all, 1))
        y = x[:, 0] ** 3 + rng.normal(0, 3, size=n_all)
        names, cls = ["x"], None
    else:
        from sklearn.datasets import make_moons

        x, y = make_moons(n_samples=n_all, noise=0.2, random_state=seed)
        y = y.astype(np.int64)
        names, cls = ["x1", "x2"], ["0", "1"]
    xtr, ytr = x[:n], y[:n]
    return Dataset(name=task, task=task, feature_names=names, target_name="y",
                   x_train=xtr, y_train=ytr, x_val=x[n:], y_val=y[n:], x_test=x[n:], y_test=y[n:],
                   x_mean=xtr.mean(0), x_std=xtr.std(0),
                   y_mean=float(ytr.mean()) if cls is None else 0.0,
                   y_std=float(ytr.std()) if cls is None else 1.0, class_names=cls)


def make_config(case: str, epochs: int):  # noqa: ANN201
    from ensemble_core.config import DataSpec, ModelSpec, OptimSpec, RunConfig, StrategySpec

    c = CASES[case]
    data = DataSpec(name="cubic") if c["task"] == "regression" else DataSpec(name="moons")
    if c["kind"] == "snapshot":
        strategy = StrategySpec(kind="snapshot", members=c["members"], snapshots=5)
        optim = OptimSpec(optimizer="sgd", lr=0.05, lr_min=0.0, momentum=0.9, batch_size=64, epochs=epochs,
                          schedule="cyclic", granularity="epoch")
    else:
        strategy = StrategySpec(kind="independent", members=c["members"])
        optim = OptimSpec(optimizer="adam", lr=1e-3, weight_decay=1e-4, batch_size=64, epochs=epochs,
                          schedule="cosine", granularity="epoch")
    return RunConfig(data=data, model=ModelSpec(hidden_layers=2, width=c["width"]), strategy=strategy, optim=optim)


def run_one(case: str, method: str, epochs: int, threads: int) -> dict:
    """Time one method on one case in this process."""
    import torch

    from ensemble_core.reference import train_reference
    from ensemble_core.training import train

    if threads > 0:
        torch.set_num_threads(threads)
    data = make_data(CASES[case]["task"])
    fn = train if method == "engine" else train_reference
    fn(make_config(case, 1).replace(**{"strategy.members": 1}) if CASES[case]["kind"] != "snapshot"
       else make_config(case, 5).replace(**{"strategy.members": 1}), data)  # warm-up: lazy imports
    cfg = make_config(case, epochs)
    base = _rss_mib()
    c0, t0 = time.process_time(), time.perf_counter()
    fn(cfg, data)
    seconds, cpu = time.perf_counter() - t0, time.process_time() - c0
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {"seconds": seconds, "cpu_seconds": cpu, "peak_mib": max(0.0, peak - base),
            "threads": torch.get_num_threads()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="smoke run: 5 epochs per case")
    ap.add_argument("--json", action="store_true", help="print one JSON object as the last line")
    ap.add_argument("--epochs", type=int, default=None, help="epochs per case (default 100, --quick 5)")
    ap.add_argument("--cases", default=",".join(CASES), help="comma-separated subset of: " + ", ".join(CASES))
    ap.add_argument("--threads", type=int, default=1,
                    help="torch intra-op threads for both methods (default 1, as the job pool runs "
                         "trainings side by side; 0 = torch's default)")
    ap.add_argument("--one", nargs=2, metavar=("CASE", "METHOD"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    epochs = args.epochs or (5 if args.quick else 100)
    if args.one:
        print(json.dumps(run_one(args.one[0], args.one[1], epochs, args.threads)))
        return
    cases = [c.strip() for c in args.cases.split(",") if c.strip()]
    unknown = [c for c in cases if c not in CASES]
    if unknown:
        ap.error(f"unknown case(s): {', '.join(unknown)}")
    results: dict[str, dict] = {}
    print(f"{'case':<14}{'members':>8}{'reference s':>13}{'engine s':>10}{'speed-up':>10}"
          f"{'cpu speed-up':>14}{'ref peak MiB':>14}{'eng peak MiB':>14}", flush=True)
    for case in cases:
        row = {}
        for method in ("reference", "engine"):
            cmd = [sys.executable, __file__, "--one", case, method, "--epochs", str(epochs),
                   "--threads", str(args.threads)]
            out = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, check=False)
            if out.returncode != 0:
                sys.exit(f"{case}/{method} failed:\n{out.stderr[-2000:]}")
            row[method] = json.loads(out.stdout.strip().splitlines()[-1])
        cfg = make_config(case, epochs)
        res = {
            "members": cfg.strategy.ensemble_size,
            "epochs": epochs,
            "reference_s": round(row["reference"]["seconds"], 3),
            "engine_s": round(row["engine"]["seconds"], 3),
            "speedup": round(row["reference"]["seconds"] / row["engine"]["seconds"], 2),
            "reference_cpu_s": round(row["reference"]["cpu_seconds"], 3),
            "engine_cpu_s": round(row["engine"]["cpu_seconds"], 3),
            "cpu_speedup": round(row["reference"]["cpu_seconds"] / row["engine"]["cpu_seconds"], 2),
            "reference_peak_mib": round(row["reference"]["peak_mib"], 1),
            "engine_peak_mib": round(row["engine"]["peak_mib"], 1),
            "threads": row["engine"]["threads"],
        }
        results[case] = res
        print(f"{case:<14}{res['members']:>8}{res['reference_s']:>13.2f}{res['engine_s']:>10.2f}"
              f"{res['speedup']:>9.1f}x{res['cpu_speedup']:>13.1f}x"
              f"{res['reference_peak_mib']:>14.1f}{res['engine_peak_mib']:>14.1f}",
              flush=True)
    print(f"({epochs} epochs, batch 64, 1,000 training points; speed-up = wall-clock ratio, cpu speed-up = "
          "process CPU-time ratio (less sensitive to other load); peak memory = growth of peak RSS during "
          "training; each run in a fresh process)")
    if args.json:
        print(json.dumps(results))


if __name__ == "__main__":
    main()
