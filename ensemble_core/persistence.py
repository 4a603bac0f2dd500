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
    one row per epoch and trajectory (for spreadsheets; not read back).
``metrics.json``
    test-set metrics, written when a dataset is given (not read back).
``weights.safetensors``
    the stacked model's ``state_dict`` in the safetensors format.

Loading rebuilds :class:`~ensemble_core.models.StackedMLP` from ``run.json`` and
the config, then loads the weights with safetensors after checking every key
and shape.  Imported zips are checked for size, member names (exactly the
files above, no folders, no ``..``), encryption and JSON types; anything wrong
raises :class:`PersistenceError` with a message for a human.
"""

from __future__ import annotations

import csv
import io
import json
import math
import zipfile
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .config import ConfigError, RunConfig
from .models import StackedMLP
from .predict import evaluate_run
from .run import Done, EpochEnd, MemberDiverged, MemberInfo, Run, SnapshotTaken
from .shapes import output_size, parameter_count

__all__ = [
    "PersistenceError",
    "FORMAT",
    "FORMAT_VERSION",
    "RUN_FILES",
    "MAX_IMPORT_BYTES",
    "MAX_UNPACKED_BYTES",
    "run_files",
    "save_run",
    "load_run",
    "export_zip",
    "import_zip",
]

FORMAT = "deep-ensemble-lab/run"
FORMAT_VERSION = 1
#: Every file a saved run may contain; the first three are required.
RUN_FILES = ("config.json", "run.json", "weights.safetensors", "history.csv", "metrics.json")
_REQUIRED = RUN_FILES[:3]
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
    writer.writerow(["epoch", "trajectory", "train_loss", "train_acc", *[f"val_{k}" for k in val_keys],
                     "lr_first", "lr_last", "steps", "elapsed"])

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
            elif name == "metrics.json" and target.exists():
                target.unlink()  # stale metrics of another run must not survive
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
    files: dict[str, bytes] = {}
    total = 0
    for name in RUN_FILES:
        f = path / name
        if not f.is_file():
            continue
        size = f.stat().st_size
        total += size
        if total > MAX_UNPACKED_BYTES:
            raise PersistenceError(f"{name}: the run's files exceed {MAX_UNPACKED_BYTES // 2**20} MB")
        files[name] = f.read_bytes()
    return _run_from_files(files, where=str(path))


def import_zip(data: bytes, *, max_bytes: int = MAX_IMPORT_BYTES) -> Run:
    """Load a run from the bytes of a zip made by :func:`export_zip`.

    Only the file names of :data:`RUN_FILES` are allowed (no folders, no path
    tricks); sizes are bounded before anything is unpacked; weights are read
    with safetensors and JSON is type-checked.  Nothing is unpickled or executed.

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
    data = bytes(data)
    if len(data) > max_bytes:
        raise PersistenceError(f"the file is {len(data) / 2**20:.1f} MB; the limit is {max_bytes / 2**20:.0f} MB")
    if not data:
        raise PersistenceError("the file is empty")
    try:
        zf = zipfile.ZipFile(io.BytesIO(data))
    except Exception:  # noqa: BLE001 - zipfile raises many types on malformed input; all mean "not a zip"
        raise PersistenceError("not a zip archive: export a run from Deep Ensemble Lab and upload that .zip") from None
    with zf:
        infos = zf.infolist()
        names = [i.filename for i in infos]
        for name in names:
            if name not in RUN_FILES:
                shown = name if len(name) <= 80 else name[:77] + "..."
                raise PersistenceError(f"unexpected file {shown!r} in the archive; a run export holds only "
                                       f"{', '.join(RUN_FILES)}")
        if len(set(names)) != len(names):
            raise PersistenceError("the archive lists the same file twice")
        if sum(i.file_size for i in infos) > MAX_UNPACKED_BYTES:
            raise PersistenceError(f"the archive unpacks to more than {MAX_UNPACKED_BYTES // 2**20} MB")
        files: dict[str, bytes] = {}
        for info in infos:
            if info.flag_bits & 0x1:
                raise PersistenceError(f"{info.filename}: encrypted files are not supported")
            try:
                files[info.filename] = zf.read(info)
            except Exception as exc:  # noqa: BLE001 - bad CRC, zlib.error, truncation, unsupported method ...
                raise PersistenceError(f"{info.filename}: damaged, cannot be read from the archive "
                                       f"({type(exc).__name__})") from None
    return _run_from_files(files, where="the archive")


# ------------------------------------------------------------ validation
def _load_json(files: dict[str, bytes], name: str) -> Any:
    def no_constants(token: str) -> Any:
        raise ValueError(f"{token} is not allowed")

    try:
        return json.loads(files[name].decode("utf-8"), parse_constant=no_constants)
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


def _event(obj: Any, i: int) -> Any:
    where = f"run.json: events[{i}]"
    if not isinstance(obj, dict):
        raise PersistenceError(f"{where}: must be an object")
    kind = _get(obj, "kind", str, where)
    if kind == "epoch":
        val = _get(obj, "val", dict, where)
        acc = _get(obj, "train_acc", list, where, nullable=True)
        return EpochEnd(
            epoch=_get(obj, "epoch", int, where), n_epochs=_get(obj, "n_epochs", int, where),
            train_loss=_num_list(_get(obj, "train_loss", list, where), f"{where}.train_loss"),
            train_acc=None if acc is None else _num_list(acc, f"{where}.train_acc"),
            val=dict(zip(val, _num_list(list(val.values()), f"{where}.val"))),
            lrs=_num_list(_get(obj, "lrs", list, where), f"{where}.lrs"),
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
    raise PersistenceError(f"{where}: unknown event kind {kind!r}")


def _read_weights(blob: bytes) -> dict[str, torch.Tensor]:
    """Parse a safetensors blob (never a pickle); any malformed content is refused."""
    from safetensors.torch import load

    try:
        return load(blob)
    except Exception as exc:  # safetensors raises its own error types for any malformed header
        raise PersistenceError(f"weights.safetensors: not a valid safetensors file ({type(exc).__name__})") from None


def _load_weights(model: torch.nn.Module, state: dict[str, torch.Tensor]) -> None:
    expected = model.state_dict()
    missing = sorted(set(expected) - set(state))
    extra = sorted(set(state) - set(expected))
    if missing or extra:
        bits = []
        if missing:
            bits.append(f"missing {', '.join(missing[:5])}")
        if extra:
            bits.append(f"unexpected {', '.join(extra[:5])}")
        raise PersistenceError(f"weights.safetensors: does not match the model ({'; '.join(bits)})")
    for key, ref in expected.items():
        got = state[key]
        if tuple(got.shape) != tuple(ref.shape):
            raise PersistenceError(f"weights.safetensors: {key} has shape {tuple(got.shape)}, "
                                   f"the model needs {tuple(ref.shape)}")
        if not got.is_floating_point():
            raise PersistenceError(f"weights.safetensors: {key} must hold floating-point numbers, got {got.dtype}")
        state[key] = got.to(ref.dtype)
    model.load_state_dict(state, strict=True)


def _run_from_files(files: dict[str, bytes], where: str) -> Run:
    missing = [n for n in _REQUIRED if n not in files]
    if missing:
        raise PersistenceError(f"{where} is not a saved run: {', '.join(missing)} missing")
    try:
        config = RunConfig.from_json(files["config.json"])
    except ConfigError as exc:
        raise PersistenceError(f"config.json: {exc}") from None
    except (TypeError, ValueError, RecursionError) as exc:
        raise PersistenceError(f"config.json: not a valid run configuration ({type(exc).__name__})") from None
    info = _load_json(files, "run.json")
    if not isinstance(info, dict):
        raise PersistenceError("run.json: must be a JSON object")
    w = "run.json"
    if info.get("format") != FORMAT:
        raise PersistenceError(f"run.json: not a Deep Ensemble Lab run (format {info.get('format')!r})")
    version = _get(info, "version", int, w)
    if version > FORMAT_VERSION:
        raise PersistenceError(f"run.json: format version {version} is newer than this program "
                               f"(reads up to {FORMAT_VERSION})")
    task = _get(info, "task", str, w)
    if task not in ("regression", "classification"):
        raise PersistenceError(f"run.json: task must be 'regression' or 'classification', got {task!r}")
    shape = _get(info, "model", dict, w)
    n_members = _get(shape, "n_members", int, f"{w}: model")
    in_features = _get(shape, "in_features", int, f"{w}: model")
    out_features = _get(shape, "out_features", int, f"{w}: model")
    members = [_member(m, i) for i, m in enumerate(_get(info, "members", list, w))]
    x_mean = np.asarray(_num_list(_get(info, "x_mean", list, w), f"{w}: x_mean", allow_null=False))
    x_std = np.asarray(_num_list(_get(info, "x_std", list, w), f"{w}: x_std", allow_null=False))
    n_classes = _get(info, "n_classes", int, w)
    class_names = _get(info, "class_names", list, w, nullable=True)
    # consistency between the pieces
    if not 1 <= n_members <= 1000 or len(members) != n_members:
        raise PersistenceError(f"run.json: {len(members)} members listed but the model holds {n_members}")
    if not 1 <= in_features <= 100_000 or len(x_mean) != in_features or len(x_std) != in_features:
        raise PersistenceError(f"run.json: scaling has {len(x_mean)}/{len(x_std)} entries for {in_features} features")
    if np.any(x_std <= 0):
        raise PersistenceError("run.json: x_std must be positive")
    try:
        expected_out = output_size(task, config.loss, n_classes)
    except ValueError:  # fewer than 2 classes: no run of ours has that
        expected_out = None
    if out_features != expected_out:
        raise PersistenceError(f"run.json: {out_features} outputs per member do not fit a {task} run "
                               f"with loss {config.loss.kind!r} and {n_classes} classes")
    y_std = _number(info, "y_std", w)
    if not (math.isfinite(y_std) and y_std > 0):
        raise PersistenceError("run.json: y_std must be positive")
    if n_members > config.strategy.ensemble_size:
        raise PersistenceError(f"run.json: {n_members} members, but the config trains at most "
                               f"{config.strategy.ensemble_size}")
    if task == "classification" and class_names is not None and len(class_names) != n_classes:
        raise PersistenceError(f"run.json: {len(class_names)} class names for {n_classes} classes")
    state = _read_weights(files["weights.safetensors"])
    n_params = n_members * parameter_count(in_features, out_features, config.model)
    if n_params > sum(t.numel() for t in state.values()):
        # checked before the model is built, so a forged run.json cannot make us allocate a huge model
        raise PersistenceError("weights.safetensors: holds fewer numbers than the model described in run.json")
    try:
        model = StackedMLP(n_members, in_features, out_features, config.model)
    except (ValueError, RuntimeError) as exc:
        raise PersistenceError(f"run.json: cannot rebuild the model ({exc})") from None
    _load_weights(model, state)
    model.eval()
    return Run(
        config=config, task=task, model=model, members=members,
        history=[_event(e, i) for i, e in enumerate(_get(info, "events", list, w))],
        lr_trace=np.asarray(_num_list(_get(info, "lr_trace", list, w), f"{w}: lr_trace"), dtype=np.float64),
        epochs_done=_get(info, "epochs_done", int, w), stopped=_get(info, "stopped", bool, w),
        seconds=_number(info, "seconds", w), x_mean=x_mean, x_std=x_std,
        y_mean=_number(info, "y_mean", w), y_std=y_std, n_classes=n_classes,
        feature_names=_str_list(_get(info, "feature_names", list, w), f"{w}: feature_names"),
        target_name=_get(info, "target_name", str, w),
        class_names=None if class_names is None else _str_list(class_names, f"{w}: class_names"),
    )
