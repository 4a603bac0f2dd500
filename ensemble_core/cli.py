"""Command line: ``python -m ensemble_core {train,uci,sweep} ...``.

``train``
    Train the ensemble a ``RunConfig`` JSON file describes, headless, with a
    progress bar on stderr, and write the run (see :mod:`ensemble_core.persistence`).
``uci``
    The UCI regression protocol of Lakshminarayanan et al. (2017), Section 3.3:
    for every standard split, train M Gaussian-NLL members (one hidden layer of
    50 ReLU units, softplus variance + 1e-6, Adam, batch 100, 40 epochs) on the
    standardised training rows and score the test rows in the target's original
    units; print RMSE and NLL per split and their mean +- std over the splits.

``sweep``
    Train a grid (``--grid optim.lr=0.001,0.01``) or random (``--random N
    --range optim.lr=1e-4:1e-1:log``) sweep of 1-3 settings, each trial a job
    on worker processes or Ray (:mod:`ensemble_core.sweeps`), and rank them.

``runs``
    ``runs list``, ``runs show ID``, ``runs export ID --out F.zip``: the runs kept in the run store
    (:mod:`ensemble_core.store`; ``--data-dir``, default ``$LAB_DATA_DIR`` or ``./.lab-data``) for
    ``--owner`` (default ``cli``).

Bad arguments or files give one line on stderr and a non-zero exit status
(2: usage, 1: anything else), never a traceback.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NoReturn

import numpy as np

PROG = "python -m ensemble_core"


class CliError(Exception):
    """A problem with the command's input; printed as one line."""


class _Parser(argparse.ArgumentParser):
    """An ArgumentParser whose errors are a single line (no usage block)."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def _non_negative_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more, got {value}")
    return value


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not (value > 0 and np.isfinite(value)):
        raise argparse.ArgumentTypeError(f"must be a positive number, got {text}")
    return value


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``python -m ensemble_core``."""
    parser = _Parser(prog=PROG, description="Deep Ensemble Lab: train deep ensembles from the command line.")
    sub = parser.add_subparsers(dest="command", metavar="{train,uci,sweep,runs}", parser_class=_Parser)
    sub.required = True

    t = sub.add_parser("train", help="train the ensemble a RunConfig JSON describes and save the run",
                       description="Train headless with a progress bar and write the run to a folder "
                                   "(config.json, run.json, history.csv, metrics.json, weights.safetensors). "
                                   "The command line is your own machine: the dashboard's classroom limits on "
                                   "time and memory do not apply unless you pass --limits.")
    t.add_argument("--config", required=True, type=Path, metavar="RUN.json", help="RunConfig JSON file")
    t.add_argument("--out", required=True, type=Path, metavar="DIR", help="folder to write the run to")
    t.add_argument("--csv", type=Path, metavar="FILE", help="the data file when the config's data.source is 'csv'")
    t.add_argument("--quiet", action="store_true", help="no progress bar")
    t.add_argument("--limits", action="store_true",
                   help="refuse the run, as the shared dashboard would, if it exceeds the classroom limits "
                        "(steps, CPU-seconds, memory); off by default: the CLI is unlimited")
    t.add_argument("--threads", type=_positive_int, default=None,
                   help="torch CPU threads (default: torch's choice)")
    t.set_defaults(func=cmd_train)

    u = sub.add_parser("uci", help="the UCI regression protocol of Lakshminarayanan et al. 2017",
                       description="Train and score a deep ensemble on every standard split of a UCI data set "
                                   "and print RMSE and NLL (original units) per split and mean +- std "
                                   "(sample std over the splits).")
    u.add_argument("csv", type=Path, metavar="DATA.csv", help="data file: header row, target in the last column")
    u.add_argument("--splits", required=True, type=Path, metavar="SPLITS.json", help="the standard splits")
    u.add_argument("--members", type=_positive_int, default=5, help="ensemble size M (default 5)")
    u.add_argument("--epochs", type=_positive_int, default=None,
                   help="epochs per split (default: the splits file's n_epochs, else 40)")
    u.add_argument("--batch-size", type=_positive_int, default=100, help="mini-batch size (default 100)")
    u.add_argument("--lr", type=_positive_float, default=0.01, help="Adam learning rate (default 0.01)")
    u.add_argument("--hidden", type=_positive_int, default=None,
                   help="hidden units of the one hidden layer (default: the splits file's n_hidden, else 50)")
    u.add_argument("--splits-limit", type=_positive_int, default=None, metavar="K",
                   help="use only the first K splits")
    u.add_argument("--seed", type=_non_negative_int, default=0, help="seed of the members (default 0)")
    u.add_argument("--strategy", choices=("ensemble", "mc_dropout"), default="ensemble",
                   help="'ensemble' (deep ensemble of --members networks, the default) or 'mc_dropout' "
                        "(one network trained with dropout, T stochastic passes at prediction)")
    u.add_argument("--dropout", type=_positive_float, default=0.05,
                   help="MC dropout: dropout rate of the hidden layer (default 0.05, Gal & Ghahramani's smaller "
                        "grid value)")
    u.add_argument("--passes", type=_positive_int, default=100,
                   help="MC dropout: stochastic forward passes T at prediction (default 100)")
    u.add_argument("--adversarial", action="store_true",
                   help="add the paper's FGSM adversarial training (eps = 1%% of each input's range)")
    u.add_argument("--threads", type=_positive_int, default=1,
                   help="torch CPU threads (default 1: these small networks run fastest on one thread, "
                        "and a busy machine makes more threads much slower)")
    u.add_argument("--json", action="store_true",
                   help="finish with one JSON line: rmse_mean, rmse_std, nll_mean, nll_std, n_splits, seconds")
    u.set_defaults(func=cmd_uci)

    w = sub.add_parser("sweep", help="train a grid or random sweep of settings and rank the trials",
                       description="Train one trial per combination of the --grid values (or --random N trials "
                                   "drawn from the --range ranges) on worker processes or Ray, and rank them by "
                                   "the test NLL (or --metric). Trials that differ only in the learning rate, "
                                   "weight decay, seed, adversarial eps or beta train as one batched program "
                                   "(one job; --separate: one job per trial). Unlimited, like train.")
    w.add_argument("--config", type=Path, metavar="RUN.json", help="base RunConfig JSON (default: the defaults)")
    w.add_argument("--csv", type=Path, metavar="FILE", help="the data file when the config's data.source is 'csv'")
    w.add_argument("--grid", action="append", default=[], metavar="PATH=V1,V2",
                   help="a swept setting and its values, e.g. optim.lr=0.001,0.01 (repeat for up to 3 settings)")
    w.add_argument("--random", type=_positive_int, default=None, metavar="N",
                   help="draw N random trials from the --range ranges (and the --grid values)")
    w.add_argument("--range", action="append", default=[], metavar="PATH=LO:HI[:log]",
                   help="a random setting's range, e.g. optim.lr=1e-4:1e-1:log (with --random)")
    w.add_argument("--epochs", type=_positive_int, default=None, help="epochs of every trial (default: the config's)")
    w.add_argument("--metric", default="test_nll", help="rank by test_nll (default), val_nll, test_rmse, val_rmse, "
                                                        "test_accuracy, val_accuracy, test_ece or val_ece")
    w.add_argument("--executor", choices=("process", "ray"), default="process",
                   help="worker processes on this machine (default) or Ray (local, or the cluster at RAY_ADDRESS)")
    w.add_argument("--workers", type=_positive_int, default=None,
                   help="programs training at once (default: one per core, or per CPU of the Ray cluster)")
    w.add_argument("--separate", action="store_true",
                   help="train every trial as its own job instead of batching those that can share a program")
    w.add_argument("--seed", type=_non_negative_int, default=0, help="seed of the random trials (default 0)")
    w.add_argument("--json", action="store_true",
                   help='finish with one JSON line: {"trials": [...], "best": {...}}')
    w.set_defaults(func=cmd_sweep)

    r = sub.add_parser("runs", help="list, show or export the runs kept in the run store",
                       description="The runs the dashboard (or another program) kept in the run store "
                                   "(ensemble_core.store): list them, show one, export one as a zip.")
    rsub = r.add_subparsers(dest="runs_command", metavar="{list,show,export}", parser_class=_Parser)
    rsub.required = True
    common = _Parser(add_help=False)
    common.add_argument("--owner", default="cli",
                        help="whose runs (default 'cli'; a browser's runs are under its identity token)")
    common.add_argument("--data-dir", type=Path, default=None, metavar="DIR",
                        help="the store's folder (default: $LAB_DATA_DIR, else ./.lab-data)")
    rl = rsub.add_parser("list", parents=[common], help="the owner's runs, newest first")
    rl.add_argument("--search", default="", help="only runs whose label, data, strategy or status contain TEXT")
    rl.add_argument("--limit", type=_positive_int, default=None, metavar="N", help="at most N runs")
    rl.add_argument("--json", action="store_true", help="one JSON list of the runs' records instead of a table")
    rs = rsub.add_parser("show", parents=[common], help="one run's record and settings")
    rs.add_argument("run_id", metavar="ID", help="the run's id (see runs list)")
    rs.add_argument("--json", action="store_true", help="the record and config as one JSON object")
    rx = rsub.add_parser("export", parents=[common], help="one run as a zip (config, weights, history, metrics)")
    rx.add_argument("run_id", metavar="ID", help="the run's id (see runs list)")
    rx.add_argument("--out", required=True, type=Path, metavar="F.zip", help="the zip file to write")
    r.set_defaults(func=cmd_runs)
    return parser


# -------------------------------------------------------------------- train
def cmd_train(args: argparse.Namespace) -> int:
    """``train --config RUN.json --out DIR [--csv FILE]``."""
    from tqdm import tqdm

    from .config import RunConfig
    from .data import load_dataset
    from .persistence import save_run
    from .predict import evaluate_run
    from .run import EpochEnd, MemberDiverged
    from .training import train

    config = RunConfig.from_json(_read_bytes(args.config, "config", limit=1024 * 1024))
    csv_data = None
    if config.data.source == "csv":
        if args.csv is None:
            raise CliError(f"the config trains on the CSV file {config.data.name!r}; pass it with --csv FILE")
        csv_data = _read_bytes(args.csv, "CSV", limit=64 * 1024 * 1024)
    elif args.csv is not None:
        raise CliError(f"--csv given, but the config's data source is {config.data.source!r}, not 'csv'")
    if args.out.exists() and not args.out.is_dir():
        raise CliError(f"--out {args.out}: exists and is not a folder")
    data = load_dataset(config.data, csv_data)
    if args.limits:
        from .jobs import LimitError, check_limits

        try:
            check_limits(config, data)
        except LimitError as exc:
            raise CliError(f"over the classroom limits (--limits): {exc}") from None

    stop = {"requested": False}

    def on_sigint(signum: int, frame: Any) -> None:
        if stop["requested"]:
            raise KeyboardInterrupt
        stop["requested"] = True
        bar.write("stopping after this batch (Ctrl-C again to abort without saving)", file=sys.stderr)

    bar = tqdm(total=config.optim.epochs, unit="epoch", desc="training", file=sys.stderr,
               disable=args.quiet, dynamic_ncols=True)

    def on_event(event: Any) -> None:
        if isinstance(event, EpochEnd):
            bar.update(event.epoch - bar.n)
            losses = [v for v in event.train_loss if np.isfinite(v)]
            post = {"loss": f"{np.mean(losses):.3g}"} if losses else {}
            post.update({k: f"{v:.3g}" for k, v in event.val.items()})
            bar.set_postfix(post, refresh=False)
        elif isinstance(event, MemberDiverged):
            bar.write(f"trajectory {event.trajectory} diverged at epoch {event.epoch}: {event.reason}",
                      file=sys.stderr)

    previous = signal.signal(signal.SIGINT, on_sigint)
    try:
        run = train(config, data, on_event=on_event, should_stop=lambda: stop["requested"])
    finally:
        signal.signal(signal.SIGINT, previous)
        bar.close()
    out = save_run(run, args.out, dataset=data)
    state = "stopped early" if run.stopped else "done"
    print(f"{state}: {len(run.healthy)}/{len(run.members)} healthy members, {run.epochs_done} epochs, "
          f"{run.seconds:.1f} s; saved to {out}")
    if len(data.y_test) and run.healthy:
        scores = evaluate_run(run, data.x_test, data.y_test)
        print("test: " + ", ".join(f"{k} {v:.4g}" for k, v in scores.items()))
    return 0


# ---------------------------------------------------------------------- uci
def _uci_meta(path: Path) -> dict[str, Any]:
    raw = _read_bytes(path, "splits", limit=256 * 1024 * 1024)
    try:
        meta = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        raise CliError(f"--splits {path}: not valid JSON") from None
    if not isinstance(meta, dict) or not isinstance(meta.get("splits"), list) or not meta["splits"]:
        raise CliError(f"--splits {path}: expected an object with a non-empty 'splits' list")
    return meta


def _meta_int(meta: dict[str, Any], key: str, default: int) -> int:
    value = meta.get(key, default)
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else default


def uci_config(*, members: int, epochs: int, batch_size: int, lr: float, hidden: int, seed: int, name: str,
               adversarial: bool = False, strategy: str = "ensemble", dropout: float = 0.05,
               passes: int = 100) -> Any:
    """The ``RunConfig`` of the Lakshminarayanan et al. UCI protocol.

    One hidden ReLU layer of ``hidden`` units, Gaussian-NLL members with the
    softplus variance, independent members, Adam at a constant ``lr``, no
    weight decay; optionally FGSM adversarial training.  ``strategy="mc_dropout"``:
    the same network and training, one network (``members`` is ignored) with
    dropout ``dropout`` after its hidden layer and ``passes`` stochastic passes at
    prediction (Gal & Ghahramani 2016's UCI setting, with the NLL head in place of
    their grid-searched precision tau).
    """
    from .config import DataSpec, LossSpec, ModelSpec, OptimSpec, RunConfig, StrategySpec

    return RunConfig(
        data=DataSpec(source="csv", name=(name or "uci.csv")[:200], task="regression",
                      val_fraction=0.0, test_fraction=0.0),
        model=ModelSpec(hidden_layers=1, width=hidden, activation="relu"),
        loss=LossSpec(kind="nll", variance="softplus"),
        strategy=StrategySpec(kind="independent", members=members, adversarial=adversarial) if strategy == "ensemble"
        else StrategySpec(kind="mc_dropout", members=1, dropout=dropout, passes=passes),
        optim=OptimSpec(optimizer="adam", lr=lr, weight_decay=0.0, batch_size=batch_size, epochs=epochs,
                        schedule="constant"),
        seed=seed,
    )


def run_uci(csv_path: Path, splits_path: Path, *, members: int = 5, epochs: int | None = None,
            batch_size: int = 100, lr: float = 0.01, hidden: int | None = None, splits_limit: int | None = None,
            seed: int = 0, adversarial: bool = False, strategy: str = "ensemble", dropout: float = 0.05,
            passes: int = 100, on_split: Any = None) -> dict[str, Any]:
    """Run the UCI protocol; return per-split scores and their summary.

    Args:
        csv_path, splits_path: the data and its standard splits.
        members, epochs, batch_size, lr, hidden, seed, adversarial: the protocol's settings
            (``epochs``/``hidden`` default to the splits file's values, else 40/50).
        strategy, dropout, passes: ``"ensemble"`` or ``"mc_dropout"`` and the latter's settings
            (:func:`uci_config`).
        splits_limit: use only the first ``K`` splits.
        on_split: called with ``(split, {"rmse", "nll", "seconds"})`` after each split.

    Returns:
        ``{"splits": [...], "rmse_mean", "rmse_std", "nll_mean", "nll_std",
        "n_splits", "seconds"}`` (std: sample std, 0 for a single split).
    """
    from .data import load_uci
    from .metrics import gaussian_nll, rmse
    from .predict import predict
    from .training import train

    meta = _uci_meta(splits_path)
    epochs = epochs or _meta_int(meta, "n_epochs", 40)
    hidden = hidden or _meta_int(meta, "n_hidden", 50)
    n_splits = len(meta["splits"]) if splits_limit is None else min(splits_limit, len(meta["splits"]))
    config = uci_config(members=members, epochs=epochs, batch_size=batch_size, lr=lr, hidden=hidden, seed=seed,
                        name=csv_path.name, adversarial=adversarial, strategy=strategy, dropout=dropout,
                        passes=passes)
    results = []
    start = time.perf_counter()
    for split in range(n_splits):
        t0 = time.perf_counter()
        data = load_uci(csv_path, splits_path, split)
        run = train(config, data)
        if not run.healthy:
            raise CliError(f"split {split}: every member diverged; try a smaller --lr")
        pred = predict(run, data.x_test)
        scores = {"split": split, "rmse": rmse(data.y_test, pred.mean),
                  "nll": gaussian_nll(data.y_test, pred.mean, pred.total),
                  "seconds": time.perf_counter() - t0}
        results.append(scores)
        if on_split is not None:
            on_split(split, scores)
    rm = np.array([r["rmse"] for r in results])
    nl = np.array([r["nll"] for r in results])
    ddof = 1 if len(results) > 1 else 0
    return {"splits": results, "rmse_mean": float(rm.mean()), "rmse_std": float(rm.std(ddof=ddof)),
            "nll_mean": float(nl.mean()), "nll_std": float(nl.std(ddof=ddof)), "n_splits": len(results),
            "seconds": time.perf_counter() - start}


def cmd_uci(args: argparse.Namespace) -> int:
    """``uci DATA.csv --splits SPLITS.json [...]``."""
    for path, what in ((args.csv, "DATA.csv"), (args.splits, "--splits")):
        if not path.is_file():
            raise CliError(f"{what} {path}: no such file")

    def show(split: int, s: dict[str, float]) -> None:
        print(f"split {split:2d}  RMSE {s['rmse']:8.4f}  NLL {s['nll']:8.4f}  ({s['seconds']:.2f} s)", flush=True)

    summary = run_uci(args.csv, args.splits, members=args.members, epochs=args.epochs,
                      batch_size=args.batch_size, lr=args.lr, hidden=args.hidden,
                      splits_limit=args.splits_limit, seed=args.seed, adversarial=args.adversarial,
                      strategy=args.strategy, dropout=args.dropout, passes=args.passes, on_split=show)
    print(f"{args.csv.stem}: RMSE {summary['rmse_mean']:.3f} ± {summary['rmse_std']:.3f}   "
          f"NLL {summary['nll_mean']:.3f} ± {summary['nll_std']:.3f}   "
          f"({summary['n_splits']} splits, {summary['seconds']:.1f} s)")
    if args.json:
        keys = ("rmse_mean", "rmse_std", "nll_mean", "nll_std", "n_splits", "seconds")
        print(json.dumps({k: summary[k] for k in keys}))
    return 0


# -------------------------------------------------------------------- sweep
def _split_setting(text: str, flag: str) -> tuple[str, str]:
    path, sep, rest = text.partition("=")
    if not sep or not path.strip() or not rest.strip():
        raise CliError(f"{flag} {text!r}: expected PATH=VALUES, e.g. optim.lr=0.001,0.01")
    return path.strip(), rest.strip()


def cmd_sweep(args: argparse.Namespace) -> int:
    """``sweep [--config RUN.json] --grid PATH=V1,V2 ... [--random N --range PATH=LO:HI[:log]] [--json]``."""
    from .config import RunConfig
    from .data import load_dataset
    from .sweeps import SweepSpec, higher_is_better, parse_range, parse_values, run_sweep_local, trial_json

    base = RunConfig.from_json(_read_bytes(args.config, "config", limit=1024 * 1024)) if args.config else RunConfig()
    if args.epochs is not None:
        base = base.replace(**{"optim.epochs": args.epochs})
    csv_data = None
    if base.data.source == "csv":
        if args.csv is None:
            raise CliError(f"the config trains on the CSV file {base.data.name!r}; pass it with --csv FILE")
        csv_data = _read_bytes(args.csv, "CSV", limit=64 * 1024 * 1024)
    if args.range and args.random is None:
        raise CliError("--range needs --random N (how many random trials to draw)")
    if args.random is not None and not args.range and not args.grid:
        raise CliError("--random N needs at least one --range PATH=LO:HI[:log]")
    grid = tuple((p, parse_values(base, p, v)) for p, v in (_split_setting(g, "--grid") for g in args.grid))
    ranges = tuple((p, parse_range(base, p, v)) for p, v in (_split_setting(r, "--range") for r in args.range))
    spec = SweepSpec(base=base, grid=grid, ranges=ranges, n_random=args.random or 0, metric=args.metric,
                     seed=args.seed)
    data = load_dataset(base.data, csv_data)
    n = len(spec.trials())
    print(f"sweep: {n} trials on {args.executor}" + (f" ({args.workers} at once)" if args.workers else "")
          + (", each its own job" if args.separate else ", batched where they can share a program"),
          file=sys.stderr)

    stop = {"requested": False}

    def on_sigint(signum: int, frame: Any) -> None:
        if stop["requested"]:
            raise KeyboardInterrupt
        stop["requested"] = True
        print("stopping the sweep (finished trials are kept; Ctrl-C again to abort)", file=sys.stderr)

    def on_trial(t: Any) -> None:
        shown = ", ".join(f"{k}={v}" for k, v in t.params.items())
        value = t.metrics.get(spec.metric)
        tail = f"{spec.metric} {value:.4g}" if value is not None else (t.error or t.status)
        print(f"  trial {t.index + 1}/{n} {t.status}: {shown}: {tail}", file=sys.stderr)

    previous = signal.signal(signal.SIGINT, on_sigint)
    try:
        sweep = run_sweep_local(spec, data, executor=args.executor, workers=args.workers, on_trial=on_trial,
                                should_stop=lambda: stop["requested"], batched=not args.separate)
    finally:
        signal.signal(signal.SIGINT, previous)
    ranked = sweep.ranked()
    best = sweep.best()
    batched = sum(len(p) for p in sweep.programs if len(p) > 1)
    print(f"sweep: {n} trials trained as {len(sweep.programs)} program{'s' if len(sweep.programs) != 1 else ''}"
          f" ({batched} batched)", file=sys.stderr)
    sign = "higher" if higher_is_better(spec.metric) else "lower"
    print(f"{'trial':>5}  {'status':8} {spec.metric:>12}  {'seconds':>8}  settings")
    for t in ranked:
        value = t.metrics.get(spec.metric)
        shown = ", ".join(f"{k}={v}" for k, v in t.params.items())
        print(f"{t.index + 1:>5}  {t.status:8} {'' if value is None else f'{value:.5g}':>12}  "
              f"{'' if t.seconds is None else f'{t.seconds:.1f}':>8}  {shown}")
    if best is not None:
        print(f"best ({sign} {spec.metric} is better): trial {best.index + 1}, "
              + ", ".join(f"{k}={v}" for k, v in best.params.items()))
    if args.json:
        trials = [trial_json(t, data.task) for t in sweep.trials]
        out = {"trials": trials, "best": None if best is None else trial_json(best, data.task),
               "metric": spec.metric, "executor": args.executor, "stopped": sweep.stopped}
        print(json.dumps(out, allow_nan=False))
    return 0 if best is not None else 1


# --------------------------------------------------------------------- runs
def _runs_store(args: argparse.Namespace) -> Any:
    from .store import RunStore

    store = RunStore(args.data_dir)
    if not store.available:
        raise CliError(f"the run store cannot be used: {store.why}")
    return store


def _metric_text(rec: Any) -> str:
    if rec.test_accuracy is not None:
        return f"acc {rec.test_accuracy:.3f}"
    if rec.test_nll is not None:
        return f"nll {rec.test_nll:.4g}" + (f" rmse {rec.test_rmse:.4g}" if rec.test_rmse is not None else "")
    return ""


def cmd_runs(args: argparse.Namespace) -> int:
    """``runs list|show ID|export ID --out F.zip [--owner NAME] [--data-dir DIR]``."""
    from dataclasses import asdict

    from .store import StoreError

    try:
        store = _runs_store(args)
        if args.runs_command == "list":
            records = store.list(args.owner, search=args.search, limit=args.limit)
            if args.json:
                print(json.dumps([asdict(r) for r in records], allow_nan=False))
                return 0
            if not records:
                print(f"no runs kept for owner {args.owner!r} in {store.root}", file=sys.stderr)
                return 0
            print(f"{'id':22}  {'saved':16}  {'status':8} {'strategy':11} {'M':>3} {'epochs':>6}  "
                  f"{'test':24} {'seconds':>7}  data / label")
            for rec in records:
                when = time.strftime("%Y-%m-%d %H:%M", time.localtime(rec.created))
                status = "damaged" if rec.damaged else rec.status
                secs = "" if rec.seconds is None else f"{rec.seconds:.1f}"
                text = rec.dataset + (f" / {rec.label}" if rec.label else "") + (" *" if rec.starred else "")
                print(f"{rec.run_id:22}  {when:16}  {status:8} {rec.strategy:11} {rec.members:>3} {rec.epochs:>6}  "
                      f"{_metric_text(rec):24} {secs:>7}  {text}")
            return 0
        rec = store.get(args.run_id, args.owner)
        if rec is None:
            raise CliError(f"no run {args.run_id[:64]!r} among the runs of owner {args.owner!r} in {store.root}")
        if args.runs_command == "show":
            config = store.read_config(args.run_id, args.owner)
            if args.json:
                print(json.dumps({"record": asdict(rec), "config": json.loads(config.to_json())}, allow_nan=False))
                return 0
            for key, value in asdict(rec).items():
                if key == "created":
                    value = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(value))
                print(f"{key:14} {value}")
            print("config:")
            print(config.to_json())
            return 0
        data = store.export_zip(args.run_id, args.owner)
        if args.out.is_dir():
            raise CliError(f"--out {args.out}: is a folder; give a file name such as run.zip")
        try:
            args.out.write_bytes(data)
        except OSError as exc:
            raise CliError(f"--out {args.out}: {exc.strerror or exc}") from None
        print(f"exported run {rec.run_id} to {args.out} ({len(data) / 1024:.1f} KB)")
        return 0
    except StoreError as exc:
        raise CliError(str(exc)) from None


# ------------------------------------------------------------------- common
def _read_bytes(path: Path, what: str, *, limit: int) -> bytes:
    try:
        size = path.stat().st_size
        if not path.is_file():
            raise CliError(f"{what} {path}: not a file")
        if size > limit:
            raise CliError(f"{what} {path}: {size / 2**20:.1f} MB is over the {limit / 2**20:.0f} MB limit")
        return path.read_bytes()
    except FileNotFoundError:
        raise CliError(f"{what} {path}: no such file") from None
    except OSError as exc:
        raise CliError(f"{what} {path}: {exc.strerror or exc}") from None


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if len(text) <= 500 else text[:497] + "..."


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; returns the exit status (0 ok, 1 failure, 2 usage, 130 interrupted)."""
    args = build_parser().parse_args(argv)
    from .config import ConfigError
    from .data import DataError
    from .persistence import PersistenceError
    from .training import TrainingError

    if getattr(args, "threads", None):
        import torch

        torch.set_num_threads(args.threads)
    try:
        return int(args.func(args))
    except (CliError, ConfigError, DataError, PersistenceError, TrainingError) as exc:
        print(f"{PROG} {args.command}: error: {_one_line(exc)}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"{PROG} {args.command}: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # noqa: BLE001 - the promise is one line, never a traceback
        print(f"{PROG} {args.command}: error: {type(exc).__name__}: {_one_line(exc)}", file=sys.stderr)
        return 1
