"""The run store rebuilds a lost or damaged index from its run and sweep folders (issue 17, part A)."""

from __future__ import annotations

import dataclasses
import json
import os
import sqlite3
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest

from ensemble_core import store
from ensemble_core.config import RunConfig
from ensemble_core.data import load_dataset
from ensemble_core.predict import predict
from ensemble_core.store import RECOVERED_OWNER, RunStore, StoreError
from ensemble_core.training import train

ROOT = Path(__file__).resolve().parents[1]
TINY = {"data.n": 40, "strategy.members": 2, "optim.epochs": 3, "model.width": 8}


@pytest.fixture(scope="module")
def trained():
    cfg = RunConfig().replace(**TINY)
    data = load_dataset(cfg.data)
    return train(cfg, data), data


@pytest.fixture(scope="module")
def trained_csv():
    g = np.random.default_rng(0)
    x = g.uniform(-3, 3, size=60)
    raw = ("a,y\n" + "\n".join(f"{a:.5f},{a ** 3 + g.normal():.5f}" for a in x) + "\n").encode()
    cfg = RunConfig().replace(**{**TINY, "data.source": "csv", "data.name": "toy.csv"})
    data = load_dataset(cfg.data, raw)
    return train(cfg, data), data, raw


def _without_bytes(rec):
    """A record without its size (meta.json grows by a link, so the size is re-measured on a rebuild)."""
    return dataclasses.replace(rec, bytes=0)


def _populate(root: Path, trained, trained_csv):
    """Two owners' runs with labels, a star, an active and a revoked link, a failed run and a sweep."""
    run, data = trained
    crun, cdata, raw = trained_csv
    s = RunStore(root)
    a = s.save(run, data, owner="alice", source="train", label="first")
    b = s.save(crun, cdata, owner="alice", source="compare", csv_bytes=raw)
    c = s.save(run, data, owner="bob", source="cli")
    f = s.save_failed(run.config, owner="bob", source="train", error="it diverged")
    s.rename(b.run_id, "alice", "on my csv")
    s.star(a.run_id, "alice", True)
    live = s.share(a.run_id, "alice")
    dead = s.share(c.run_id, "bob")
    s.revoke(c.run_id, "bob")
    sweep = s.save_sweep("alice", {"label": "lr sweep", "task": "regression", "metric": "test_nll",
                                   "status": "done", "trials": [{"params": {"lr": 0.01}, "status": "done"}]},
                         run_ids=[a.run_id])
    sweep_token = s.share_sweep(sweep, "alice")
    records = {o: s.list(o) for o in ("alice", "bob")}
    sweeps = s.list_sweeps("alice")
    s.close()
    return dict(a=a, b=b, c=c, f=f, live=live, dead=dead, records=records, sweep=sweep, sweeps=sweeps,
                sweep_token=sweep_token)


def _remove_index(root: Path) -> None:
    for name in ("index.sqlite", "index.sqlite-wal", "index.sqlite-shm"):
        (root / name).unlink(missing_ok=True)


def test_a_deleted_index_is_rebuilt_with_owners_labels_stars_and_links(tmp_path, trained, trained_csv):
    run, data = trained
    got = _populate(tmp_path, trained, trained_csv)
    _remove_index(tmp_path)
    s = RunStore(tmp_path)
    assert s.available and s.reindexed == 5  # four runs and a sweep
    for owner, before in got["records"].items():
        after = s.list(owner)
        assert [_without_bytes(r) for r in after] == [_without_bytes(r) for r in before]
    a = s.get(got["a"].run_id, "alice")
    assert a.label == "first" and a.starred and a.shared
    assert s.get(got["b"].run_id, "alice").label == "on my csv"
    assert s.get(got["c"].run_id, "alice") is None and not s.get(got["c"].run_id, "bob").shared
    assert s.get(got["f"].run_id, "bob").error == "it diverged"
    # the active link opens the same model; the revoked one stays revoked
    rec, run2, data2 = s.open_shared(got["live"])
    assert rec.run_id == got["a"].run_id and data2 is not None
    np.testing.assert_array_equal(predict(run, data.x_test).mean, predict(run2, data.x_test).mean)
    with pytest.raises(StoreError, match="revoked"):
        s.open_shared(got["dead"])
    # the CSV run finds its stored CSV again; the sweep and its link are back
    run_b, data_b = s.load(got["b"].run_id, "alice")
    assert data_b is not None and s.load_csv(got["b"].run_id, "alice") == trained_csv[2]
    assert s.list_sweeps("alice") == got["sweeps"]
    assert s.open_shared_sweep(got["sweep_token"])[0].label == "lr sweep"
    assert s.load_sweep(got["sweep"], "alice")[2] == [got["a"].run_id]
    # a new share is idempotent with the restored link; revoking it after the rebuild sticks
    assert s.share(got["a"].run_id, "alice") == got["live"]
    s.revoke(got["a"].run_id, "alice")
    s.close()
    _remove_index(tmp_path)
    s = RunStore(tmp_path)
    with pytest.raises(StoreError, match="revoked"):
        s.open_shared(got["live"])
    assert not s.get(got["a"].run_id, "alice").shared
    s.close()


def test_a_garbage_index_is_moved_aside_and_rebuilt(tmp_path, trained, trained_csv):
    got = _populate(tmp_path, trained, trained_csv)
    _remove_index(tmp_path)
    (tmp_path / "index.sqlite").write_bytes(b"not an index at all " * 500)
    s = RunStore(tmp_path)
    assert s.available and s.why is None and "rebuilt" in s.index_note
    [aside] = tmp_path.glob("index.sqlite.corrupt-*")
    assert aside.read_bytes() == b"not an index at all " * 500  # kept for a person, never deleted
    assert [r.run_id for r in s.list("alice")] == [r.run_id for r in got["records"]["alice"]]
    assert s.open_shared(got["live"])[0].run_id == got["a"].run_id
    s.close()
    s = RunStore(tmp_path)  # the rebuilt index is sound: nothing is moved again
    assert s.index_note is None and len(list(tmp_path.glob("index.sqlite.corrupt-*"))) == 1
    s.close()


def test_an_index_failing_quick_check_is_moved_aside_and_rebuilt(tmp_path, trained, trained_csv):
    got = _populate(tmp_path, trained, trained_csv)
    db = tmp_path / "index.sqlite"
    with sqlite3.connect(db) as conn:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        page = conn.execute("PRAGMA page_size").fetchone()[0]
        n_pages = conn.execute("PRAGMA page_count").fetchone()[0]
    assert n_pages >= 3
    blob = bytearray(db.read_bytes())
    blob[page:page * (n_pages - 1)] = b"\xa5" * (page * (n_pages - 2))  # every page but the header's and the last
    db.write_bytes(bytes(blob))
    s = RunStore(tmp_path)
    [aside] = [p for p in tmp_path.glob("index.sqlite.corrupt-*") if not p.name.endswith(("-wal", "-shm"))]
    assert s.available and s.index_note and aside.stat().st_size == len(blob)
    assert {r.run_id for r in s.list("bob")} == {got["c"].run_id, got["f"].run_id}
    s.close()


def test_a_rebuild_lists_damaged_folders_as_damaged_and_keeps_them(tmp_path, trained, trained_csv):
    got = _populate(tmp_path, trained, trained_csv)
    runs = tmp_path / "runs"
    w = runs / got["a"].run_id / "weights.safetensors"
    w.write_bytes(w.read_bytes()[:50])  # truncated weights: meta.json knows the size and sha256
    (runs / got["b"].run_id / "meta.json").write_text("{ not json")  # unreadable meta: store.json still says
    (runs / got["c"].run_id / "meta.json").unlink()  # a folder saved before meta.json existed
    (runs / got["f"].run_id / "meta.json").unlink()
    (runs / got["f"].run_id / "store.json").unlink()  # nothing says whose it is
    (tmp_path / "sweeps" / got["sweep"] / "summary.json").write_bytes(b"{}")
    _remove_index(tmp_path)
    s = RunStore(tmp_path)
    assert s.available and s.reindexed == 5
    a = s.get(got["a"].run_id, "alice")
    assert a.damaged and "weights.safetensors" in a.damaged and a.label == "first"
    with pytest.raises(StoreError, match="damaged"):
        s.load(got["a"].run_id, "alice")
    b = s.get(got["b"].run_id, "alice")  # owner from store.json; the label lived in meta.json only
    assert b is not None and b.damaged is None and b.label == "" and "meta.json was unreadable" in b.note
    assert s.load(b.run_id, "alice")[1] is not None  # its files are whole: it opens, with its CSV
    c = s.get(got["c"].run_id, "bob")  # an older folder: everything but label, star and links comes back
    assert c is not None and c.damaged is None and c.test_nll == got["c"].test_nll and not c.shared
    assert "meta.json was missing" in c.note
    s.load(c.run_id, "bob")
    [f] = s.list(RECOVERED_OWNER)
    assert f.run_id == got["f"].run_id and "store.json" in f.damaged
    assert s.get(got["f"].run_id, "bob") is None
    [sw] = s.list_sweeps("alice")  # the sweep's owner is in its meta.json
    assert sw.damaged and "summary" in sw.damaged
    with pytest.raises(StoreError, match="damaged"):
        s.load_sweep(sw.sweep_id, "alice")
    # nothing was deleted
    assert {p.name for p in runs.iterdir()} == {got[k].run_id for k in "abcf"}
    s.close()


def test_clean_up_reindexes_a_complete_folder_the_index_lacks(tmp_path, trained):
    run, data = trained
    s = RunStore(tmp_path)
    rec = s.save(run, data, owner="me", source="train", label="keep me")
    s.close()
    with sqlite3.connect(tmp_path / "index.sqlite") as conn:  # as if killed between the rename and the row
        conn.execute("DELETE FROM runs")
    s = RunStore(tmp_path)
    assert s.reindexed == 1 and s.get(rec.run_id, "me").label == "keep me"
    s.load(rec.run_id, "me")
    s.close()


def test_a_deleted_run_or_sweep_never_comes_back(tmp_path, trained, monkeypatch):
    run, data = trained
    s = RunStore(tmp_path, max_runs_per_owner=1)
    gone = s.save(run, data, owner="me", source="train")
    sweep = s.save_sweep("me", {"trials": []})
    monkeypatch.setattr(store, "_remove", lambda path: None)  # as if killed before the folders were removed
    s.delete(gone.run_id, "me")
    s.delete_sweep(sweep, "me")
    pruned = s.save(run, data, owner="me", source="train")
    kept = s.save(run, data, owner="me", source="train")  # prunes `pruned` (one run per owner)
    monkeypatch.undo()
    assert [r.run_id for r in s.list("me")] == [kept.run_id]
    folders = {p.name for p in (tmp_path / "runs").iterdir()}
    assert folders == {gone.run_id, pruned.run_id, kept.run_id}  # still on disk, with a tombstone
    s.close()
    _remove_index(tmp_path)
    s = RunStore(tmp_path, max_runs_per_owner=1)
    assert [r.run_id for r in s.list("me")] == [kept.run_id] and s.list_sweeps("me") == []
    assert {p.name for p in (tmp_path / "runs").iterdir()} == {kept.run_id}  # tombstoned folders removed
    assert list((tmp_path / "sweeps").iterdir()) == []
    s.close()


def _start_in_threads(root: Path) -> list[RunStore]:
    barrier = threading.Barrier(2)
    stores: list[RunStore] = []

    def start() -> None:
        barrier.wait()
        stores.append(RunStore(root))

    threads = [threading.Thread(target=start) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return stores


_CHILD = """
import sys, time
from ensemble_core.store import RunStore
t0 = float(sys.argv[2])
while time.time() < t0:
    time.sleep(0.001)
s = RunStore(sys.argv[1])
print(s.reindexed, len(s.list("alice")) + len(s.list("bob")), flush=True)
"""


def test_two_stores_starting_at_once_index_each_folder_once(tmp_path, trained, trained_csv):
    got = _populate(tmp_path, trained, trained_csv)
    _remove_index(tmp_path)
    stores = _start_in_threads(tmp_path)
    assert sorted(s.reindexed for s in stores) == [0, 5]  # the file lock: one rebuilt, the other found it done
    for s in stores:
        assert len(s.list("alice")) == 2 and len(s.list("bob")) == 2 and s.open_shared(got["live"])
        s.close()
    # the same across processes
    _remove_index(tmp_path)
    import time

    start = time.time() + 1.5
    procs = [subprocess.Popen([sys.executable, "-c", _CHILD, str(tmp_path), str(start)],
                              env={**os.environ, "PYTHONPATH": str(ROOT)}, stdout=subprocess.PIPE, text=True)
             for _ in range(2)]
    outs = [p.communicate(timeout=120)[0].split() for p in procs]
    assert all(p.returncode == 0 for p in procs)
    assert sorted(int(o[0]) for o in outs) == [0, 5] and all(int(o[1]) == 4 for o in outs)
    with sqlite3.connect(tmp_path / "index.sqlite") as conn:
        assert conn.execute("SELECT count(*) FROM runs").fetchone()[0] == 4
        assert conn.execute("SELECT count(*) FROM links").fetchone()[0] == 2


def test_meta_json_follows_rename_star_share_and_revoke(tmp_path, trained):
    run, data = trained
    s = RunStore(tmp_path)
    rec = s.save(run, data, owner="me", source="train", label="a")
    meta_path = tmp_path / "runs" / rec.run_id / "meta.json"
    meta = json.loads(meta_path.read_text())
    assert (meta["owner"], meta["label"], meta["starred"], meta["links"]) == ("me", "a", False, [])
    assert set(meta["files"]) == {n for n in os.listdir(meta_path.parent) if n != "meta.json"}
    s.rename(rec.run_id, "me", "b")
    s.star(rec.run_id, "me", True)
    token = s.share(rec.run_id, "me")
    meta = json.loads(meta_path.read_text())
    assert (meta["label"], meta["starred"], [(k["token"], k["revoked"]) for k in meta["links"]]) == (
        "b", True, [(token, False)])
    s.revoke(rec.run_id, "me")
    assert [k["revoked"] for k in json.loads(meta_path.read_text())["links"]] == [True]
    assert list((tmp_path / "tmp").iterdir()) == []  # the temp files of the atomic rewrites are gone
    s.close()


def test_an_index_deleted_under_a_running_store_is_rebuilt_on_next_use(tmp_path, trained, trained_csv):
    got = _populate(tmp_path, trained, trained_csv)
    s = RunStore(tmp_path)
    assert len(s.list("alice")) == 2
    _remove_index(tmp_path)  # e.g. someone cleaned the data folder while the server runs
    assert [r.run_id for r in s.list("alice")] == [r.run_id for r in got["records"]["alice"]]
    assert s.reindexed == 5 and (tmp_path / "index.sqlite").exists()
    assert s.open_shared(got["live"])[0].run_id == got["a"].run_id
    s.close()


def test_a_stale_write_ahead_log_of_a_deleted_index_is_set_aside(tmp_path, trained, trained_csv):
    got = _populate(tmp_path, trained, trained_csv)
    (tmp_path / "index.sqlite").unlink()
    (tmp_path / "index.sqlite-wal").write_bytes(b"\x37\x7f\x06\x82" + b"\x00" * 28)  # a log without its file
    s = RunStore(tmp_path)
    assert s.available and len(s.list("bob")) == 2 and list(tmp_path.glob("index.sqlite-wal.stale-*"))
    assert {r.run_id for r in s.list("alice")} == {got["a"].run_id, got["b"].run_id}
    s.close()


def test_an_index_made_by_another_store_between_two_reads_is_not_taken_for_a_foreign_file(tmp_path, monkeypatch):
    """Two stores start on an empty folder: the other one creates the schema just after this one read
    ``user_version`` 0.  This one must see a run index of this lab (stop 25's CI found one listing nothing)."""
    real_connect = sqlite3.connect
    made = []

    class Racing(sqlite3.Connection):
        def execute(self, sql, *args):
            if sql.startswith("PRAGMA journal_mode") and not made:  # after this one read version 0
                other = real_connect(tmp_path / "index.sqlite", isolation_level=None)
                other.execute("PRAGMA journal_mode=WAL")
                other.executescript("BEGIN IMMEDIATE;\n" + store._SCHEMA + store._SCHEMA_2
                                    + f"PRAGMA user_version={store.SCHEMA_VERSION};\nCOMMIT;")
                other.close()
                made.append(True)
            return super().execute(sql, *args)

    monkeypatch.setattr(store.sqlite3, "connect", lambda *a, **k: real_connect(*a, factory=Racing, **k))
    s = RunStore(tmp_path)
    assert made and s.available, s.why
    s.close()
