"""Run one benchmark on a base commit and on the working tree, alternating, in one run.

A change must not make a benchmark worse; on a shared 2-core machine the only fair comparison is
the two versions measured in the same run, alternating so both see the same load.  The base is
checked out into a temporary git worktree (removed afterwards); each round runs the benchmark
script in the base tree, then in this tree, and prints both outputs.

Usage: ``python benchmarks/bench_versus.py BASE_COMMIT benchmarks/bench_rerun.py [--rounds 2] [-- ARGS...]``
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def run(tree: Path, script: str, args: list[str]) -> str:
    """The benchmark's output (stdout and stderr's last lines on failure) when run in ``tree``."""
    proc = subprocess.run([sys.executable, script, *args], cwd=tree, capture_output=True, text=True, check=False)
    if proc.returncode:
        return f"FAILED ({proc.returncode}):\n{proc.stderr[-2000:]}"
    return proc.stdout


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("base", help="the commit to compare against (e.g. the commit before a change)")
    ap.add_argument("script", help="the benchmark script, relative to the repo root")
    ap.add_argument("--rounds", type=int, default=2, help="alternating rounds (base, then this tree)")
    argv = sys.argv[1:]
    cut = argv.index("--") if "--" in argv else len(argv)
    opts, extra = ap.parse_args(argv[:cut]), argv[cut + 1:]  # after "--": the benchmark's own arguments
    with tempfile.TemporaryDirectory(prefix="bench-base-") as tmp:
        base = Path(tmp) / "base"
        subprocess.run(["git", "worktree", "add", "--detach", str(base), opts.base], cwd=ROOT, check=True,
                       capture_output=True)
        try:
            for r in range(1, opts.rounds + 1):
                for name, tree in ((f"base {opts.base[:10]}", base), ("this tree", ROOT)):
                    print(f"===== round {r}: {name} =====", flush=True)
                    print(run(tree, opts.script, extra), flush=True)
        finally:
            subprocess.run(["git", "worktree", "remove", "--force", str(base)], cwd=ROOT, check=False,
                           capture_output=True)


if __name__ == "__main__":
    main()
