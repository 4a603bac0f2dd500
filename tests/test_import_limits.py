"""Bounded imports: sizes are checked against the config before anything is parsed, with bounded memory.

The two hostile zips of ``attack_zips`` cost 2.6-2.9 GB and 17-47 s on the old import
(``benchmarks/bench_import_memory.py``); here they are refused with a message, in milliseconds,
within a few MB.
"""

from __future__ import annotations

import io
import json
import struct
import sys
import tracemalloc
import zipfile
from pathlib import Path

import attack_zips
import numpy as np
import pytest
from test_persistence import make_run

from ensemble_core.config import RunConfig
from ensemble_core.persistence import (
    MAX_IMPORT_STEPS,
    PersistenceError,
    export_zip,
    import_zip,
    load_run,
    run_budget,
    run_files,
    save_run,
)

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def lr_trace_zip() -> bytes:
    return attack_zips.huge_lr_trace_zip()


@pytest.fixture(scope="module")
def float8_zip() -> bytes:
    return attack_zips.float8_model_zip()


def _peak_mb(fn) -> float:
    tracemalloc.start()
    try:
        fn()
    finally:
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    return peak / 2**20


def test_attack_zips_are_small_on_disk(lr_trace_zip, float8_zip):
    assert len(lr_trace_zip) < 400_000 and len(float8_zip) < 400_000


def test_huge_lr_trace_is_refused_before_parsing(lr_trace_zip):
    def attempt():
        with pytest.raises(PersistenceError, match=r"run.json is 100.0 MB; for a run of these settings \(100 epochs, "
                                                   r"at most 3,200 optimiser steps and 1 member\) it can be at most"):
            import_zip(lr_trace_zip)

    assert _peak_mb(attempt) < 20  # the 100 MB file is never unpacked


def test_float8_model_is_refused_before_it_is_built(float8_zip):
    def attempt():
        with pytest.raises(PersistenceError, match="294,051,920 parameters; at most 25,000,000"):
            import_zip(float8_zip)

    assert _peak_mb(attempt) < 20


@pytest.mark.slow
def test_server_memory_of_the_attack_zips_in_a_fresh_process(tmp_path, lr_trace_zip, float8_zip):
    sys.path.insert(0, str(ROOT / "benchmarks"))
    from bench_import_memory import run_child

    for blob in (lr_trace_zip, float8_zip):
        path = tmp_path / "attack.zip"
        path.write_bytes(blob)
        report = run_child(path, None, timeout=120)
        assert report["outcome"].startswith("PersistenceError"), report
        assert report["peak_growth_mb"] < 300 and report["seconds"] < 2, report


def _zip(files: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, content in files.items():
            zf.writestr(name, content)
    return buf.getvalue()


def _with(run_json_edits: dict | None = None, **files: bytes) -> bytes:
    good = run_files(make_run())
    if run_json_edits:
        info = json.loads(good["run.json"])
        info.update(run_json_edits)
        good["run.json"] = json.dumps(info).encode()
    return _zip({**good, **files})


def test_dense_run_json_under_the_byte_cap_is_refused_by_its_value_count():
    # 4 MB of zeros fits the byte cap of a small config (text allowance) but holds 2 million values
    budget = run_budget(make_run().config)
    zeros = "[" + "0," * (2 * 2**20) + "0]"
    info = json.loads(run_files(make_run())["run.json"])
    text = json.dumps({**info, "lr_trace": "X"}).replace('"X"', zeros).encode()
    assert len(text) < budget.run_json_bytes
    with pytest.raises(PersistenceError, match=r"run.json holds about 2,097,\d+ values; a run of these settings "
                                               r"has at most"):
        import_zip(_with(**{"run.json": text}))


@pytest.mark.parametrize("edits,match", [
    ({"lr_trace": [0.01] * 5000}, "lr_trace has 5,000 entries; a run of these settings takes at most"),
    ({"events": [{"kind": "done", "epochs_done": 1, "stopped": False, "seconds": 1.0}] * 200},
     "200 events; a run of these settings has at most"),
    ({"events": [{"kind": "epoch", "epoch": 1, "n_epochs": 2, "train_loss": [0.1] * 50, "train_acc": None,
                  "val": {}, "lrs": [0.1], "elapsed": 0.1}]}, r"events\[0\]: train_loss has 50 entries"),
    ({"events": [{"kind": "epoch", "epoch": 1, "n_epochs": 2, "train_loss": [0.1], "train_acc": None,
                  "val": {}, "lrs": [0.1] * 2000, "elapsed": 0.1}]}, r"events\[0\]: lrs has 2,000 entries"),
    ({"model": {"n_members": 4, "in_features": 2, "out_features": 2}}, "4 members, but the config trains at most 3"),
    ({"n_classes": 10**6, "task": "classification", "model": {"n_members": 3, "in_features": 2,
                                                                "out_features": 10**6}},
     "outputs per member do not fit"),
])
def test_declared_lengths_are_checked_against_the_config(edits, match):
    with pytest.raises(PersistenceError, match=match):
        import_zip(_with(edits))


def _safetensors(header: dict, data: bytes) -> bytes:
    head = json.dumps(header).encode()
    return struct.pack("<Q", len(head)) + head + data


def test_weights_header_is_checked_before_any_tensor_is_read():
    run = make_run()
    state = {k: v.numpy() for k, v in run.model.state_dict().items()}
    header, offset, data = {}, 0, b""
    for key, arr in state.items():
        header[key] = {"dtype": "F16", "shape": list(arr.shape), "data_offsets": [offset, offset + arr.size * 2]}
        data += arr.astype(np.float16).tobytes()
        offset += arr.size * 2
    with pytest.raises(PersistenceError, match=r"weights.0 must hold floating-point numbers \(float32 or float64\), "
                                               "got F16"):
        import_zip(_with(**{"weights.safetensors": _safetensors(header, data)}))
    # offsets that point outside the file, or overlap a wrong size
    header = {k: {"dtype": "F32", "shape": list(a.shape), "data_offsets": [0, a.size * 4 + 4]} for k, a in state.items()}
    with pytest.raises(PersistenceError, match="not a valid safetensors file"):
        import_zip(_with(**{"weights.safetensors": _safetensors(header, b"\0" * 64)}))
    # a weights file far larger than the model it should hold is not even unpacked
    with pytest.raises(PersistenceError, match="weights.safetensors is .*for the model in run.json"):
        import_zip(_with(**{"weights.safetensors": b"\0" * 10**6}))


def test_float64_weights_load_as_the_same_model():
    run = make_run()
    state = {k: v.numpy().astype(np.float64) for k, v in run.model.state_dict().items()}
    header, offset, data = {"__metadata__": {"a": "b"}}, 0, b""
    for key, arr in state.items():
        header[key] = {"dtype": "F64", "shape": list(arr.shape), "data_offsets": [offset, offset + arr.nbytes]}
        data += arr.tobytes()
        offset += arr.nbytes
    got = import_zip(_with(**{"weights.safetensors": _safetensors(header, data)}))
    for key, value in got.model.state_dict().items():
        np.testing.assert_array_equal(value.numpy(), run.model.state_dict()[key].numpy())


def test_oversized_config_json_is_not_read():
    with pytest.raises(PersistenceError, match="config.json is 2.0 MB; holding a run's settings it can be at most 1.0 MB"):
        import_zip(_with(**{"config.json": b" " * (2 * 2**20)}))


def test_load_run_applies_the_same_limits(tmp_path):
    save_run(make_run(), tmp_path)
    (tmp_path / "run.json").write_bytes(b"[" + b"0," * (5 * 2**20) + b"0]")
    with pytest.raises(PersistenceError, match="run.json is 10.0 MB"):
        load_run(tmp_path)


def test_budget_follows_the_config():
    default = run_budget(RunConfig())
    assert default.steps == 100 * 32  # 20 points + clicks, batch 32: at most 32 steps an epoch
    csv = run_budget(RunConfig().replace(**{"data.source": "csv", "data.name": "x.csv", "optim.batch_size": 1,
                                            "optim.epochs": 5000}))
    assert csv.steps == MAX_IMPORT_STEPS  # capped, whatever the config implies
    assert csv.run_json_bytes < 100 * 2**20


def test_a_real_training_run_round_trips(cubic):
    from ensemble_core.training import train

    cfg = RunConfig().replace(**{"strategy.members": 2, "optim.epochs": 30, "optim.batch_size": 4,
                                 "model.width": 16})
    run = train(cfg, cubic)
    back = import_zip(export_zip(run, cubic))
    np.testing.assert_array_equal(back.lr_trace, run.lr_trace)
    assert len(back.history) == len([e for e in run.history if type(e).__name__ != "Preview"])
