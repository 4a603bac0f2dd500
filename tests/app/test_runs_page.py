"""AppTest for pages/runs.py (through app.py's router) on a real run store in a temporary LAB_DATA_DIR.

Runs are tiny real trainings saved with :class:`ensemble_core.store.RunStore` for the session's browser
token (AppTest has no cookies: the test sets the session's token, as a browser's cookie would).
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest
from apphelpers import RouterPagesManager
from streamlit.testing.v1 import AppTest
from streamlit.testing.v1 import app_test as _app_test

from dashboard import identity
from ensemble_core import store as store_mod
from ensemble_core.config import DataSpec, RunConfig
from ensemble_core.data import load_dataset

training = pytest.importorskip("ensemble_core.training")
ROOT = Path(__file__).resolve().parents[2]
ME, OTHER = identity.new_token(), identity.new_token()


def _run(kind: str = "independent", members: int = 2, epochs: int = 3, data: DataSpec | None = None):
    cfg = RunConfig().replace(**{"strategy.kind": kind, "strategy.members": members, "optim.epochs": epochs})
    if data is not None:
        cfg = cfg.replace(data=data)
    ds = load_dataset(cfg.data)
    return training.train(cfg, ds), ds


@pytest.fixture(scope="module")
def runs():
    """Three trained runs (two strategies) and one classification run, made once."""
    return {"ind": _run("independent", 2), "boot": _run("bootstrap", 3), "ind4": _run("independent", 4),
            "cls": _run("independent", 2, data=DataSpec(name="moons", n=60, noise=0.2))}


@pytest.fixture
def lab(tmp_path, monkeypatch):
    monkeypatch.setenv(store_mod.DATA_DIR_ENV, str(tmp_path / "lab"))
    return store_mod.RunStore(tmp_path / "lab")


def _open(monkeypatch, token: str = ME) -> AppTest:
    monkeypatch.setattr(_app_test, "PagesManager", RouterPagesManager)
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=60)
    at.session_state[identity.STATE_KEY] = token
    at.run()
    at.switch_page("pages/runs.py").run()
    assert not at.exception, [e.message for e in at.exception]
    return at


def _table(at: AppTest, key: str = "runs_table"):
    """The runs table (first data frame) or the comparison table (second); a plain data frame has no id."""
    return at.dataframe[0 if key == "runs_table" else 1].value


def _saved(lab, runs, names=("ind", "boot", "ind4"), owner=ME):
    return {n: lab.save(*runs[n], owner=owner, source="train") for n in names}


def test_empty_store_says_no_runs_yet(lab, monkeypatch):
    at = _open(monkeypatch)
    assert any("No runs yet" in m.value for m in at.markdown)
    assert not at.warning  # the store is writable: no "not being kept"


def test_lists_only_this_browsers_runs_with_their_metrics(lab, runs, monkeypatch):
    recs = _saved(lab, runs)
    lab.save(*runs["cls"], owner=OTHER, source="train")
    at = _open(monkeypatch)
    df = _table(at)
    assert len(df) == 3  # the other browser's run is not listed
    assert set(df["strategy"]) == {"independent", "bootstrap"}
    assert sorted(df["test NLL"]) == pytest.approx(sorted(r.test_nll for r in recs.values()))
    assert list(df["members"]) == [4, 3, 2]  # newest first
    assert at.dataframe[0].proto.placeholder == "–"  # a metric a run has not (a classifier's RMSE): a dash
    assert any("Retention" in c.value for c in at.caption)


def test_filter_search_and_sort(lab, runs, monkeypatch):
    recs = _saved(lab, runs)
    at = _open(monkeypatch)
    at.selectbox(key="runs_strategy").set_value("bootstrap").run()
    assert list(_table(at)["strategy"]) == ["bootstrap"]
    at.selectbox(key="runs_strategy").set_value("").run()
    at.selectbox(key="runs_sort").set_value("Test NLL").run()
    at.toggle(key="runs_desc").set_value(False).run()
    assert list(_table(at)["test NLL"]) == pytest.approx(sorted(r.test_nll for r in recs.values()))
    lab.rename(recs["boot"].run_id, ME, "my bagging try")
    at.text_input(key="runs_search").input("bagging").run()
    assert list(_table(at)["label"]) == ["my bagging try"]


def test_open_makes_it_the_current_run(lab, runs, monkeypatch):
    recs = _saved(lab, runs)
    at = _open(monkeypatch)
    at.selectbox(key="runs_pick").set_value(recs["boot"].run_id).run()
    at.button(key="runs_open").click().run()
    assert not at.exception
    run = at.session_state["run"]
    assert len(run.members) == 3 and run.config.strategy.kind == "bootstrap"
    assert at.session_state["run_dataset"].name == runs["boot"][1].name
    assert any("is the current run" in s.value for s in at.success)


def test_rename_star_and_delete_with_confirmation(lab, runs, monkeypatch):
    recs = _saved(lab, runs)
    at = _open(monkeypatch)
    rid = recs["ind"].run_id
    at.selectbox(key="runs_pick").set_value(rid).run()
    at.text_input(key=f"runs_label_{rid}").input("baseline").run()
    at.button(key="runs_rename").click().run()
    assert lab.get(rid, ME).label == "baseline"
    at.button(key="runs_star").click().run()
    assert lab.get(rid, ME).starred
    assert "★" in list(_table(at)["★"])
    at.button(key="runs_delete").click().run()
    assert lab.get(rid, ME) is not None  # not yet: it asks first
    assert any("cannot be undone" in m.value for m in at.markdown)
    at.button(key="runs_delete_no").click().run()
    assert lab.get(rid, ME) is not None
    at.button(key="runs_delete").click().run()
    at.button(key="runs_delete_yes").click().run()
    assert lab.get(rid, ME) is None and len(_table(at)) == 2


def test_compare_marks_the_best_and_draws_curves_and_bands(lab, runs, monkeypatch):
    recs = _saved(lab, runs)
    at = _open(monkeypatch)
    ids = [recs[n].run_id for n in ("ind", "boot", "ind4")]
    at.multiselect(key="runs_compare").set_value(ids).run()
    assert not at.exception, [e.message for e in at.exception]
    df = _table(at, "runs_compare_table")
    assert len(df) == 3
    best_nll = min(recs.values(), key=lambda r: r.test_nll)
    best_line = next(m.value for m in at.markdown if m.value.startswith("Best test NLL"))
    label = df.loc[df["test NLL"].astype(float).idxmin(), "run"]
    assert df["test NLL"].astype(float).min() == pytest.approx(best_nll.test_nll)
    assert f"**{label.split(' ', 1)[0]}" in best_line.replace("\\", "")
    specs = [c.proto.spec for c in at.get("plotly_chart")]
    assert len(specs) >= 2  # overlaid validation curves + bands on shared axes
    val = json.loads(specs[0])
    names = {t.get("name") for t in val["data"]}
    assert len(names) == 3  # one colour (legend entry) per run


def test_damaged_run_is_listed_as_damaged(lab, runs, monkeypatch, tmp_path):
    recs = _saved(lab, runs, names=("ind", "boot"))
    weights = next((tmp_path / "lab" / "runs" / recs["boot"].run_id).glob("*.safetensors"))
    weights.write_bytes(weights.read_bytes()[:100])  # truncated on disk
    store_mod._DEFAULTS.clear() if hasattr(store_mod, "_DEFAULTS") else None  # the page's store scans at start
    at = _open(monkeypatch)
    df = _table(at)
    assert dict(zip(df["strategy"], df["status"]))["bootstrap"] == "damaged"
    at.selectbox(key="runs_pick").set_value(recs["boot"].run_id).run()
    assert any("damaged" in e.value for e in at.error)
    assert at.button(key="runs_open").disabled


def _train_one(at: AppTest) -> AppTest:
    at.switch_page("pages/train.py").run()
    at.button[[b.label for b in at.button].index("Train")].click().run()
    deadline = time.monotonic() + 120
    while at.session_state["run"] is None and time.monotonic() < deadline:
        time.sleep(0.3)
        at.run()
    return at


@pytest.mark.parametrize("how", ["read-only", "a file"])
def test_unwritable_data_dir_says_runs_are_not_kept_and_training_works(tmp_path, monkeypatch, how):
    if how == "read-only":
        if os.geteuid() == 0:
            pytest.skip("root writes to read-only folders")
        place = tmp_path / "ro"
        place.mkdir()
        place.chmod(0o500)
        root = place / "lab"
    else:  # works as root too: the data directory's place is a file
        place = tmp_path / "file"
        place.write_text("not a folder")
        root = place / "lab"
    monkeypatch.setenv(store_mod.DATA_DIR_ENV, str(root))
    try:
        at = _open(monkeypatch)
        assert any("Runs are not being kept" in w.value for w in at.warning)
        at = _train_one(at)
        assert at.session_state["run"] is not None and not at.exception  # training still works
        at.switch_page("pages/runs.py").run()
        assert any("Runs are not being kept" in w.value for w in at.warning)
    finally:
        if how == "read-only":
            place.chmod(0o700)
