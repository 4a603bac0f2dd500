"""Server memory and time of importing the two hostile run zips: the old import vs the bounded one.

The zips come from ``tests/attack_zips.py`` (a ~100 KB zip whose ``run.json`` holds a 100 MB
``lr_trace`` of zeros; a ~300 KB zip declaring a 40-member 8 x 1024 model in float8).  Each import
runs in a fresh child process (torch and the persistence module already imported), which reports
its peak RSS growth during the import (Linux: ``/proc/self/clear_refs`` resets the peak first),
the wall time, and the outcome.

(a) baseline: ``ensemble_core/persistence.py`` as of a git revision (``--baseline``, default
    ``1a9caef^``, the last commit before the bounded import);
(b) candidate: the working tree's ``ensemble_core/persistence.py``.

    python benchmarks/bench_import_memory.py [--baseline REV] [--only candidate]

Measured 2026-12-06 (2-core Linux machine, RSS growth during the import):

    lr_trace 100 MB of zeros (101 KB zip)   (a) 2,927 MB, 47 s, imported   (b) ~0 MB, 0.01 s, refused
    float8 40 x 8x1024 model (281 KB zip)   (a) 2,596 MB, 17 s, imported   (b) ~0 MB, 0.01 s, refused

Asserts nothing; prints a table with the ratios.  The child mode (``--child ZIP [MODULE]``) prints
one JSON line and is what ``tests/test_import_limits.py`` runs.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))


def _status_kb(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"{field} not in /proc/self/status")


def child(zip_path: str, module_path: str | None) -> dict:
    """Import ``zip_path`` with the persistence module at ``module_path`` (``None``: the package's own)."""
    import torch  # noqa: F401 - loaded before the measurement, as in the server

    if module_path is None:
        from ensemble_core import persistence as mod
    else:
        import ensemble_core  # noqa: F401 - the baseline's relative imports resolve in this package

        spec = importlib.util.spec_from_file_location("ensemble_core._baseline_persistence", module_path)
        mod = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(mod)
    data = Path(zip_path).read_bytes()
    Path("/proc/self/clear_refs").write_text("5")  # reset VmHWM to the current RSS
    before = _status_kb("VmRSS")
    t0 = time.perf_counter()
    try:
        mod.import_zip(data)
        outcome = "imported"
    except Exception as exc:  # noqa: BLE001 - the outcome is reported, whatever it is
        outcome = f"{type(exc).__name__}: {exc}"
    seconds = time.perf_counter() - t0
    return {"peak_growth_mb": (_status_kb("VmHWM") - before) / 1024, "seconds": seconds, "outcome": outcome}


def run_child(zip_path: Path, module_path: Path | None, timeout: float = 600) -> dict:
    """Run :func:`child` in a fresh interpreter; returns its report."""
    cmd = [sys.executable, str(Path(__file__).resolve()), "--child", str(zip_path)]
    if module_path is not None:
        cmd.append(str(module_path))
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, cwd=ROOT, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    ap.add_argument("--baseline", default="1a9caef^", help="git revision of the old persistence.py "
                    "(default: the last commit before the bounded import)")
    ap.add_argument("--only", choices=("baseline", "candidate"), help="measure one side only")
    args = ap.parse_args()
    if args.child:
        print(json.dumps(child(args.child[0], args.child[1] if len(args.child) > 1 else None)))
        return
    import attack_zips

    with tempfile.TemporaryDirectory() as tmp:
        old = Path(tmp) / "old_persistence.py"
        old.write_bytes(subprocess.run(["git", "show", f"{args.baseline}:ensemble_core/persistence.py"],
                                       cwd=ROOT, capture_output=True, check=True).stdout)
        zips = {"lr_trace 100 MB of zeros": attack_zips.huge_lr_trace_zip(),
                "float8 40 x 8x1024 model": attack_zips.float8_model_zip()}
        sides = {"(a) baseline": old, "(b) candidate": None}
        if args.only:
            sides = {k: v for k, v in sides.items() if args.only in k}
        print(f"{'zip':28} {'size':>8} {'side':15} {'peak RSS +MB':>12} {'seconds':>8}  outcome")
        for name, blob in zips.items():
            path = Path(tmp) / "attack.zip"
            path.write_bytes(blob)
            rows = {}
            for side, module in sides.items():
                rows[side] = r = run_child(path, module)
                print(f"{name:28} {len(blob) / 1024:6.0f}KB {side:15} {r['peak_growth_mb']:12.0f} "
                      f"{r['seconds']:8.2f}  {r['outcome'][:110]}")
            if len(rows) == 2:
                a, b = rows["(a) baseline"], rows["(b) candidate"]
                print(f"{'':28} {'':8} {'ratio a/b':15} {a['peak_growth_mb'] / max(b['peak_growth_mb'], 1):11.0f}x "
                      f"{a['seconds'] / max(b['seconds'], 1e-6):7.0f}x")


if __name__ == "__main__":
    main()
