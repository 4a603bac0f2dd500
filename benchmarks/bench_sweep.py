"""Benchmark: an 8-value learning-rate sweep as one batched program vs 8 separate engine runs.

Usage::

    python benchmarks/bench_sweep.py              # 8 learning rates, M = 5, 100 epochs, 3 rounds
    python benchmarks/bench_sweep.py --quick      # 10 epochs, 1 round
    python benchmarks/bench_sweep.py --json       # last line: one JSON object

The case is ``bench_engine.py``'s headline shape: Gaussian-NLL members (2x50
ReLU, M = 5) on 1,000 points of the cubic toy, batch 64, Adam with a cosine
schedule, learning rates 1e-4 .. 1e-2 (log-spaced; above that, 100 epochs of Adam amplify float round-off
chaotically: a separate run then differs from the seed-style loop by ~1e-2 as well).  *Separate* trains each
trial with ``training.train`` one after another (``sweep.plan_sweep(...,
batched=False)``); *batched* trains all 8 x 5 = 40 trajectories as one stacked
program (``sweep.run_sweep``).  Both run in this process, alternating, with one
torch thread (as a pool worker trains); each round measures both, and the
table shows the median over rounds (the machine may be shared).  The largest
difference between a trial's batched and separate members is printed too (it
must be float round-off).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

LRS = [1e-4, 1.9e-4, 3.7e-4, 7.2e-4, 1.4e-3, 2.7e-3, 5.2e-3, 1e-2]


def products_seconds(trajectories: int, steps: int, batch: int, sizes: list[int]) -> float:
    """Seconds the layer products alone take for ``steps`` training steps of ``trajectories`` stacked members.

    Replays, at the engine's shapes and in its layouts (``models.StackedMLP.forward_cached``/``backward``:
    an outer product for one input feature, the transposed product for narrow outputs), every matrix
    product of a step: each layer's forward, weight gradient and (but the first) input gradient.  Nothing
    else of a step runs, so this is what no amount of overhead removal can take away on this CPU.
    """
    import torch

    from ensemble_core.models import NARROW

    k, b = trajectories, batch
    layers = []
    for d_in, d_out in zip(sizes[:-1], sizes[1:]):
        layers.append((torch.randn(k, b, d_in), torch.randn(k, d_in, d_out), torch.randn(k, 1, d_out),
                       torch.randn(k, b, d_out), torch.empty(k, d_in, d_out)))

    def step() -> None:
        for i, (h, w, bias, g, gw) in enumerate(layers):
            if d_in_of(w) == 1:
                torch.addcmul(bias, h, w)
            elif w.shape[2] <= NARROW:
                torch.baddbmm(bias.transpose(1, 2), w.transpose(1, 2), h.transpose(1, 2))
            else:
                torch.baddbmm(bias, h, w)
            if g.shape[2] <= NARROW:
                gw.copy_(torch.bmm(g.transpose(1, 2), h).transpose(1, 2))
            else:
                torch.bmm(h.transpose(1, 2), g, out=gw)
            if i > 0:
                torch.bmm(g, w.transpose(1, 2))

    def d_in_of(w: torch.Tensor) -> int:
        return int(w.shape[1])

    for _ in range(20):
        step()
    t0 = time.perf_counter()
    for _ in range(steps):
        step()
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="smoke run: 10 epochs, 1 round")
    ap.add_argument("--epochs", type=int, default=None, help="epochs per trial (default 100, --quick 10)")
    ap.add_argument("--rounds", type=int, default=None, help="rounds of both methods (default 3, --quick 1)")
    ap.add_argument("--members", type=int, default=5, help="members per trial (default 5)")
    ap.add_argument("--threads", type=int, default=1, help="torch intra-op threads (default 1)")
    ap.add_argument("--json", action="store_true", help="print one JSON object as the last line")
    args = ap.parse_args()
    epochs = args.epochs or (10 if args.quick else 100)
    rounds = args.rounds or (1 if args.quick else 3)

    import numpy as np
    import torch
    from bench_engine import make_config, make_data

    from ensemble_core.sweep import plan_sweep, run_sweep, sweep_costs

    if args.threads > 0:
        torch.set_num_threads(args.threads)
    data = make_data("regression")
    base = make_config("nll_m5", epochs).replace(**{"strategy.members": args.members})
    trials = [{"optim.lr": lr} for lr in LRS]
    batched_plan = plan_sweep(base, trials)
    separate_plan = plan_sweep(base, trials, batched=False)
    assert len(batched_plan.groups) == 1 and len(separate_plan.groups) == len(LRS)
    run_sweep(plan_sweep(base.replace(**{"optim.epochs": 1}), trials[:2]), data)  # warm-up: lazy imports

    times: dict[str, list[float]] = {"separate": [], "batched": []}
    cpu: dict[str, list[float]] = {"separate": [], "batched": []}
    results = {}
    for r in range(rounds):
        for method in (("separate", "batched") if r % 2 == 0 else ("batched", "separate")):
            plan = separate_plan if method == "separate" else batched_plan
            c0, t0 = time.process_time(), time.perf_counter()
            results[method] = run_sweep(plan, data)
            times[method].append(time.perf_counter() - t0)
            cpu[method].append(time.process_time() - c0)

    x = torch.as_tensor(data.scale_x(data.x_test), dtype=torch.float32)
    worst = 0.0
    nll = []
    for a, b in zip(results["batched"].trials, results["separate"].trials):
        assert a.run is not None and b.run is not None, (a.error, b.error)
        with torch.no_grad():
            worst = max(worst, float((a.run.model(x) - b.run.model(x)).abs().max()))
        val = [e.val for e in a.run.history if getattr(e, "kind", "") == "epoch"][-1]
        nll.append(val.get("nll", float("nan")))
    med = {m: statistics.median(v) for m, v in times.items()}
    steps = epochs * -(-len(data.x_train) // 64)
    sizes = [data.n_features, 50, 50, 2]
    floor_sep = len(LRS) * products_seconds(args.members, steps, 64, sizes)
    floor_bat = products_seconds(len(LRS) * args.members, steps, 64, sizes)
    med_cpu = {m: statistics.median(v) for m, v in cpu.items()}
    est = sweep_costs(batched_plan, data)[0]
    print(f"{'method':<10}{'programs':>10}{'trajectories':>14}{'median s':>10}{'min s':>8}{'cpu s':>8}")
    for m, plan in (("separate", separate_plan), ("batched", batched_plan)):
        print(f"{m:<10}{len(plan.groups):>10}{max(g.trajectories for g in plan.groups):>14}"
              f"{med[m]:>10.2f}{min(times[m]):>8.2f}{med_cpu[m]:>8.2f}")
    ratio, cpu_ratio = med["separate"] / med["batched"], med_cpu["separate"] / med_cpu["batched"]
    print(f"speed-up (median wall): {ratio:.2f}x   cpu speed-up: {cpu_ratio:.2f}x   "
          f"max |batched - separate| on test inputs: {worst:.2g}")
    print(f"layer products alone (same shapes, same layouts, nothing else): separate {floor_sep:.2f} s "
          f"({floor_sep / med['separate']:.0%} of its time), batched {floor_bat:.2f} s "
          f"({floor_bat / med['batched']:.0%}); with every other op free, batching could be at most "
          f"{med['separate'] / floor_bat:.1f}x faster on this CPU")
    print(f"({len(LRS)} learning rates x M = {args.members}, {epochs} epochs, batch 64, 1,000 points, "
          f"{rounds} round(s), {torch.get_num_threads()} thread(s); the batched program's estimated cost: "
          f"{est.cpu_seconds:.1f} CPU-s)")
    print("final validation NLL per learning rate: "
          + ", ".join(f"{lr:g}: {v:.3f}" for lr, v in zip(LRS, nll)))
    if args.json:
        print(json.dumps({"epochs": epochs, "members": args.members, "trials": len(LRS), "rounds": rounds,
                          "separate_s": round(med["separate"], 3), "batched_s": round(med["batched"], 3),
                          "speedup": round(ratio, 2), "cpu_speedup": round(cpu_ratio, 2),
                          "products_separate_s": round(floor_sep, 3), "products_batched_s": round(floor_bat, 3),
                          "ceiling": round(med["separate"] / floor_bat, 2),
                          "max_abs_diff": worst, "separate_all_s": [round(t, 3) for t in times["separate"]],
                          "batched_all_s": [round(t, 3) for t in times["batched"]],
                          "val_nll": [float(np.round(v, 4)) for v in nll]}))


if __name__ == "__main__":
    main()
