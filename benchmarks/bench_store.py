"""Run store costs (issue 17): saving a default run, listing 1,000 runs, size on disk.

    python benchmarks/bench_store.py [--saves 15] [--runs 1000]

Measures, in one process, with baselines measured in the same run:

- **save**: ``RunStore.save`` of a trained default run (``RunConfig()`` on its default data),
  median and best of ``--saves``, split into building the files (``persistence.run_files`` with the
  test metrics) and writing them (temp folder, parallel fsync, rename, index row, retention check).
  Baselines: the run's own training time, and ``persistence.export_zip`` of the same run (what the
  dashboard already did to offer a download).  Target: at most 50 ms added to the end of a run.
- **list**: ``RunStore.list`` of one owner's 1,000 runs, plus turning the records into the Runs
  table's rows (formatted strings) and a pandas frame of them.  Target: at most 1 s.  The first
  ``--real`` runs are real saves; the rest are copies of their index rows with new ids, dates,
  labels and strategies (listing reads no files, so their folders do not matter for it).
- **start-up**: a new ``RunStore`` on the folder with 1,000 runs (orphan clean-up and the size scan).
- **size**: bytes per default run (files, and allocated blocks), and the index per run.
"""

from __future__ import annotations

import argparse
import os
import secrets
import sqlite3
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from ensemble_core import persistence  # noqa: E402
from ensemble_core.config import RunConfig  # noqa: E402
from ensemble_core.data import load_dataset  # noqa: E402
from ensemble_core.store import RunStore  # noqa: E402
from ensemble_core.training import train  # noqa: E402


def _ms(values: list[float]) -> str:
    return f"{statistics.median(values) * 1000:8.1f} ms (best {min(values) * 1000:.1f})"


def _table_rows(records: list) -> list[dict]:
    """What a Runs table shows per run: formatted strings and numbers."""
    rows = []
    for r in records:
        rows.append({
            "when": time.strftime("%Y-%m-%d %H:%M", time.localtime(r.created)),
            "data": r.dataset, "strategy": r.strategy, "members": r.members, "epochs": r.epochs,
            "test NLL": r.test_nll, "test RMSE": r.test_rmse, "accuracy": r.test_accuracy,
            "seconds": None if r.seconds is None else round(r.seconds, 1),
            "status": "damaged" if r.damaged else r.status, "label": ("★ " if r.starred else "") + r.label,
            "id": r.run_id,
        })
    return rows


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--saves", type=int, default=15)
    ap.add_argument("--runs", type=int, default=1000)
    ap.add_argument("--real", type=int, default=30)
    ap.add_argument("--threads", type=int, default=1,
                    help="torch threads (default 1: what the dashboard's JobPool sets in the server on 2 cores)")
    args = ap.parse_args()
    import torch

    torch.set_num_threads(args.threads)

    cfg = RunConfig()
    data = load_dataset(cfg.data)
    t0 = time.perf_counter()
    run = train(cfg, data)
    train_s = time.perf_counter() - t0

    with tempfile.TemporaryDirectory(dir=Path(__file__).resolve().parents[1]) as d:
        root = Path(d) / "store"
        store = RunStore(root, max_runs_per_owner=args.runs + 10)
        export, files_t, save_t = [], [], []
        for _ in range(args.saves):
            t = time.perf_counter()
            persistence.export_zip(run, data)
            export.append(time.perf_counter() - t)
            t = time.perf_counter()
            persistence.run_files(run, data)
            files_t.append(time.perf_counter() - t)
            t = time.perf_counter()
            rec = store.save(run, data, owner="bench", source="train")
            save_t.append(time.perf_counter() - t)
        for _ in range(max(0, args.real - args.saves)):
            store.save(run, data, owner="bench", source="train")
        folder = root / "runs" / rec.run_id
        blocks = sum(p.stat().st_blocks * 512 for p in folder.iterdir())

        # clone index rows up to --runs (listing reads the index only)
        store.close()
        conn = sqlite3.connect(root / "index.sqlite", isolation_level=None)
        cols = [c[1] for c in conn.execute("PRAGMA table_info(runs)")]
        real = conn.execute(f"SELECT {', '.join(cols)} FROM runs").fetchall()
        conn.execute("BEGIN")
        strategies = ("independent", "bootstrap", "snapshot")
        now, clones = time.time(), []
        for i in range(args.runs - len(real)):
            row = dict(zip(cols, real[i % len(real)]))
            clones.append((row["run_id"], row_id := secrets.token_urlsafe(16)))
            row.update(run_id=row_id, created=now - 60 * (i + 1), label=f"trial {i}",
                       strategy=strategies[i % 3], starred=int(i % 50 == 0))
            conn.execute(f"INSERT INTO runs({', '.join(row)}) VALUES ({', '.join('?' * len(row))})",
                         tuple(row.values()))
        conn.execute("COMMIT")
        conn.close()
        # each clone gets hard links to its source's files, so the start-up scan sees sound runs
        for source, clone in clones:
            (root / "runs" / clone).mkdir()
            for f in (root / "runs" / source).iterdir():
                os.link(f, root / "runs" / clone / f.name)

        startup = []
        for _ in range(3):
            t = time.perf_counter()
            store = RunStore(root, max_runs_per_owner=args.runs + 10)
            startup.append(time.perf_counter() - t)
            assert store.available, store.why
            store.close()
        store = RunStore(root, max_runs_per_owner=args.runs + 10)
        list_t, rows_t, frame_t = [], [], []
        import pandas as pd

        for _ in range(7):
            t = time.perf_counter()
            records = store.list("bench")
            list_t.append(time.perf_counter() - t)
            t = time.perf_counter()
            rows = _table_rows(records)
            rows_t.append(time.perf_counter() - t)
            t = time.perf_counter()
            pd.DataFrame(rows)
            frame_t.append(time.perf_counter() - t)
        assert len(records) == args.runs and not any(r.damaged for r in records)
        filt = []
        for _ in range(7):
            t = time.perf_counter()
            store.list("bench", search="trial 9", strategy="snapshot")
            filt.append(time.perf_counter() - t)
        index_bytes = sum((root / n).stat().st_size for n in os.listdir(root) if n.startswith("index.sqlite"))

    total_list = [a + b + c for a, b, c in zip(list_t, rows_t, frame_t)]
    added = statistics.median(save_t)
    print(f"run store, default run (RunConfig(): {cfg.strategy.ensemble_size} members, {cfg.optim.epochs} epochs), "
          f"torch threads {args.threads}, load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
    print(f"{'measure':44} {'time':>30}")
    print(f"{'baseline: training the run':44} {train_s * 1000:8.1f} ms")
    print(f"{'baseline: persistence.export_zip':44} {_ms(export)}")
    print(f"{'save: build files (run_files + metrics)':44} {_ms(files_t)}")
    print(f"{'save: RunStore.save (all of it)':44} {_ms(save_t)}")
    print(f"{'  -> write part (save - build files)':44} "
          f"{(statistics.median(save_t) - statistics.median(files_t)) * 1000:8.1f} ms")
    print(f"{'list: RunStore.list, ' + str(args.runs) + ' runs':44} {_ms(list_t)}")
    print(f"{'list: records -> table rows':44} {_ms(rows_t)}")
    print(f"{'list: rows -> pandas frame':44} {_ms(frame_t)}")
    print(f"{'list: all three':44} {_ms(total_list)}")
    print(f"{'list: search + strategy filter':44} {_ms(filt)}")
    print(f"{'start-up: RunStore() on ' + str(args.runs) + ' runs':44} {_ms(startup)}")
    print(f"size per default run: {rec.bytes:,} bytes of files, {blocks:,} bytes of blocks; "
          f"index {index_bytes / args.runs:,.0f} bytes per run")
    print(f"ratios: save / training = {added / train_s:.4f}; save / export_zip = "
          f"{added / statistics.median(export):.2f}x; save target 50 ms: {'met' if added <= 0.05 else 'NOT met'}; "
          f"list target 1 s: {'met' if statistics.median(total_list) <= 1.0 else 'NOT met'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
