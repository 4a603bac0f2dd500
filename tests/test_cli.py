"""``python -m ensemble_core``: happy paths, and one-line errors (never a traceback) for bad input."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from ensemble_core.cli import main
from ensemble_core.config import RunConfig

ROOT = Path(__file__).resolve().parents[1]


def _python_m(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "ensemble_core", *args], cwd=ROOT, capture_output=True,
                          text=True, timeout=120)


def _assert_one_line_error(stderr: str, match: str) -> None:
    lines = [ln for ln in stderr.splitlines() if ln.strip()]
    assert len(lines) == 1, stderr
    assert "Traceback" not in stderr and match in lines[0], stderr


@pytest.fixture
def uci_files(tmp_path):
    """A tiny UCI-format data set: 60 rows, 3 features, a smooth target, 3 splits."""
    g = np.random.default_rng(0)
    x = g.normal(size=(60, 3))
    y = 5 + 2 * x[:, 0] - x[:, 1] ** 2 + 0.1 * g.normal(size=60)
    csv = tmp_path / "tiny.csv"
    csv.write_text("a,b,c,target\n" + "\n".join(",".join(f"{v:.6f}" for v in row) for row in np.c_[x, y]) + "\n")
    splits = []
    for s in range(3):
        perm = np.random.default_rng(s).permutation(60)
        splits.append({"train": perm[:50].tolist(), "test": perm[50:].tolist()})
    sp = tmp_path / "tiny_splits.json"
    sp.write_text(json.dumps({"target": "target", "n_hidden": 8, "n_epochs": 3, "splits": splits}))
    return csv, sp


# ------------------------------------------------------------- real entry point
def test_usage_error_is_one_line_with_exit_2():
    res = _python_m("uci")
    assert res.returncode == 2
    _assert_one_line_error(res.stderr, "required: DATA.csv, --splits")


def test_uci_json_last_line_via_python_m(uci_files):
    csv, sp = uci_files
    res = _python_m("uci", str(csv), "--splits", str(sp), "--members", "2", "--splits-limit", "2", "--json")
    assert res.returncode == 0, res.stderr
    lines = res.stdout.strip().splitlines()
    assert lines[0].startswith("split  0  RMSE") and lines[1].startswith("split  1  RMSE")
    summary = json.loads(lines[-1])
    assert set(summary) == {"rmse_mean", "rmse_std", "nll_mean", "nll_std", "n_splits", "seconds"}
    assert summary["n_splits"] == 2 and summary["rmse_mean"] > 0 and np.isfinite(summary["nll_mean"])


# ------------------------------------------------------------------ in-process
def test_train_writes_a_loadable_run(tmp_path, capsys):
    from ensemble_core.persistence import load_run

    cfg = RunConfig().replace(**{"data.n": 40, "strategy.members": 2, "optim.epochs": 3, "model.width": 8})
    (tmp_path / "run.json").write_text(cfg.to_json())
    assert main(["train", "--config", str(tmp_path / "run.json"), "--out", str(tmp_path / "out"), "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "done: 2/2 healthy members, 3 epochs" in out and "test: nll" in out
    names = {p.name for p in (tmp_path / "out").iterdir()}
    assert names == {"config.json", "run.json", "history.csv", "metrics.json", "weights.safetensors"}
    run = load_run(tmp_path / "out")
    assert run.config == cfg and run.epochs_done == 3


def test_uci_summary_matches_the_splits(uci_files, capsys):
    csv, sp = uci_files
    assert main(["uci", str(csv), "--splits", str(sp), "--members", "2", "--seed", "3"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    rmses = [float(ln.split()[3]) for ln in lines[:3]]
    assert len(lines) == 4 and f"RMSE {np.mean(rmses):.3f} ± {np.std(rmses, ddof=1):.3f}" in lines[-1]
    assert "(3 splits" in lines[-1]


@pytest.mark.parametrize("argv,code,match", [
    (["uci", "nope.csv", "--splits", "nope.json"], 1, "DATA.csv nope.csv: no such file"),
    (["uci", "{csv}", "--splits", "{csv}"], 1, "not valid JSON"),
    (["uci", "{csv}", "--splits", "{bad_splits}"], 1, "split 0: a 'train' index is outside"),
    (["uci", "{csv}", "--splits", "{sp}", "--members", "25"], 1, "strategy.members: must be between 1 and 20"),
    (["uci", "{csv}", "--splits", "{sp}", "--lr", "-1"], 2, "argument --lr: must be a positive number"),
    (["uci", "{csv}", "--splits", "{sp}", "--epochs", "ten"], 2, "argument --epochs: expected a whole number"),
    (["train", "--config", "{csv}", "--out", "{tmp}/o"], 1, "config: not valid JSON"),
    (["train", "--config", "{bad_cfg}", "--out", "{tmp}/o"], 1, "optim.batch_size: must be between"),
    (["train", "--config", "{csv_cfg}", "--out", "{tmp}/o"], 1, "pass it with --csv FILE"),
    (["train", "--config", "{tmp}", "--out", "{tmp}/o"], 1, "not a file"),
    (["train", "--out", "x"], 2, "required: --config"),
    (["fly"], 2, "invalid choice: 'fly'"),
])
def test_bad_arguments_and_files_give_one_line(argv, code, match, uci_files, tmp_path, capsys):
    csv, sp = uci_files
    bad_splits = tmp_path / "bad.json"
    bad_splits.write_text(json.dumps({"splits": [{"train": [0, 1, 999], "test": [2, 3]}]}))
    bad_cfg = tmp_path / "bad_cfg.json"
    bad_cfg.write_text(json.dumps({"optim": {"batch_size": 0}}))
    csv_cfg = tmp_path / "csv_cfg.json"
    csv_cfg.write_text(RunConfig().replace(**{"data.source": "csv", "data.name": "my.csv"}).to_json())
    subs = {"csv": csv, "sp": sp, "bad_splits": bad_splits, "bad_cfg": bad_cfg, "csv_cfg": csv_cfg, "tmp": tmp_path}
    argv = [a.format(**subs) for a in argv]
    if code == 2:
        with pytest.raises(SystemExit) as exc:
            main(argv)
        assert exc.value.code == 2
    else:
        assert main(argv) == 1
    _assert_one_line_error(capsys.readouterr().err, match)


def test_train_from_a_csv_file(tmp_path, capsys):
    g = np.random.default_rng(1)
    x = g.uniform(-2, 2, size=60)
    (tmp_path / "data.csv").write_text("x,y\n" + "\n".join(f"{a:.5f},{a**2 + 0.1 * b:.5f}"
                                                            for a, b in zip(x, g.normal(size=60))))
    cfg = RunConfig().replace(**{"data.source": "csv", "data.name": "data.csv", "strategy.members": 2,
                                 "optim.epochs": 2, "model.width": 8})
    (tmp_path / "cfg.json").write_text(cfg.to_json())
    argv = ["train", "--config", str(tmp_path / "cfg.json"), "--out", str(tmp_path / "out"), "--csv",
            str(tmp_path / "data.csv"), "--quiet"]
    assert main(argv) == 0
    assert "done: 2/2 healthy members, 2 epochs" in capsys.readouterr().out
    assert (tmp_path / "out" / "weights.safetensors").is_file()


def test_ctrl_c_stops_training_and_saves_the_partial_run(tmp_path, monkeypatch, capsys):
    import os
    import signal

    from ensemble_core import training
    from ensemble_core.persistence import load_run
    from ensemble_core.run import EpochEnd

    real_train = training.train

    def train_then_interrupt(config, data, on_event=None, should_stop=None, **kw):
        def relay(event):
            on_event(event)
            if isinstance(event, EpochEnd) and event.epoch == 3:
                os.kill(os.getpid(), signal.SIGINT)  # what Ctrl-C in the terminal sends

        return real_train(config, data, relay, should_stop, **kw)

    monkeypatch.setattr(training, "train", train_then_interrupt)
    cfg = RunConfig().replace(**{"strategy.members": 2, "optim.epochs": 500, "model.width": 8})
    (tmp_path / "cfg.json").write_text(cfg.to_json())
    assert main(["train", "--config", str(tmp_path / "cfg.json"), "--out", str(tmp_path / "o"), "--quiet"]) == 0
    assert "stopped early" in capsys.readouterr().out
    run = load_run(tmp_path / "o")
    assert run.stopped and 3 <= run.epochs_done < 500
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # handler restored


def test_uci_adversarial_flag_reaches_the_config(uci_files, capsys):
    from ensemble_core.cli import uci_config

    cfg = uci_config(members=5, epochs=40, batch_size=100, lr=0.01, hidden=50, seed=0, name="y.csv",
                     adversarial=True)
    assert cfg.strategy.adversarial and cfg.model.hidden_layers == 1 and cfg.model.width == 50
    assert cfg.loss.kind == "nll" and cfg.loss.variance == "softplus" and cfg.optim.optimizer == "adam"
    csv, sp = uci_files
    assert main(["uci", str(csv), "--splits", str(sp), "--members", "2", "--splits-limit", "1",
                 "--adversarial", "--json"]) == 0
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1])["n_splits"] == 1


def test_train_is_unlimited_unless_asked_and_then_names_the_limit(tmp_path, capsys):
    # batch 1 on 2,000 rows x 2,000 epochs = 2.4M steps: over the classroom's 2M steps
    cfg = RunConfig().replace(**{"data.n": 2000, "optim.batch_size": 1, "optim.epochs": 2000,
                                 "strategy.members": 1, "model.width": 8})
    (tmp_path / "run.json").write_text(cfg.to_json())
    argv = ["train", "--config", str(tmp_path / "run.json"), "--out", str(tmp_path / "out"), "--quiet", "--limits"]
    assert main(argv) == 1
    err = capsys.readouterr().err
    assert "classroom limits (--limits)" in err and "steps" in err and "Traceback" not in err
    assert not (tmp_path / "out").exists()
    assert "classroom limits" in _python_m("train", "--help").stdout


# ------------------------------------------------------------------ runs (the run store)
@pytest.fixture
def stored_runs(tmp_path):
    """A run store with two runs of owner 'cli' and one of another owner."""
    from ensemble_core.data import load_dataset
    from ensemble_core.store import RunStore
    from ensemble_core.training import train

    cfg = RunConfig().replace(**{"data.n": 40, "strategy.members": 2, "optim.epochs": 3, "model.width": 8})
    data = load_dataset(cfg.data)
    run = train(cfg, data)
    s = RunStore(tmp_path / "store")
    a = s.save(run, data, owner="cli", source="cli", label="first")
    b = s.save(run, data, owner="cli", source="cli")
    c = s.save(run, data, owner="browser-1", source="train", label="theirs")
    s.close()
    return tmp_path / "store", run, data, a, b, c


def test_runs_list_show_export(stored_runs, tmp_path, capsys):
    from ensemble_core.persistence import export_zip, import_zip

    root, run, data, a, b, c = stored_runs
    assert main(["runs", "list", "--data-dir", str(root)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("id") and [ln.split()[0] for ln in lines[1:]] == [b.run_id, a.run_id]
    assert "first" in lines[2] and "nll" in lines[2] and "theirs" not in "\n".join(lines)
    assert main(["runs", "list", "--data-dir", str(root), "--owner", "browser-1", "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert [r["run_id"] for r in listed] == [c.run_id] and listed[0]["label"] == "theirs"
    assert main(["runs", "show", a.run_id, "--data-dir", str(root), "--json"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["record"]["test_nll"] == pytest.approx(a.test_nll)
    assert RunConfig.from_dict(shown["config"]) == run.config
    assert main(["runs", "show", a.run_id, "--data-dir", str(root)]) == 0
    out = capsys.readouterr().out
    assert f"run_id         {a.run_id}" in out and "config:" in out
    out_zip = tmp_path / "a.zip"
    assert main(["runs", "export", a.run_id, "--out", str(out_zip), "--data-dir", str(root)]) == 0
    assert out_zip.read_bytes() == export_zip(run, data) and import_zip(out_zip.read_bytes()).config == run.config


def test_runs_errors_are_one_line(stored_runs, tmp_path, capsys):
    root, _run, _data, a, _b, c = stored_runs
    assert main(["runs", "show", c.run_id, "--data-dir", str(root)]) == 1  # another owner's run
    _assert_one_line_error(capsys.readouterr().err, "no run")
    assert main(["runs", "export", a.run_id, "--out", str(tmp_path), "--data-dir", str(root)]) == 1
    _assert_one_line_error(capsys.readouterr().err, "is a folder")
    (tmp_path / "afile").write_text("x")
    assert main(["runs", "list", "--data-dir", str(tmp_path / "afile" / "store")]) == 1
    _assert_one_line_error(capsys.readouterr().err, "the run store cannot be used")
    w = root / "runs" / a.run_id / "weights.safetensors"
    w.write_bytes(w.read_bytes()[:-10])
    assert main(["runs", "export", a.run_id, "--out", str(tmp_path / "x.zip"), "--data-dir", str(root)]) == 1
    _assert_one_line_error(capsys.readouterr().err, "damaged")


def test_runs_via_python_m_uses_lab_data_dir(stored_runs):
    root, _run, _data, a, b, _c = stored_runs
    res = subprocess.run([sys.executable, "-m", "ensemble_core", "runs", "list", "--json"], cwd=ROOT,
                         capture_output=True, text=True, timeout=120, env={**__import__("os").environ,
                                                                           "LAB_DATA_DIR": str(root)})
    assert res.returncode == 0, res.stderr
    assert [r["run_id"] for r in json.loads(res.stdout)] == [b.run_id, a.run_id]
