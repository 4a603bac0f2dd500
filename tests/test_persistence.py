"""save/load and export/import round-trips; tampered, garbage and pickled files are refused."""

from __future__ import annotations

import io
import json
import math
import pickle
import zipfile

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from ensemble_core.config import RunConfig
from ensemble_core.models import StackedMLP
from ensemble_core.persistence import (
    RUN_FILES,
    PersistenceError,
    export_zip,
    import_zip,
    load_run,
    run_files,
    save_run,
)
from ensemble_core.predict import predict
from ensemble_core.run import Done, EpochEnd, MemberDiverged, MemberInfo, Preview, Run, SnapshotTaken


def make_run(task: str = "regression", loss: str = "nll", M: int = 3, d: int = 2) -> Run:
    cfg = RunConfig().replace(**{"strategy.members": M, "loss.kind": loss, "model.width": 8,
                                 "model.hidden_layers": 1, "optim.epochs": 2})
    out = 3 if task == "classification" else (1 if loss == "mse" else 2)
    torch.manual_seed(1)
    model = StackedMLP(M, d, out, cfg.model)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn_like(p) * 0.3)  # members differ from the default seeded init
    model.eval()
    members = [MemberInfo(i, i, 0, i, 2, "diverged" if i == M - 1 else "ok", "loss was nan" if i == M - 1 else "")
               for i in range(M)]
    history = [
        EpochEnd(1, 2, [0.5, 0.4, 0.7], None, {"nll": 1.2, "rmse": 0.9}, [0.01, 0.01], 0.1),
        Preview(1, object()),
        MemberDiverged(M - 1, 2, "loss was nan"),
        SnapshotTaken(0, 0, 2, 4),
        EpochEnd(2, 2, [0.3, 0.2, math.nan], None, {"nll": 1.0, "rmse": 0.8}, [0.01, 0.005], 0.2),
        Done(2, False, 0.25),
    ]
    return Run(config=cfg, task=task, model=model, members=members, history=history,
               lr_trace=np.array([0.01, 0.01, 0.01, 0.005]), epochs_done=2, stopped=False, seconds=0.25,
               x_mean=np.array([1.0, -1.0][:d]), x_std=np.array([2.0, 0.5][:d]), y_mean=3.0, y_std=2.0,
               n_classes=3 if task == "classification" else 0, feature_names=["a", "b"][:d], target_name="t",
               class_names=["x", "y", "z"] if task == "classification" else None)


X = np.random.default_rng(0).normal(size=(7, 2))


def _same_run(a: Run, b: Run) -> None:
    pa, pb = predict(a, X), predict(b, X)
    for field in ("member_means", "member_vars", "mean", "total") if a.task == "regression" else ("member_probs",):
        np.testing.assert_array_equal(getattr(pa, field), getattr(pb, field))
    assert b.config == a.config and b.members == a.members and b.task == a.task
    np.testing.assert_array_equal(b.lr_trace, a.lr_trace)
    np.testing.assert_array_equal(b.x_mean, a.x_mean)
    assert (b.y_mean, b.y_std, b.epochs_done, b.stopped, b.seconds) == (a.y_mean, a.y_std, 2, False, 0.25)
    assert b.feature_names == a.feature_names and b.class_names == a.class_names and b.healthy == a.healthy
    assert [type(e).__name__ for e in b.history] == ["EpochEnd", "MemberDiverged", "SnapshotTaken",
                                                     "EpochEnd", "Done"]
    assert math.isnan(b.history[3].train_loss[2]) and b.history[3].lrs == [0.01, 0.005]


@pytest.mark.parametrize("task,loss", [("regression", "nll"), ("regression", "mse"), ("classification", "nll")])
def test_save_load_gives_identical_predictions(tmp_path, task, loss):
    run = make_run(task, loss)
    save_run(run, tmp_path / "run")
    assert {p.name for p in (tmp_path / "run").iterdir()} == set(RUN_FILES) - {"metrics.json", "replay.json"}
    _same_run(run, load_run(tmp_path / "run"))


def test_export_import_gives_identical_predictions_and_is_deterministic():
    run = make_run()
    blob = export_zip(run)
    assert blob == export_zip(run)
    _same_run(run, import_zip(blob))
    with zipfile.ZipFile(io.BytesIO(blob)) as zf:
        assert zf.namelist() == ["config.json", "run.json", "weights.safetensors", "history.csv"]
        info = json.loads(zf.read("run.json"))
    assert info["events"][3]["train_loss"][2] is None  # plain JSON: NaN written as null


def test_history_csv_and_metrics_json(tmp_path, cubic):
    run = make_run(d=1)
    run.x_mean, run.x_std = cubic.x_mean, cubic.x_std
    save_run(run, tmp_path, dataset=cubic)
    lines = (tmp_path / "history.csv").read_text().splitlines()
    assert lines[0] == "epoch,trajectory,train_loss,train_acc,val_nll,val_rmse,lr_first,lr_last,steps,elapsed"
    assert len(lines) == 1 + 2 * 3  # epochs x trajectories
    assert lines[-1].startswith("2,2,,,")  # the diverged trajectory's NaN loss is an empty cell
    scores = json.loads((tmp_path / "metrics.json").read_text())
    assert scores["n_test"] == len(cubic.y_test) and set(scores["test"]) >= {"nll", "rmse", "crps"}


def test_files_in_memory_match_the_folder(tmp_path):
    run = make_run()
    save_run(run, tmp_path)
    for name, content in run_files(run).items():
        assert (tmp_path / name).read_bytes() == content


# ---------------------------------------------------------------- refusals
def _zip(files: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, content in files.items():
            zf.writestr(name, content)
    return buf.getvalue()


def _tampered(**changes: bytes) -> bytes:
    files = run_files(make_run())
    files.update(changes)
    return _zip(files)


def _run_json(**edits) -> bytes:
    info = json.loads(run_files(make_run())["run.json"])
    info.update(edits)
    return json.dumps(info).encode()


class Evil:
    def __reduce__(self):
        return (print, ("pwned",))


@pytest.mark.parametrize("blob,match", [
    (b"", "the file is empty"),
    (b"PK\x03\x04 this is garbage", "not a zip archive"),
    (pickle.dumps(Evil()), "not a zip archive"),
    (b"\x00" * 2048, "not a zip archive"),
])
def test_garbage_and_pickles_are_refused(blob, match):
    with pytest.raises(PersistenceError, match=match):
        import_zip(blob)


def test_unexpected_names_and_path_traversal_are_refused():
    good = run_files(make_run())
    for name in ("../config.json", "/etc/passwd", "sub/run.json", "weights.pt", "evil.py"):
        with pytest.raises(PersistenceError, match="unexpected file"):
            import_zip(_zip({**good, name: b"x"}))
    with pytest.raises(PersistenceError, match="weights.safetensors missing"):
        import_zip(_zip({k: v for k, v in good.items() if k != "weights.safetensors"}))


def test_a_recalibration_added_by_the_dashboard_imports_and_is_not_read_here():
    run = make_run()
    files = run_files(run)
    back = import_zip(_zip({**files, "recalibration.json": b"not even json"}))  # skipped, never parsed
    _same_run(run, back)
    with pytest.raises(PersistenceError, match="unexpected file 'recalibration.txt'"):
        import_zip(_zip({**files, "recalibration.txt": b"{}"}))


def test_size_limit():
    blob = export_zip(make_run())
    with pytest.raises(PersistenceError, match="the limit is"):
        import_zip(blob, max_bytes=len(blob) - 1)
    with pytest.raises(PersistenceError, match="expected the zip file's bytes"):
        import_zip("a path")  # type: ignore[arg-type]


def test_pickled_weights_are_refused_without_unpickling(tmp_path, capsys):
    buf = io.BytesIO()
    torch.save({"weights.0": Evil()}, buf)
    with pytest.raises(PersistenceError, match="weights.safetensors: not a valid safetensors file"):
        import_zip(_tampered(**{"weights.safetensors": buf.getvalue()}))
    save_run(make_run(), tmp_path)
    (tmp_path / "weights.safetensors").write_bytes(pickle.dumps(Evil()))
    with pytest.raises(PersistenceError, match="not a valid safetensors file"):
        load_run(tmp_path)
    assert "pwned" not in capsys.readouterr().out


def test_weights_that_do_not_match_the_model_are_refused():
    from safetensors.torch import save

    state = dict(make_run().model.state_dict())
    wrong_shape = {**state, "weights.0": torch.zeros(3, 2, 9)}
    with pytest.raises(PersistenceError, match=r"weights.0 has shape \(3, 2, 9\)"):
        import_zip(_tampered(**{"weights.safetensors": save(wrong_shape)}))
    missing = {k: v for k, v in state.items() if k != "biases.1"}
    with pytest.raises(PersistenceError, match="does not match the model .missing biases.1"):
        import_zip(_tampered(**{"weights.safetensors": save(missing)}))
    renamed = {**missing, "pad": torch.zeros(100)}
    with pytest.raises(PersistenceError, match="missing biases.1; unexpected pad"):
        import_zip(_tampered(**{"weights.safetensors": save(renamed)}))
    ints = {**state, "weights.0": state["weights.0"].to(torch.int32)}
    with pytest.raises(PersistenceError, match="must hold floating-point"):
        import_zip(_tampered(**{"weights.safetensors": save(ints)}))
    extra = {**state, "backdoor": torch.zeros(1)}
    with pytest.raises(PersistenceError, match="unexpected backdoor"):
        import_zip(_tampered(**{"weights.safetensors": save(extra)}))


@pytest.mark.parametrize("files,match", [
    ({"run.json": b"{not json"}, "run.json: not valid JSON"),
    ({"run.json": b"[1, 2]"}, "run.json: must be a JSON object"),
    ({"run.json": _run_json(format="something else")}, "not a Deep Ensemble Lab run"),
    ({"run.json": _run_json(version=99)}, "newer than this program"),
    ({"run.json": _run_json(members="all")}, "'members' must be list"),
    ({"run.json": _run_json(x_mean=[1.0, "2"])}, "x_mean: must contain only finite numbers"),
    ({"run.json": _run_json(y_mean=True)}, "'y_mean' must be int or float, got bool"),
    ({"run.json": _run_json(task="clustering")}, "task must be"),
    ({"run.json": _run_json(x_std=[1.0, 0.0])}, "x_std must be positive"),
    ({"run.json": _run_json(model={"n_members": 3, "in_features": 2, "out_features": 5})}, "5 outputs per member"),
    ({"run.json": _run_json(model={"n_members": 3, "in_features": 20000, "out_features": 2},
                            x_mean=[0.0] * 20000, x_std=[1.0] * 20000)}, "20000 input features; a run has 1 to 500"),
    ({"run.json": _run_json(events=[{"kind": "rm -rf"}])}, "unknown event kind"),
    ({"run.json": b'{"format": NaN}'}, "NaN is not allowed"),
    ({"config.json": b'{"optim": {"lr": -1}}'}, "config.json: optim.lr"),
])
def test_invalid_json_is_refused_with_a_message(files, match):
    with pytest.raises(PersistenceError, match=match):
        import_zip(_tampered(**files))


def test_load_run_needs_a_folder(tmp_path):
    with pytest.raises(PersistenceError, match="not a folder"):
        load_run(tmp_path / "nope")
    with pytest.raises(PersistenceError, match="config.json, run.json, weights.safetensors missing"):
        load_run(tmp_path)


_VALID = export_zip(make_run())


@settings(max_examples=60, deadline=None)
@given(st.binary(max_size=2000))
def test_random_bytes_are_refused_cleanly(blob):
    with pytest.raises(PersistenceError):
        import_zip(blob)


@settings(max_examples=150, deadline=None)
@given(st.integers(0, len(_VALID) - 1), st.integers(1, 255), st.integers(1, 8))
def test_corrupted_exports_raise_only_persistence_errors(pos, xor, span):
    blob = bytearray(_VALID)
    for i in range(pos, min(pos + span, len(blob))):
        blob[i] ^= xor
    try:
        run = import_zip(bytes(blob))
    except PersistenceError:
        return
    assert isinstance(run, Run)  # a flip in an unchecked spot (e.g. a zip comment field) may still load


_RUN_JSON = json.loads(run_files(make_run())["run.json"])
_json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(10**30), 10**30) | st.floats(allow_nan=False) | st.text(max_size=5),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=5), inner, max_size=4),
    max_leaves=12,
)


@settings(max_examples=150, deadline=None)
@given(st.sampled_from(sorted(_RUN_JSON)), _json_values)
def test_any_json_value_in_run_json_is_validated(key, value):
    info = {**_RUN_JSON, key: value}
    try:
        run = import_zip(_tampered(**{"run.json": json.dumps(info).encode()}))
    except PersistenceError:
        return
    assert isinstance(run, Run)
    assert np.all(np.isfinite(run.x_mean)) and np.all(run.x_std > 0) and math.isfinite(run.y_mean)
