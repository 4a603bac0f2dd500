"""Thread vs process executor of JobPool beside a CPU-busy Python thread.

Trains the default run (``RunConfig()`` on ``load_dataset(RunConfig().data)``):

(a) headless: a direct ``train()`` call, nothing else running;
(b) through ``JobPool(executor="thread")`` while another Python thread busy-loops
    (what the Streamlit server did: script reruns and Plotly figures hold the GIL);
(c) through ``JobPool(executor="process")`` beside the same busy thread.

Prints a table (seconds from submit to finished, and the ratio to (a)); asserts nothing.

    python benchmarks/bench_jobs.py [--repeats N]
"""

from __future__ import annotations

import argparse
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from ensemble_core.config import RunConfig  # noqa: E402
from ensemble_core.data import load_dataset  # noqa: E402
from ensemble_core.jobs import JobPool  # noqa: E402
from ensemble_core.training import train  # noqa: E402


class Busy:
    """A Python thread spinning in pure-Python code (it holds the GIL whenever it can)."""

    def __init__(self) -> None:
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._spin, daemon=True)

    def _spin(self) -> None:
        n = 0
        while not self._stop.is_set():
            for _ in range(10_000):
                n += 1

    def __enter__(self) -> Busy:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def through_pool(pool: JobPool, cfg: RunConfig, ds, busy: bool) -> float:
    """Seconds from submit until the job finished (the pool is warmed up first, untimed)."""
    warm = pool.submit(cfg.replace(**{"optim.epochs": 1}), ds, owner="warm")
    while warm.active:
        time.sleep(0.02)
    t0 = time.perf_counter()
    if busy:
        with Busy():
            job = pool.submit(cfg, ds, owner="bench")
            while job.active:
                time.sleep(0.02)
    else:
        job = pool.submit(cfg, ds, owner="bench")
        while job.active:
            time.sleep(0.02)
    seconds = time.perf_counter() - t0
    if job.status != "done":
        raise RuntimeError(f"job ended {job.status}: {job.error}")
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3, help="runs per row (the median is shown)")
    args = parser.parse_args()
    import torch

    torch.set_num_threads(1)  # every row trains with one torch thread (the pools' setting on 2 cores)
    cfg = RunConfig()
    ds = load_dataset(cfg.data)
    train(cfg.replace(**{"optim.epochs": 1}), ds)  # torch's first calls are slow: warm up

    def median(f) -> float:
        xs = sorted(f() for _ in range(args.repeats))
        return xs[len(xs) // 2]

    def direct() -> float:
        t0 = time.perf_counter()
        train(cfg, ds)
        return time.perf_counter() - t0

    rows = [("(a) direct train(), idle", median(direct))]
    # one running job at a time, like the measurement in the issue; max_active_per_owner allows the warm-up
    thread_pool = JobPool(1, heartbeat_timeout=None, executor="thread", max_active_per_owner=2,
                          torch_threads=1)
    try:
        rows.append(("(b) JobPool thread executor + busy thread",
                     median(lambda: through_pool(thread_pool, cfg, ds, busy=True))))
    finally:
        thread_pool.shutdown()
    proc_pool = JobPool(1, heartbeat_timeout=None, executor="process", max_active_per_owner=2,
                        torch_threads=1)
    try:
        rows.append(("(c) JobPool process executor + busy thread",
                     median(lambda: through_pool(proc_pool, cfg, ds, busy=True))))
        rows.append(("(c') JobPool process executor, idle",
                     median(lambda: through_pool(proc_pool, cfg, ds, busy=False))))
    finally:
        proc_pool.shutdown()

    base = rows[0][1]
    print(f"default run: {cfg.strategy.members} members, {cfg.optim.epochs} epochs, "
          f"{len(ds.x_train)} training rows; median of {args.repeats}")
    print(f"{'setting':<46} {'seconds':>9} {'x (a)':>8}")
    for name, s in rows:
        print(f"{name:<46} {s:>9.3f} {s / base:>8.1f}")


if __name__ == "__main__":
    main()
