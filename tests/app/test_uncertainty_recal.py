"""AppTest: the Uncertainty page's recalibration and known-unknowns sections, the Data page's held-out control,
and the recalibration travelling in the run's zip."""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("streamlit")
from streamlit.testing.v1 import AppTest  # noqa: E402

from dashboard import exports  # noqa: E402
from ensemble_core import persistence  # noqa: E402
from ensemble_core.config import DataSpec, RunConfig  # noqa: E402
from ensemble_core.data import Dataset, load_dataset  # noqa: E402
from ensemble_core.recalibration import Recalibration  # noqa: E402
from ensemble_core.training import train  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
PAGE = str(ROOT / "pages" / "uncertainty.py")


def _linear(n: int = 120, seed: int = 0) -> Dataset:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 3))
    y = x @ np.array([1.0, -2.0, 0.5]) + rng.normal(0, 1.0, n)
    a, b = 60, 90
    return Dataset("linear", "regression", ["f1", "f2", "f3"], "target", x[:a], y[:a], x[a:b], y[a:b], x[b:], y[b:],
                   x[:a].mean(0), x[:a].std(0), float(y[:a].mean()), float(y[:a].std()))


@pytest.fixture(scope="module")
def reg_run():
    cfg = RunConfig().replace(**{"data.name": "cubic", "strategy.members": 3, "optim.epochs": 6,
                                 "optim.batch_size": 16, "model.width": 16})
    ds = _linear()
    return train(cfg, ds), ds


@pytest.fixture(scope="module")
def digits_run():
    spec = DataSpec(source="bundled", name="digits", held_out=(5, 6, 7, 8, 9))
    cfg = RunConfig().replace(data=spec, **{"strategy.members": 3, "optim.epochs": 3, "optim.batch_size": 64,
                                            "model.width": 32, "optim.lr": 0.003})
    ds = load_dataset(spec)
    return train(cfg, ds), ds


def _page(run, ds) -> AppTest:
    at = AppTest.from_file(PAGE, default_timeout=120)
    at.session_state["run"], at.session_state["run_dataset"] = run, ds
    at.run()
    assert not at.exception, [e.message for e in at.exception]
    return at


def _fig(at: AppTest, key: str) -> dict:
    hits = [json.loads(c.proto.spec) for c in at.get("plotly_chart") if c.proto.id.endswith(key)]
    assert hits, f"no chart {key}"
    return hits[0]


def test_regression_recalibration_section_and_export_round_trip(reg_run) -> None:
    run, ds = reg_run
    at = _page(run, ds)
    names = [t["name"] for t in _fig(at, "unc_recal_curves")["data"]]
    assert any(n.startswith("Variance scaling") for n in names) and any(n.startswith("Split-conformal") for n in names)
    tables = [t.value for t in at.table]
    recal_table = next(t for t in tables if "Miscal. area" in t.columns)
    assert list(recal_table.index)[0] == "Before" and "Sharpness" in recal_table.columns
    kept = at.session_state["run_recalibration"]
    assert kept[0] == id(run) and isinstance(kept[1], Recalibration) and kept[1].task == "regression"
    # the zip carries recalibration.json; the importer takes it back out and the run imports as before
    data = exports.with_recalibration(persistence.export_zip(run, ds), kept[1])
    assert exports.RECAL_FILE in zipfile.ZipFile(io.BytesIO(data)).namelist()
    run_zip, recal, problem = exports.split_recalibration(data)
    assert problem is None and recal == kept[1]
    assert zipfile.ZipFile(io.BytesIO(run_zip)).namelist() == zipfile.ZipFile(
        io.BytesIO(persistence.export_zip(run, ds))).namelist()
    back = persistence.import_zip(run_zip)
    assert back.config == run.config


def test_an_oversized_recalibration_file_is_refused_but_the_run_imports(reg_run) -> None:
    run, ds = reg_run
    buf = io.BytesIO(persistence.export_zip(run, ds))
    with zipfile.ZipFile(buf, "a", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr(exports.RECAL_FILE, b" " * (exports._MAX_RECAL_BYTES + 1))
    run_zip, recal, problem = exports.split_recalibration(buf.getvalue())
    assert recal is None and "larger than" in problem
    assert persistence.import_zip(run_zip).config == run.config


def test_classification_temperature_and_known_unknowns(digits_run) -> None:
    run, ds = digits_run
    at = _page(run, ds)
    fig = _fig(at, "unc_recal_reliability")
    assert any(t["name"].startswith("Temperature scaling") for t in fig["data"])
    labels = {m.label: m.value for m in at.metric}
    single, ens = float(labels["AUROC, entropy — one network"]), float(labels["AUROC, entropy — ensemble of 3"])
    assert 0.5 < single <= 1 and 0.5 < ens <= 1
    hist = _fig(at, "unc_ood_hist")
    assert {t["name"] for t in hist["data"]} == {"Seen classes", "Unseen (held-out) classes"}
    assert _fig(at, "unc_ood_abstain")["data"]


def test_classification_without_held_out_classes_shows_the_hint() -> None:
    spec = DataSpec(source="bundled", name="iris")
    cfg = RunConfig().replace(data=spec, **{"strategy.members": 2, "optim.epochs": 2, "model.width": 8})
    ds = load_dataset(spec)
    at = _page(train(cfg, ds), ds)
    assert any("Hold some classes out" in c.value for c in at.caption)
    assert not [c for c in at.get("plotly_chart") if c.proto.id.endswith("unc_ood_hist")]


def test_data_page_marks_classes_held_out(fresh) -> None:
    at = fresh({"data.source": "bundled", "data.name": "digits"}, "data")
    at.multiselect(key="data_held_out").set_value([7, 5]).run()
    assert not at.exception, [e.message for e in at.exception]
    assert at.session_state["settings"].config.data.held_out == (5, 7)
    assert set(np.unique(at.session_state["dataset"].y_train)) == {0, 1, 2, 3, 4, 6, 8, 9}
    # another data set: the held-out classes of digits do not follow it
    at.session_state["settings"].set("data.name", "iris")
    assert at.session_state["settings"].config.data.held_out == ()


def test_a_link_opens_the_data_with_classes_held_out(fresh) -> None:
    at = fresh({"data.source": "bundled", "data.name": "digits", "data.held_out": "[5, 6, 7, 8, 9]"}, "data")
    assert at.session_state["settings"].config.data.held_out == (5, 6, 7, 8, 9)
    assert at.multiselect(key="data_held_out").value == [5, 6, 7, 8, 9]
