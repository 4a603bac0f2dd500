"""Save, load, export and import trained runs — safely (nothing is ever unpickled).

A saved run is a folder (or, exported, a zip holding the same flat files):

``config.json``
    the :class:`~ensemble_core.config.RunConfig` (``RunConfig.to_json``).
``run.json``
    everything else needed to rebuild the :class:`~ensemble_core.run.Run`:
    the model's shape, the members, the scaling, names, the learning-rate
    trace, stopped/epochs/seconds and the event history (plain JSON; NaN is
    written as ``null``).
``history.csv``
    one row per epoch and trajectory (for spreadsheets; not read back).  Numbers, and a
    header of metric names that goes through :func:`~ensemble_core.data.csv_safe_cell`
    like every text cell of a CSV the app writes.
``metrics.json``
    test-set metrics, written when a dataset is given (not read back).
``weights.safetensors``
    the stacked model's ``state_dict`` in the safetensors format.
``replay.json``
    the previews recorded while it trained (:attr:`~ensemble_core.run.Run.replay`), written when
    there are any: the inputs they predict on and, per frame, the epoch, the members combined and
    the ensemble's float32 arrays (at most :data:`~ensemble_core.run.MAX_REPLAY_FRAMES` frames of
    at most :data:`~ensemble_core.run.MAX_REPLAY_BYTES` bytes of arrays).  Read back, bounded.

Loading rebuilds :class:`~ensemble_core.models.StackedMLP` from ``run.json`` and
the config, then copies in the weights after checking the safetensors header
(every name, float32/float64 dtype, shape and byte range).  Every file's size
is checked against what ``config.json`` implies (:func:`run_budget`) before it
is read, and ``run.json``'s values are counted before it is parsed, so memory
is bounded by the config, not by the file.  Imported zips are also checked for
member names (exactly the files above, no folders, no ``..``), encryption and
JSON types; anything wrong raises :class:`PersistenceError` with a message for
a human.
"""

from __future__ import annotations

import csv
import io
import json
import math
import warnings
import zipfile
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .config import ConfigError, RunConfig
from .data import MAX_CLASSES, MAX_CSV_COLUMNS, MAX_CSV_ROWS, csv_safe_cell
from .models import StackedMLP
from .predict import ClassificationPrediction, RegressionPrediction, evaluate_run
from .run import (
    MAX_REPLAY_BYTES,
    MAX_REPLAY_FRAMES,
    MAX_REPLAY_MEMBERS,
    Done,
    EpochEnd,
    MemberDiverged,
    MemberInfo,
    Preview,
    Run,
    SnapshotTaken,
)
from .schedules import steps_per_epoch
from .shapes import layer_sizes, output_size, parameter_count

__all__ = [
    "PersistenceError",
    "FORMAT",
    "FORMAT_VERSION",
    "RUN_FILES",
    "EXTRA_FILES",
    "MAX_IMPORT_BYTES",
    "MAX_UNPACKED_BYTES",
    "MAX_CONFIG_BYTES",
    "MAX_IMPORT_STEPS",
    "MAX_IMPORT_PARAMETERS",
    "MAX_FEATURES",
    "RunBudget",
    "run_budget",
    "run_files",
    "save_run",
    "load_run",
    "export_zip",
    "import_zip",
]

FORMAT = "deep-ensemble-lab/run"
FORMAT_VERSION = 1
#: Every file a saved run may contain; the first three are required.
RUN_FILES = ("config.json", "run.json", "weights.safetensors", "history.csv", "metrics.json", "replay.json")
_REQUIRED = RUN_FILES[:3]
#: Files an export may carry that this module does not read: the dashboard's recalibration of the run
#: (``dashboard/exports.py`` adds it and takes it back out).  :func:`import_zip` accepts and skips them.
EXTRA_FILES = ("recalibration.json",)
#: Largest zip :func:`import_zip` accepts, and largest total it may unpack to.
MAX_IMPORT_BYTES = 200 * 1024 * 1024
MAX_UNPACKED_BYTES = 400 * 1024 * 1024
_ZIP_DATE = (1980, 1, 1, 0, 0, 0)


class PersistenceError(ValueError):
    """A run could not be saved, loaded or imported; the message says why, for a human."""


# ============================================================== writing
def _finite_or_none(v: Any) -> float | None:
    if v is None:
        return None
    f = float(v)
    return f if math.isfinite(f) else None


def _float_list(values: Any) -> list[float | None]:
    return [_finite_or_none(v) for v in np.asarray(values, dtype=np.float64).reshape(-1)]


def _event_to_json(event: Any) -> dict[str, Any] | None:
    """Plain-JSON form of an event (``Preview`` events are not kept)."""
    if isinstance(event, EpochEnd):
        return {
            "kind": "epoch", "epoch": int(event.epoch), "n_epochs": int(event.n_epochs),
            "train_loss": _float_list(event.train_loss),
            "train_acc": None if event.train_acc is None else _float_list(event.train_acc),
            "val": {str(k): _finite_or_none(v) for k, v in event.val.items()},
            "lrs": _float_list(event.lrs), "elapsed": float(event.elapsed),
        }
    if isinstance(event, (SnapshotTaken, MemberDiverged, Done)):
        d = asdict(event)
        for k, v in d.items():
            if isinstance(v, float):
                d[k] = _finite_or_none(v)
        return d
    return None


def _run_json(run: Run) -> dict[str, Any]:
    model = run.model
    return {
        "format": FORMAT,
        "version": FORMAT_VERSION,
        "task": run.task,
        "model": {
            "n_members": int(model.n_members),
            "in_features": int(model.in_features),
            "out_features": int(model.out_features),
        },
        "members": [asdict(m) for m in run.members],
        "x_mean": _float_list(run.x_mean),
        "x_std": _float_list(run.x_std),
        "y_mean": float(run.y_mean),
        "y_std": float(run.y_std),
        "n_classes": int(run.n_classes),
        "feature_names": [str(n) for n in run.feature_names],
        "target_name": str(run.target_name),
        "class_names": None if run.class_names is None else [str(c) for c in run.class_names],
        "lr_trace": _float_list(run.lr_trace),
        "epochs_done": int(run.epochs_done),
        "stopped": bool(run.stopped),
        "seconds": float(run.seconds),
        "events": [e for e in (_event_to_json(ev) for ev in run.history) if e is not None],
    }


def _history_csv(run: Run) -> str:
    """One row per epoch x trajectory: epoch, trajectory, losses, validation metrics, LRs, time."""
    epochs = [e for e in run.history if isinstance(e, EpochEnd)]
    val_keys = sorted({k for e in epochs for k in e.val})
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow([csv_safe_cell(h) for h in ("epoch", "trajectory", "train_loss", "train_acc",
                                                 *[f"val_{k}" for k in val_keys], "lr_first", "lr_last",
                                                 "steps", "elapsed")])

    def cell(v: Any) -> str:
        return "" if v is None or (isinstance(v, float) and not math.isfinite(v)) else repr(float(v))

    for e in epochs:
        lrs = list(e.lrs)
        for t, loss in enumerate(e.train_loss):
            acc = e.train_acc[t] if e.train_acc is not None and t < len(e.train_acc) else None
            writer.writerow([e.epoch, t, cell(loss), cell(acc), *[cell(e.val.get(k)) for k in val_keys],
                             cell(lrs[0] if lrs else None), cell(lrs[-1] if lrs else None), len(lrs),
                             cell(e.elapsed)])
    return out.getvalue()


def _metrics_json(run: Run, dataset: Any) -> dict[str, Any] | None:
    out: dict[str, Any] = {"dataset": str(getattr(dataset, "name", ""))}
    for split in ("test", "val"):
        x, y = getattr(dataset, f"x_{split}", None), getattr(dataset, f"y_{split}", None)
        if x is None or y is None or len(y) == 0 or not run.healthy:
            continue
        scores = evaluate_run(run, x, y)
        out[split] = {k: _finite_or_none(v) for k, v in scores.items()}
        out[f"n_{split}"] = int(len(y))
    return out if len(out) > 1 else None


def _f32_list(values: Any) -> list[Any]:
    """float32 values as JSON numbers (``repr`` of each float32 reads back to the same float32; NaN -> null)."""
    a = np.asarray(values, dtype=np.float32)
    return [None if not math.isfinite(v) else v for v in a.astype(np.float64).tolist()] if a.ndim == 1 \
        else [_f32_list(row) for row in a]


def _replay_json(run: Run) -> dict[str, Any] | None:
    """``replay.json``: the run's recorded previews, or ``None`` when it has none."""
    if not run.replay or run.replay_x is None:
        return None
    frames = []
    for f in run.replay:
        p = f.prediction
        frame: dict[str, Any] = {"epoch": int(f.epoch), "members": [int(m) for m in p.members]}
        names = (("mean", "aleatoric", "epistemic", "total", "member_means", "member_vars")
                 if isinstance(p, RegressionPrediction) else ("probs", "aleatoric", "epistemic", "total"))
        for name in names:
            frame[name] = _f32_list(getattr(p, name))
        frames.append(frame)
    return {"format": FORMAT, "version": FORMAT_VERSION, "task": run.task,
            "x": [[float(v) for v in row] for row in np.asarray(run.replay_x, dtype=np.float64)], "frames": frames}


def _weights_bytes(run: Run) -> bytes:
    from safetensors.torch import save

    state = {k: v.detach().to("cpu").contiguous().clone() for k, v in run.model.state_dict().items()}
    # one metadata key only: safetensors writes a metadata map in hash order, which would
    # make two exports of the same run differ byte for byte
    return save(state, metadata={"format": f"{FORMAT} v{FORMAT_VERSION}"})


def run_files(run: Run, dataset: Any = None) -> dict[str, bytes]:
    """The files of a saved run, in memory.

    Args:
        run: a trained run.
        dataset: optional :class:`~ensemble_core.data.Dataset` the run was
            trained on; when given, ``metrics.json`` holds its test (and
            validation) metrics in original units.

    Returns:
        ``{file name: content}`` for the files listed in :data:`RUN_FILES`.
    """
    if not isinstance(run, Run):
        raise PersistenceError(f"run: expected a Run, got {type(run).__name__}")
    files = {
        "config.json": run.config.to_json().encode(),
        "run.json": json.dumps(_run_json(run), indent=1, allow_nan=False).encode(),
        "history.csv": _history_csv(run).encode(),
        "weights.safetensors": _weights_bytes(run),
    }
    replay = _replay_json(run)
    if replay is not None:
        files["replay.json"] = json.dumps(replay, separators=(",", ":"), allow_nan=False).encode()
    if dataset is not None:
        scores = _metrics_json(run, dataset)
        if scores is not None:
            files["metrics.json"] = json.dumps(scores, indent=1, allow_nan=False).encode()
    return files


def save_run(run: Run, out_dir: str | Path, *, dataset: Any = None) -> Path:
    """Write a run to a folder (created if needed; files of the same name are replaced).

    Args:
        run: a trained run.
        out_dir: the folder.
        dataset: optional dataset; when given, ``metrics.json`` holds test metrics.

    Returns:
        The folder's path.
    """
    files = run_files(run, dataset)
    path = Path(out_dir)
    try:
        path.mkdir(parents=True, exist_ok=True)
        for name in RUN_FILES:
            target = path / name
            if name in files:
                target.write_bytes(files[name])
            elif name in ("metrics.json", "replay.json") and target.exists():
                target.unlink()  # stale metrics or replay of another run must not survive
    except OSError as exc:
        raise PersistenceError(f"cannot write the run to {path}: {exc.strerror or exc}") from None
    return path


def export_zip(run: Run, dataset: Any = None) -> bytes:
    """The run as the bytes of a zip archive (the files of :func:`save_run`, flat).

    Args:
        run: a trained run.
        dataset: optional dataset for ``metrics.json``.

    Returns:
        The zip file's content (deterministic for the same run).
    """
    files = run_files(run, dataset)
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for name in RUN_FILES:
            if name in files:
                info = zipfile.ZipInfo(name, date_time=_ZIP_DATE)
                info.compress_type = zipfile.ZIP_DEFLATED
                zf.writestr(info, files[name])
    return buf.getvalue()


# ============================================================== reading
class _Files:
    """The files of a saved run, read lazily: their declared sizes first, their bytes only on demand."""

    def __init__(self, where: str, sizes: dict[str, int], read: Any) -> None:
        self.where, self.sizes, self._read = where, sizes, read

    def read(self, name: str, limit: int, why: str) -> bytes:
        """The bytes of ``name``, refused before reading when its size exceeds ``limit`` (``why`` says where from)."""
        size = self.sizes[name]
        if size > limit:
            raise PersistenceError(f"{name} is {_mb(size)}; {why} it can be at most {_mb(limit)}, so this file "
                                   "was not made by this lab and is not read")
        data = self._read(name)
        if len(data) > limit:  # a file that changed size after it was listed
            raise PersistenceError(f"{name}: larger than its listed size")
        return data


def _mb(n: int) -> str:
    return f"{n / 2**20:.1f} MB" if n >= 2**20 else f"{n / 1024:.1f} KB" if n >= 1024 else f"{n} bytes"


def load_run(run_dir: str | Path) -> Run:
    """Load a run written by :func:`save_run`.

    Args:
        run_dir: the folder.

    Returns:
        The :class:`~ensemble_core.run.Run` with its model rebuilt (eval mode, CPU).

    Raises:
        PersistenceError: a file is missing, too large or invalid.
    """
    path = Path(run_dir)
    if not path.is_dir():
        raise PersistenceError(f"{path}: not a folder with a saved run")
    sizes: dict[str, int] = {}
    for name in RUN_FILES:
        f = path / name
        if f.is_file():
            sizes[name] = f.stat().st_size
    if sum(sizes.values()) > MAX_UNPACKED_BYTES:
        raise PersistenceError(f"the run's files exceed {MAX_UNPACKED_BYTES // 2**20} MB")

    def read(name: str) -> bytes:
        try:
            return (path / name).read_bytes()
        except OSError as exc:
            raise PersistenceError(f"{name}: cannot be read ({exc.strerror or exc})") from None

    return _run_from_files(_Files(str(path), sizes, read))


def import_zip(data: bytes, *, max_bytes: int = MAX_IMPORT_BYTES) -> Run:
    """Load a run from the bytes of a zip made by :func:`export_zip`.

    Only the file names of :data:`RUN_FILES` and :data:`EXTRA_FILES` (never read
    here) are allowed (no folders, no path tricks).  Every file's size, as the archive lists it, is checked against
    what the run's ``config.json`` implies before it is unpacked or parsed
    (see :func:`run_budget`); ``weights.safetensors``'s header (tensor names,
    float32/float64 dtypes, shapes) is checked against the model before any
    tensor is read.  Nothing is unpickled or executed, and the memory used is
    bounded by the config, not by the archive.

    Args:
        data: the uploaded file's content.
        max_bytes: the largest accepted upload.

    Returns:
        The :class:`~ensemble_core.run.Run`.

    Raises:
        PersistenceError: the file is not a valid run export; the message says why.
    """
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise PersistenceError(f"expected the zip file's bytes, got {type(data).__name__}")
    if len(data) > max_bytes:
        raise PersistenceError(f"the file is {len(data) / 2**20:.1f} MB; the limit is {max_bytes / 2**20:.0f} MB")
    if not len(data):
        raise PersistenceError("the file is empty")
    try:
        zf = zipfile.ZipFile(io.BytesIO(data))
    except Exception:  # noqa: BLE001 - zipfile raises many types on malformed input; all mean "not a zip"
        raise PersistenceError("not a zip archive: export a run from Deep Ensemble Lab and upload that .zip") from None
    with zf:
        infos = zf.infolist()
        names = [i.filename for i in infos]
        extra = [i for i in infos if i.filename in EXTRA_FILES]
        infos = [i for i in infos if i.filename not in EXTRA_FILES]
        if len(extra) > len({i.filename for i in extra}):
            raise PersistenceError("the archive lists the same file twice")
        names = [i.filename for i in infos]
        for name in names:
            if name not in RUN_FILES:
                shown = name if len(name) <= 80 else name[:77] + "..."
                raise PersistenceError(f"unexpected file {shown!r} in the archive; a run export holds only "
                                       f"{', '.join(RUN_FILES + EXTRA_FILES)}")
        if len(set(names)) != len(names):
            raise PersistenceError("the archive lists the same file twice")
        if sum(i.file_size for i in infos) > MAX_UNPACKED_BYTES:
            raise PersistenceError(f"the archive unpacks to more than {MAX_UNPACKED_BYTES // 2**20} MB")
        by_name = {i.filename: i for i in infos}

        def read(name: str) -> bytes:
            info = by_name[name]
            if info.flag_bits & 0x1:
                raise PersistenceError(f"{name}: encrypted files are not supported")
            try:
                return zf.read(info)  # never more than the listed file_size (zipfile stops there)
            except Exception as exc:  # noqa: BLE001 - bad CRC, zlib.error, truncation, unsupported method ...
                raise PersistenceError(f"{name}: damaged, cannot be read from the archive "
                                       f"({type(exc).__name__})") from None

        return _run_from_files(_Files("the archive", {i.filename: i.file_size for i in infos}, read))


# ------------------------------------------------------------ budget
#: Largest ``config.json`` read (a config with 500 long column names is well below it).
MAX_CONFIG_BYTES = 1024 * 1024
#: Most optimiser steps (``lr_trace`` entries) an imported run may hold, whatever its config says.
MAX_IMPORT_STEPS = 500_000
#: Most parameters (all members together) an imported run's model may have: 100 MB as float32.
MAX_IMPORT_PARAMETERS = 25_000_000
#: Most input features of a run: a CSV has at most this many columns.
MAX_FEATURES = MAX_CSV_COLUMNS
_BUNDLED_ROWS = 2_000  # the largest bundled set (digits) has 1,797 rows
_CLICK_MARGIN = 1_000  # points a user may add by clicking on the Data page's plot
_MAX_VAL_KEYS = 16  # validation metrics per epoch event (the engine writes fewer than 10)
_BYTES_PER_NUMBER = 40  # a float's repr, its separator and json.dumps(indent=1)'s indentation
_RUN_JSON_TEXT = 4 * 1024 * 1024  # names (features, classes, reasons) and keys on top of the numbers
#: Most inputs a replay's previews predict on (the Train page's grids: 200 points in 1-D, 50 x 50 in 2-D).
MAX_REPLAY_POINTS = 10_000
_MAX_HEADER = 100 * 1024  # a safetensors header: a few dozen tensors' names, dtypes and shapes
_DTYPES = {"F32": ("<f4", 4), "F64": ("<f8", 8)}


@dataclass(frozen=True)
class RunBudget:
    """The most a saved run with a given config can hold: what an import accepts, and what it reads.

    Attributes:
        steps: most ``lr_trace`` entries (optimiser steps over the run).
        steps_per_epoch: most learning rates in one epoch event.
        events: most events in the history.
        trajectories: losses per epoch event (``strategy.members``).
        members: most members (the ensemble size).
        numbers: most numbers ``run.json`` can hold.
        run_json_bytes: largest ``run.json`` accepted.
        replay_numbers: most numbers ``replay.json`` can hold (its float32 arrays are bounded by
            :data:`~ensemble_core.run.MAX_REPLAY_BYTES`, plus the grid and each frame's member list).
        replay_json_bytes: largest ``replay.json`` accepted.
    """

    steps: int
    steps_per_epoch: int
    events: int
    trajectories: int
    members: int
    numbers: int
    run_json_bytes: int
    replay_numbers: int = 0
    replay_json_bytes: int = 0


def run_budget(config: RunConfig) -> RunBudget:
    """What a run trained with ``config`` can hold at most (see :class:`RunBudget`).

    The training rows are bounded by the data spec (synthetic: ``data.n`` plus
    points added by clicking; bundled: the largest set; CSV: the row limit),
    so the steps per epoch and the run's steps are too; the steps are also
    capped at :data:`MAX_IMPORT_STEPS`.
    """
    d, o, s = config.data, config.optim, config.strategy
    rows = {"synthetic": d.n + _CLICK_MARGIN, "bundled": _BUNDLED_ROWS}.get(d.source, MAX_CSV_ROWS)
    spe = min(steps_per_epoch(o.batch_size, rows), MAX_IMPORT_STEPS)
    steps = min(o.epochs * spe, MAX_IMPORT_STEPS)
    events = o.epochs + s.ensemble_size + s.members + 1  # epochs, snapshots, diverged members, done
    numbers = (2 * steps  # lr_trace, and the same learning rates in the epoch events
               + o.epochs * (2 * s.members + _MAX_VAL_KEYS + 4) + 8 * events + 8 * s.ensemble_size
               + 3 * MAX_FEATURES + MAX_CLASSES + 64)
    replay = (MAX_REPLAY_BYTES // 4 + MAX_REPLAY_POINTS * MAX_FEATURES
              + MAX_REPLAY_FRAMES * (s.ensemble_size + 2) + 1024)
    return RunBudget(steps=steps, steps_per_epoch=spe, events=events, trajectories=s.members,
                     members=s.ensemble_size, numbers=numbers,
                     run_json_bytes=_RUN_JSON_TEXT + _BYTES_PER_NUMBER * numbers,
                     replay_numbers=replay, replay_json_bytes=65_536 + _BYTES_PER_NUMBER * replay)


# ------------------------------------------------------------ validation
def _load_json(raw: bytes, name: str) -> Any:
    def no_constants(token: str) -> Any:
        raise ValueError(f"{token} is not allowed")

    try:
        return json.loads(raw.decode("utf-8"), parse_constant=no_constants)
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise PersistenceError(f"{name}: not valid JSON ({exc})") from None


def _get(obj: dict[str, Any], key: str, types: type | tuple[type, ...], where: str, *,
         nullable: bool = False) -> Any:
    if key not in obj:
        raise PersistenceError(f"{where}: missing {key!r}")
    value = obj[key]
    if value is None and nullable:
        return None
    ok = isinstance(value, types) and not (isinstance(value, bool) and bool not in _as_tuple(types))
    if not ok:
        expected = " or ".join(t.__name__ for t in _as_tuple(types))
        raise PersistenceError(f"{where}: {key!r} must be {expected}, got {type(value).__name__}")
    return value


def _as_tuple(types: type | tuple[type, ...]) -> tuple[type, ...]:
    return types if isinstance(types, tuple) else (types,)


_NUM = (int, float)


def _number(obj: dict[str, Any], key: str, where: str) -> float:
    """A finite number (JSON like ``1e400`` parses to infinity and is refused)."""
    try:
        value = float(_get(obj, key, _NUM, where))
    except OverflowError:
        value = math.inf
    if not math.isfinite(value):
        raise PersistenceError(f"{where}: {key!r} must be a finite number")
    return value


def _num_list(value: Any, where: str, *, allow_null: bool = True) -> list[float]:
    if not isinstance(value, list):
        raise PersistenceError(f"{where}: must be a list of numbers, got {type(value).__name__}")
    out = []
    for v in value:
        if v is None and allow_null:
            out.append(math.nan)
        elif isinstance(v, _NUM) and not isinstance(v, bool) and abs(v) <= 1e300:
            out.append(float(v))
        else:
            raise PersistenceError(f"{where}: must contain only finite numbers, found {v!r:.20}")
    return out


def _str_list(value: Any, where: str) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise PersistenceError(f"{where}: must be a list of strings")
    return list(value)


def _member(obj: Any, i: int) -> MemberInfo:
    where = f"run.json: members[{i}]"
    if not isinstance(obj, dict):
        raise PersistenceError(f"{where}: must be an object")
    status = _get(obj, "status", str, where)
    if status not in ("ok", "diverged"):
        raise PersistenceError(f"{where}: status must be 'ok' or 'diverged', got {status!r}")
    info = MemberInfo(index=_get(obj, "index", int, where), trajectory=_get(obj, "trajectory", int, where),
                      snapshot=_get(obj, "snapshot", int, where), seed=_get(obj, "seed", int, where),
                      epoch=_get(obj, "epoch", int, where), status=status,
                      reason=_get(obj, "reason", str, where))
    if info.index != i:
        raise PersistenceError(f"{where}: index must be {i}, got {info.index}")
    return info


def _event(obj: Any, i: int, budget: RunBudget) -> Any:
    where = f"run.json: events[{i}]"
    if not isinstance(obj, dict):
        raise PersistenceError(f"{where}: must be an object")
    kind = _get(obj, "kind", str, where)
    if kind == "epoch":
        val = _get(obj, "val", dict, where)
        acc = _get(obj, "train_acc", list, where, nullable=True)
        loss, lrs = _get(obj, "train_loss", list, where), _get(obj, "lrs", list, where)
        for key, got, most in (("train_loss", len(loss), budget.trajectories),
                               ("train_acc", len(acc or ()), budget.trajectories),
                               ("val", len(val), _MAX_VAL_KEYS), ("lrs", len(lrs), budget.steps_per_epoch)):
            if got > most:
                raise PersistenceError(f"{where}: {key} has {got:,} entries; a run of these settings has at "
                                       f"most {most:,}")
        return EpochEnd(
            epoch=_get(obj, "epoch", int, where), n_epochs=_get(obj, "n_epochs", int, where),
            train_loss=_num_list(loss, f"{where}.train_loss"),
            train_acc=None if acc is None else _num_list(acc, f"{where}.train_acc"),
            val=dict(zip(val, _num_list(list(val.values()), f"{where}.val"))),
            lrs=_num_list(lrs, f"{where}.lrs"),
            elapsed=_number(obj, "elapsed", where))
    if kind == "snapshot":
        return SnapshotTaken(trajectory=_get(obj, "trajectory", int, where),
                             snapshot=_get(obj, "snapshot", int, where),
                             epoch=_get(obj, "epoch", int, where), step=_get(obj, "step", int, where))
    if kind == "diverged":
        return MemberDiverged(trajectory=_get(obj, "trajectory", int, where),
                              epoch=_get(obj, "epoch", int, where), reason=_get(obj, "reason", str, where))
    if kind == "done":
        return Done(epochs_done=_get(obj, "epochs_done", int, where), stopped=_get(obj, "stopped", bool, where),
                    seconds=_number(obj, "seconds", where))
    raise PersistenceError(f"{where}: unknown event kind {kind[:40]!r}")


def _expected_tensors(n_members: int, in_features: int, out_features: int, config: RunConfig
                      ) -> dict[str, tuple[int, ...]]:
    """Name and shape of every tensor of the stacked model (``StackedMLP``'s ``state_dict``)."""
    out: dict[str, tuple[int, ...]] = {}
    for layer, (fan_in, fan_out) in enumerate(layer_sizes(in_features, out_features, config.model)):
        out[f"weights.{layer}"] = (n_members, fan_in, fan_out)
        out[f"biases.{layer}"] = (n_members, 1, fan_out)
    return out


def _is_int_list(value: Any, length: int | None = None) -> bool:
    return (isinstance(value, list) and (length is None or len(value) == length)
            and all(isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in value))


def _read_weights(blob: bytes, expected: dict[str, tuple[int, ...]]) -> dict[str, np.ndarray]:
    """The tensors of a safetensors blob as read-only arrays over ``blob`` (never a pickle).

    The header is parsed here, so every name, dtype (float32/float64), shape and byte range is
    checked against ``expected`` before any tensor is looked at; malformed content is refused.
    """
    name = "weights.safetensors"
    invalid = PersistenceError(f"{name}: not a valid safetensors file")
    if len(blob) < 8:
        raise invalid
    n = int.from_bytes(blob[:8], "little")
    if n > _MAX_HEADER or 8 + n > len(blob):
        raise invalid
    try:
        header = json.loads(blob[8:8 + n].decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise invalid from None
    if not isinstance(header, dict):
        raise invalid
    header.pop("__metadata__", None)
    missing = sorted(set(expected) - set(header))
    extra = sorted(set(header) - set(expected))
    if missing or extra:
        bits = []
        if missing:
            bits.append(f"missing {', '.join(missing[:5])}")
        if extra:
            bits.append(f"unexpected {', '.join(str(e)[:40] for e in extra[:5])}")
        raise PersistenceError(f"{name}: does not match the model ({'; '.join(bits)})")
    data_start, arrays = 8 + n, {}
    for key, shape in expected.items():
        entry = header[key]
        if not isinstance(entry, dict):
            raise invalid
        dtype, got, offsets = entry.get("dtype"), entry.get("shape"), entry.get("data_offsets")
        if dtype not in _DTYPES:
            raise PersistenceError(f"{name}: {key} must hold floating-point numbers (float32 or float64), "
                                   f"got {str(dtype)[:20]}")
        if not _is_int_list(got):
            raise invalid
        if tuple(got) != shape:
            shown = str(tuple(got[:6])) if len(got) <= 6 else f"{len(got)} dimensions"
            raise PersistenceError(f"{name}: {key} has shape {shown}, the model needs {shape}")
        np_dtype, itemsize = _DTYPES[dtype]
        count = math.prod(shape)
        if (not _is_int_list(offsets, 2) or offsets[1] - offsets[0] != count * itemsize
                or data_start + offsets[1] > len(blob)):
            raise invalid
        arrays[key] = np.frombuffer(blob, dtype=np_dtype, count=count, offset=data_start + offsets[0]).reshape(shape)
    return arrays


def _load_weights(model: torch.nn.Module, arrays: dict[str, np.ndarray]) -> None:
    """Copy the checked arrays into the model's parameters (no intermediate tensors are kept)."""
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # "not writable": the arrays are only read
        for key, param in model.state_dict().items():
            param.copy_(torch.from_numpy(arrays[key]))


def _run_from_files(files: _Files) -> Run:
    missing = [n for n in _REQUIRED if n not in files.sizes]
    if missing:
        raise PersistenceError(f"{files.where} is not a saved run: {', '.join(missing)} missing")
    config_text = files.read("config.json", MAX_CONFIG_BYTES, "holding a run's settings")
    try:
        config = RunConfig.from_json(config_text)
    except ConfigError as exc:
        raise PersistenceError(f"config.json: {exc}") from None
    except (TypeError, ValueError, RecursionError) as exc:
        raise PersistenceError(f"config.json: not a valid run configuration ({type(exc).__name__})") from None
    budget = run_budget(config)
    raw = files.read("run.json", budget.run_json_bytes,
                     f"for a run of these settings ({config.optim.epochs:,} epochs, at most "
                     f"{budget.steps:,} optimiser steps and {budget.members} member{'s' if budget.members != 1 else ''})")
    values, most = raw.count(b",") + 1, budget.numbers + 12 * budget.events + 8 * budget.members + 65_536
    if values > most:  # counted before parsing: parsing costs memory per value, not per byte
        raise PersistenceError(f"run.json holds about {values:,} values; a run of these settings has at most "
                               f"{most:,}, so this file was not made by this lab and is not read")
    info = _load_json(raw, "run.json")
    del raw
    if not isinstance(info, dict):
        raise PersistenceError("run.json: must be a JSON object")
    w = "run.json"
    if info.get("format") != FORMAT:
        raise PersistenceError(f"run.json: not a Deep Ensemble Lab run (format {str(info.get('format'))[:40]!r})")
    version = _get(info, "version", int, w)
    if version > FORMAT_VERSION:
        raise PersistenceError(f"run.json: format version {version} is newer than this program "
                               f"(reads up to {FORMAT_VERSION})")
    task = _get(info, "task", str, w)
    if task not in ("regression", "classification"):
        raise PersistenceError(f"run.json: task must be 'regression' or 'classification', got {task[:40]!r}")
    shape = _get(info, "model", dict, w)
    n_members = _get(shape, "n_members", int, f"{w}: model")
    in_features = _get(shape, "in_features", int, f"{w}: model")
    out_features = _get(shape, "out_features", int, f"{w}: model")
    raw_members, raw_events = _get(info, "members", list, w), _get(info, "events", list, w)
    raw_trace = _get(info, "lr_trace", list, w)
    # sizes against the config before anything is converted or built
    if not 1 <= n_members <= budget.members:
        raise PersistenceError(f"run.json: {n_members} members, but the config trains at most "
                               f"{config.strategy.ensemble_size}")
    if len(raw_members) != n_members:
        raise PersistenceError(f"run.json: {len(raw_members)} members listed but the model holds {n_members}")
    if not 1 <= in_features <= MAX_FEATURES:
        raise PersistenceError(f"run.json: {in_features} input features; a run has 1 to {MAX_FEATURES}")
    if len(raw_trace) > budget.steps:
        raise PersistenceError(f"run.json: lr_trace has {len(raw_trace):,} entries; a run of these settings "
                               f"takes at most {budget.steps:,} optimiser steps")
    if len(raw_events) > budget.events:
        raise PersistenceError(f"run.json: {len(raw_events):,} events; a run of these settings has at most "
                               f"{budget.events:,}")
    members = [_member(m, i) for i, m in enumerate(raw_members)]
    x_mean = np.asarray(_num_list(_get(info, "x_mean", list, w), f"{w}: x_mean", allow_null=False))
    x_std = np.asarray(_num_list(_get(info, "x_std", list, w), f"{w}: x_std", allow_null=False))
    n_classes = _get(info, "n_classes", int, w)
    class_names = _get(info, "class_names", list, w, nullable=True)
    if len(x_mean) != in_features or len(x_std) != in_features:
        raise PersistenceError(f"run.json: scaling has {len(x_mean)}/{len(x_std)} entries for {in_features} features")
    if np.any(x_std <= 0):
        raise PersistenceError("run.json: x_std must be positive")
    try:
        expected_out = output_size(task, config.loss, n_classes) if n_classes <= MAX_CLASSES else None
    except ValueError:  # fewer than 2 classes: no run of ours has that
        expected_out = None
    if out_features != expected_out:
        raise PersistenceError(f"run.json: {out_features} outputs per member do not fit a {task} run "
                               f"with loss {config.loss.kind!r} and {n_classes} classes")
    y_std = _number(info, "y_std", w)
    if not (math.isfinite(y_std) and y_std > 0):
        raise PersistenceError("run.json: y_std must be positive")
    if task == "classification" and class_names is not None and len(class_names) != n_classes:
        raise PersistenceError(f"run.json: {len(class_names)} class names for {n_classes} classes")
    history = [_event(e, i, budget) for i, e in enumerate(raw_events)]
    n_params = n_members * parameter_count(in_features, out_features, config.model)
    if n_params > MAX_IMPORT_PARAMETERS:
        raise PersistenceError(f"run.json: the model has {n_params:,} parameters; at most "
                               f"{MAX_IMPORT_PARAMETERS:,} can be imported here")
    expected = _expected_tensors(n_members, in_features, out_features, config)
    blob = files.read("weights.safetensors", 8 + _MAX_HEADER + 8 * n_params,
                      f"for the model in run.json ({n_members} members, {n_params:,} parameters)")
    arrays = _read_weights(blob, expected)
    try:
        model = StackedMLP(n_members, in_features, out_features, config.model)
    except (ValueError, RuntimeError) as exc:
        raise PersistenceError(f"run.json: cannot rebuild the model ({exc})") from None
    _load_weights(model, arrays)
    del arrays, blob
    model.eval()
    replay_x, replay = (_read_replay(files, budget, task, n_classes, config)
                        if "replay.json" in files.sizes else (None, []))
    return Run(
        config=config, task=task, model=model, members=members, history=history,
        lr_trace=np.asarray(_num_list(raw_trace, f"{w}: lr_trace"), dtype=np.float64),
        epochs_done=_get(info, "epochs_done", int, w), stopped=_get(info, "stopped", bool, w),
        seconds=_number(info, "seconds", w), x_mean=x_mean, x_std=x_std,
        y_mean=_number(info, "y_mean", w), y_std=y_std, n_classes=n_classes,
        feature_names=_str_list(_get(info, "feature_names", list, w), f"{w}: feature_names"),
        target_name=_get(info, "target_name", str, w),
        class_names=None if class_names is None else _str_list(class_names, f"{w}: class_names"),
        replay=replay, replay_x=replay_x,
    )


def _f32_array(value: Any, where: str, shape: tuple[int, ...], dtype: Any = np.float32) -> np.ndarray:
    """A nested list of numbers (``null``: NaN) of exactly ``shape``, as float32 (or ``dtype``)."""
    def flat(v: Any, depth: int, out: list[float]) -> None:
        if not isinstance(v, list) or len(v) != shape[depth]:
            raise PersistenceError(f"{where}: must have shape {shape}")
        if depth == len(shape) - 1:
            out.extend(_num_list(v, where))
        else:
            for row in v:
                flat(row, depth + 1, out)

    out: list[float] = []
    flat(value, 0, out)
    return np.asarray(out, dtype=dtype).reshape(shape)


def _read_replay(files: _Files, budget: RunBudget, task: str, n_classes: int, config: RunConfig
                 ) -> tuple[np.ndarray, list[Preview]]:
    """``replay.json``'s grid and frames, every size checked against the config before it is kept."""
    w = "replay.json"
    raw = files.read(w, budget.replay_json_bytes, "for a run's recorded previews")
    values = raw.count(b",") + 1
    if values > budget.replay_numbers:
        raise PersistenceError(f"{w} holds about {values:,} values; a run's replay has at most "
                               f"{budget.replay_numbers:,}, so this file was not made by this lab and is not read")
    info = _load_json(raw, w)
    del raw
    if not isinstance(info, dict) or info.get("format") != FORMAT:
        raise PersistenceError(f"{w}: not a Deep Ensemble Lab replay")
    if _get(info, "task", str, w) != task:
        raise PersistenceError(f"{w}: its task does not match run.json's")
    raw_x, raw_frames = _get(info, "x", list, w), _get(info, "frames", list, w)
    n = len(raw_x)
    if not 1 <= n <= MAX_REPLAY_POINTS or not isinstance(raw_x[0], list) or not 1 <= len(raw_x[0]) <= MAX_FEATURES:
        raise PersistenceError(f"{w}: x must hold 1 to {MAX_REPLAY_POINTS:,} inputs")
    x = _f32_array(raw_x, f"{w}: x", (n, len(raw_x[0])), np.float64)
    if len(raw_frames) > MAX_REPLAY_FRAMES:
        raise PersistenceError(f"{w}: {len(raw_frames):,} frames; a replay has at most {MAX_REPLAY_FRAMES}")
    frames, floats = [], 0
    for i, obj in enumerate(raw_frames):
        where = f"{w}: frames[{i}]"
        if not isinstance(obj, dict):
            raise PersistenceError(f"{where}: must be an object")
        epoch = _get(obj, "epoch", int, where)
        members = _get(obj, "members", list, where)
        if not 0 <= epoch <= config.optim.epochs or not 1 <= len(members) <= budget.members or not all(
                isinstance(m, int) and not isinstance(m, bool) and 0 <= m < budget.members for m in members):
            raise PersistenceError(f"{where}: epoch or members out of range for this run")
        vec = {k: _f32_array(_get(obj, k, list, where), f"{where}.{k}", (n,))
               for k in ("aleatoric", "epistemic", "total")}
        if task == "regression":
            rows = min(len(members), MAX_REPLAY_MEMBERS)
            mm = _get(obj, "member_means", list, where)
            rows = len(mm) if len(mm) <= rows else -1
            if rows < 0:
                raise PersistenceError(f"{where}: more member curves than its members")
            pred: Any = RegressionPrediction(
                mean=_f32_array(_get(obj, "mean", list, where), f"{where}.mean", (n,)), **vec,
                member_means=_f32_array(mm, f"{where}.member_means", (rows, n)),
                member_vars=_f32_array(_get(obj, "member_vars", list, where), f"{where}.member_vars", (rows, n)),
                members=list(members))
            floats += (4 + 2 * rows) * n
        else:
            if not 2 <= n_classes <= MAX_CLASSES:
                raise PersistenceError(f"{where}: a classification replay needs the run's classes")
            probs = _f32_array(_get(obj, "probs", list, where), f"{where}.probs", (n, n_classes))
            pred = ClassificationPrediction(probs=probs, **vec, member_probs=np.zeros((0, n, n_classes), np.float32),
                                            members=list(members))
            floats += (3 + n_classes) * n
        if 4 * floats > MAX_REPLAY_BYTES:
            raise PersistenceError(f"{w}: its frames exceed {MAX_REPLAY_BYTES // 2**20} MB")
        frames.append(Preview(epoch=epoch, prediction=pred))
    return x, frames
