"""Two hostile run zips, small on disk, that cost gigabytes to import on the old code.

Both are written in streamed chunks, so building them costs a few MB:

- :func:`huge_lr_trace_zip`: a valid run of the default config whose ``run.json`` holds a
  100 MB ``lr_trace`` of zeros (a ~150 KB zip; the old import took ~3 GB and 15 s).
- :func:`float8_model_zip`: a valid config for a 40-member, 8 x 1024 model whose
  ``weights.safetensors`` declares float8 tensors of the right shapes (a ~300 KB zip; the
  old import built the model and took ~2.5 GB).

A module of its own: test files import it by name (tests/ is on ``sys.path``).
"""

from __future__ import annotations

import io
import json
import struct
import zipfile

from ensemble_core.config import RunConfig
from ensemble_core.persistence import FORMAT, FORMAT_VERSION
from ensemble_core.shapes import layer_sizes

_CHUNK = 1 << 20


def _run_json(config: RunConfig, n_members: int, in_features: int, out_features: int) -> dict:
    return {
        "format": FORMAT, "version": FORMAT_VERSION, "task": "regression",
        "model": {"n_members": n_members, "in_features": in_features, "out_features": out_features},
        "members": [{"index": i, "trajectory": i, "snapshot": 0, "seed": i, "epoch": 1, "status": "ok",
                     "reason": ""} for i in range(n_members)],
        "x_mean": [0.0] * in_features, "x_std": [1.0] * in_features, "y_mean": 0.0, "y_std": 1.0,
        "n_classes": 0, "feature_names": [f"x{i}" for i in range(in_features)], "target_name": "y",
        "class_names": None, "lr_trace": [], "epochs_done": 1, "stopped": False, "seconds": 1.0,
        "events": [],
    }


def _write_streamed(zf: zipfile.ZipFile, name: str, head: bytes, filler: bytes, total: int, tail: bytes) -> None:
    """Write ``head + filler * k + tail`` (``total`` filler bytes) without holding it in memory."""
    info = zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0))
    info.compress_type = zipfile.ZIP_DEFLATED
    with zf.open(info, "w", force_zip64=True) as f:
        f.write(head)
        block = filler * (_CHUNK // len(filler))
        left = total
        while left > 0:
            part = block[:left]
            f.write(part)
            left -= len(part)
        f.write(tail)


def _deflate() -> dict:
    return {"compression": zipfile.ZIP_DEFLATED, "compresslevel": 9}


def huge_lr_trace_zip(trace_mb: int = 100) -> bytes:
    """The default config, one tiny model, and a ``run.json`` whose ``lr_trace`` is ``trace_mb`` MB of zeros."""
    import numpy as np
    from safetensors.numpy import save

    config = RunConfig().replace(**{"strategy.members": 1})
    out_features = 2
    info = _run_json(config, 1, 1, out_features)
    weights = {}
    for layer, (fi, fo) in enumerate(layer_sizes(1, out_features, config.model)):
        weights[f"weights.{layer}"] = np.zeros((1, fi, fo), np.float32)
        weights[f"biases.{layer}"] = np.zeros((1, 1, fo), np.float32)
    text = json.dumps(info)
    head, tail = text.split('"lr_trace": []')
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", **_deflate()) as zf:
        zf.writestr("config.json", config.to_json())
        _write_streamed(zf, "run.json", (head + '"lr_trace": [').encode(), b"0,", trace_mb * 2**20,
                        b"0]" + tail.encode())
        zf.writestr("weights.safetensors", save(weights))
    return buf.getvalue()


def float8_model_zip() -> bytes:
    """A valid config and ``run.json`` for 40 members of 8 x 1024 units, with float8 weights of those shapes."""
    config = RunConfig().replace(**{"strategy.kind": "snapshot", "strategy.members": 8, "strategy.snapshots": 5,
                                    "optim.schedule": "cyclic", "model.width": 1024, "model.hidden_layers": 8})
    n_members, out_features = config.strategy.ensemble_size, 2
    header, offset = {}, 0
    for layer, (fi, fo) in enumerate(layer_sizes(1, out_features, config.model)):
        for key, shape in ((f"weights.{layer}", [n_members, fi, fo]), (f"biases.{layer}", [n_members, 1, fo])):
            size = shape[0] * shape[1] * shape[2]
            header[key] = {"dtype": "F8_E4M3", "shape": shape, "data_offsets": [offset, offset + size]}
            offset += size
    head = json.dumps(header).encode()
    head += b" " * (-len(head) % 8)
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", **_deflate()) as zf:
        zf.writestr("config.json", config.to_json())
        zf.writestr("run.json", json.dumps(_run_json(config, n_members, 1, out_features)))
        _write_streamed(zf, "weights.safetensors", struct.pack("<Q", len(head)) + head, b"\0", offset, b"")
    return buf.getvalue()
