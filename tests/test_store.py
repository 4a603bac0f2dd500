"""The run store (ensemble_core/store.py): round trips, concurrency, crashes, damage, retention, links."""

from __future__ import annotations

import errno
import fcntl
import json
import os
import sqlite3
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest

from ensemble_core import persistence, store
from ensemble_core.config import RunConfig
from ensemble_core.data import add_training_point, load_dataset
from ensemble_core.predict import evaluate_run, predict
from ensemble_core.store import RunStore, StoreError, StoreUnavailable
from ensemble_core.training import train

ROOT = Path(__file__).resolve().parents[1]
TINY = {"data.n": 40, "strategy.members": 2, "optim.epochs": 3, "model.width": 8}


def _csv_text(n: int = 60, seed: int = 0) -> bytes:
    g = np.random.default_rng(seed)
    x = g.uniform(-3, 3, size=(n, 2))
    y = x[:, 0] ** 3 - x[:, 1] + g.normal(size=n)
    return ("a,b,y\n" + "\n".join(f"{a:.5f},{b:.5f},{c:.5f}" for a, b, c in zip(x[:, 0], x[:, 1], y)) + "\n").encode()


@pytest.fixture(scope="module")
def trained():
    """A tiny synthetic run and its data."""
    cfg = RunConfig().replace(**TINY)
    data = load_dataset(cfg.data)
    return train(cfg, data), data


@pytest.fixture(scope="module")
def trained_csv():
    """A tiny run on an uploaded CSV, with the CSV's bytes."""
    raw = _csv_text()
    cfg = RunConfig().replace(**{**TINY, "data.source": "csv", "data.name": "toy.csv"})
    data = load_dataset(cfg.data, raw)
    return train(cfg, data), data, raw


def _same_predictions(a, b, x) -> None:
    pa, pb = predict(a, x), predict(b, x)
    np.testing.assert_array_equal(pa.mean, pb.mean)
    np.testing.assert_array_equal(pa.total, pb.total)


# ---------------------------------------------------------------- round trips
def test_saved_run_loads_and_predicts_identically(tmp_path, trained):
    run, data = trained
    s = RunStore(tmp_path)
    assert s.available and s.why is None
    rec = s.save(run, data, owner="me", source="train", label="first")
    scores = evaluate_run(run, data.x_test, data.y_test)
    assert (rec.owner, rec.label, rec.status, rec.source, rec.task) == ("me", "first", "done", "train", "regression")
    assert (rec.members, rec.epochs, rec.strategy) == (2, 3, "independent")
    assert rec.test_nll == pytest.approx(scores["nll"]) and rec.test_rmse == pytest.approx(scores["rmse"])
    assert rec.test_accuracy is None and rec.damaged is None and not rec.shared and not rec.starred
    assert rec.bytes == sum(p.stat().st_size for p in (tmp_path / "runs" / rec.run_id).iterdir())
    assert len(rec.run_id) >= 22  # 16 random bytes
    run2, data2 = s.load(rec.run_id, "me")
    assert run2.config == run.config and run2.epochs_done == run.epochs_done
    _same_predictions(run, run2, data.x_test)
    for split in ("train", "val", "test"):
        np.testing.assert_array_equal(getattr(data, f"x_{split}"), getattr(data2, f"x_{split}"))
        np.testing.assert_array_equal(getattr(data, f"y_{split}"), getattr(data2, f"y_{split}"))
    # the export is byte for byte the zip persistence makes of the same run
    assert s.export_zip(rec.run_id, "me") == persistence.export_zip(run, data)
    assert s.read_config(rec.run_id, "me") == run.config


def test_csv_is_stored_once_by_hash_and_rebuilds_the_data(tmp_path, trained_csv):
    run, data, raw = trained_csv
    s = RunStore(tmp_path)
    a = s.save(run, data, owner="me", source="train", csv_bytes=raw)
    b = s.save(run, data, owner="you", source="train", csv_bytes=raw)
    assert [p.name for p in (tmp_path / "csv").iterdir()] == [__import__("hashlib").sha256(raw).hexdigest() + ".csv"]
    run2, data2 = s.load(b.run_id, "you")
    _same_predictions(run, run2, data.x_test)
    np.testing.assert_array_equal(data2.x_train, data.x_train)
    np.testing.assert_array_equal(data2.y_test, data.y_test)
    assert s.load_csv(a.run_id, "me") == raw and a.note is None
    s.delete(a.run_id, "me")
    assert len(list((tmp_path / "csv").iterdir())) == 1  # still used by b
    s.delete(b.run_id, "you")
    assert list((tmp_path / "csv").iterdir()) == []  # nobody uses it: removed


def test_csv_over_the_cap_keeps_the_run_without_its_data(tmp_path, trained_csv):
    run, data, raw = trained_csv
    s = RunStore(tmp_path, max_csv_bytes=len(raw) - 1)
    rec = s.save(run, data, owner="me", source="train", csv_bytes=raw)
    assert rec.note and "not kept" in rec.note and "without its data" in rec.note
    assert list((tmp_path / "csv").iterdir()) == []
    run2, data2 = s.load(rec.run_id, "me")
    assert data2 is None
    _same_predictions(run, run2, data.x_test)


def test_points_added_by_clicking_are_kept(tmp_path):
    cfg = RunConfig().replace(**TINY)
    data = add_training_point(add_training_point(load_dataset(cfg.data), 0.5, 10.0), -1.25, 3.0)
    run = train(cfg, data)
    s = RunStore(tmp_path)
    rec = s.save(run, data, owner="me", source="train")
    assert rec.dataset.endswith("+ 2 added points")
    _run2, data2 = s.load(rec.run_id, "me")
    np.testing.assert_array_equal(data2.x_train, data.x_train)
    np.testing.assert_array_equal(data2.y_train, data.y_train)
    assert data2.x_mean == pytest.approx(data.x_mean) and data2.y_std == pytest.approx(data.y_std)


def test_failed_run_keeps_config_and_error_only(tmp_path):
    cfg = RunConfig().replace(**TINY)
    s = RunStore(tmp_path)
    rec = s.save_failed(cfg, owner="me", source="train", error="every member diverged: try a smaller\nlearning rate")
    assert (rec.status, rec.error, rec.epochs, rec.seconds) == (
        "failed", "every member diverged: try a smaller learning rate", 0, None)
    assert sorted(p.name for p in (tmp_path / "runs" / rec.run_id).iterdir()) == ["config.json", "meta.json", "store.json"]
    assert s.read_config(rec.run_id, "me") == cfg
    with pytest.raises(StoreError, match="failed"):
        s.load(rec.run_id, "me")
    with pytest.raises(StoreError, match="failed"):
        s.export_zip(rec.run_id, "me")
    with pytest.raises(StoreError, match="failed run"):
        s.share(rec.run_id, "me")


def test_list_filters_search_and_order(tmp_path, trained):
    run, data = trained
    s = RunStore(tmp_path)
    a = s.save(run, data, owner="me", source="train", label="Baseline 50%")
    b = s.save(run, data, owner="me", source="lesson")
    s.save_failed(run.config.replace(**{"strategy.kind": "bootstrap"}), owner="me", source="compare", error="boom")
    ids = [r.run_id for r in s.list("me")]
    assert len(ids) == 3 and ids[1:] == [b.run_id, a.run_id]  # newest first
    assert [r.run_id for r in s.list("me", search="baseline")] == [a.run_id]
    assert [r.run_id for r in s.list("me", search="50%")] == [a.run_id]
    assert s.list("me", search="5_%") == []  # LIKE wildcards are literal
    assert [r.status for r in s.list("me", strategy="bootstrap")] == ["failed"]
    assert len(s.list("me", dataset=a.dataset)) == 3 and s.list("me", dataset="nope") == []
    assert len(s.list("me", limit=2)) == 2
    s.rename(b.run_id, "me", "  renamed\x00 ")
    s.star(b.run_id, "me", True)
    got = s.get(b.run_id, "me")
    assert got.label == "renamed" and got.starred
    with pytest.raises(StoreError, match="at most 200"):
        s.rename(b.run_id, "me", "x" * 201)


# ---------------------------------------------------------------- concurrency
def test_twenty_threads_saving_at_once(tmp_path, trained):
    run, data = trained
    s = RunStore(tmp_path)
    barrier, out, errors = threading.Barrier(20), [], []

    def work(i: int) -> None:
        try:
            barrier.wait()
            out.append(s.save(run, data, owner=f"u{i % 4}", source="train", label=f"t{i}"))
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == [] and len({r.run_id for r in out}) == 20
    listed = [r for i in range(4) for r in s.list(f"u{i}")]
    assert len(listed) == 20 and all(len(s.list(f"u{i}")) == 5 for i in range(4))
    for rec in listed[::4]:
        _same_predictions(run, s.load(rec.run_id, rec.owner)[0], data.x_test)
    assert list((tmp_path / "tmp").iterdir()) == []


# ---------------------------------------------------------------- crashes
# One child process loads torch once, then forks a grandchild per store folder; the grandchild saves
# and is SIGKILLed, either by the store's test hook at a named step or by the child at a random moment
# (then three threads save in a loop, with a cap of 3 runs per owner, so kills also land in pruning).
# The child itself never runs a torch computation, so forking it is safe.
_CHILD = r"""
import os, random, signal, sys, threading, time
from ensemble_core import store
from ensemble_core.data import load_dataset
from ensemble_core.persistence import load_run
mode, run_dir, csv_path, seed, *roots = sys.argv[1:]
run = load_run(run_dir)
raw = open(csv_path, 'rb').read()
data = load_dataset(run.config.data, raw)
steps = [*store.CRASH_STEPS, 'wrote run.json', 'wrote weights.safetensors']
rng = random.Random(int(seed))
for i, root in enumerate(roots):
    pid = os.fork()
    if pid == 0:
        try:
            s = store.RunStore(root, max_runs_per_owner=3)
            if mode == 'steps':
                store._CRASH_AT = steps[i]
                s.save(run, data, owner='k0', source='cli', csv_bytes=raw)
            else:
                def work(j):
                    while True:
                        s.save(run, data, owner='k%d' % (j % 2), source='cli', csv_bytes=raw)
                for j in range(3):
                    threading.Thread(target=work, args=(j,), daemon=True).start()
                time.sleep(60)
        finally:
            os._exit(3)
    if mode == 'random':
        time.sleep(rng.uniform(0.05, 0.6))
        os.kill(pid, signal.SIGKILL)
    _, status = os.waitpid(pid, 0)
    print(os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL, flush=True)
"""


@pytest.fixture(scope="module")
def crash_inputs(tmp_path_factory, trained_csv):
    run, _data, raw = trained_csv
    d = tmp_path_factory.mktemp("crash_inputs")
    persistence.save_run(run, d / "run")
    (d / "data.csv").write_bytes(raw)
    return d / "run", d / "data.csv"


def _crash_children(mode: str, roots: list[Path], inputs) -> None:
    """Run the child; every grandchild must have died of SIGKILL."""
    res = subprocess.run([sys.executable, "-c", _CHILD, mode, str(inputs[0]), str(inputs[1]), "17",
                          *map(str, roots)], env={**os.environ, "PYTHONPATH": str(ROOT)},
                         capture_output=True, text=True, timeout=300)
    assert res.returncode == 0 and res.stdout.split() == ["True"] * len(roots), res.stderr[-3000:]


def _every_listed_run_opens(root: Path) -> int:
    s = RunStore(root, max_runs_per_owner=3)
    assert s.available, s.why
    listed = [r for owner in ("k0", "k1", "seed") for r in s.list(owner)]
    for rec in listed:
        assert rec.damaged is None
        run, data = s.load(rec.run_id, rec.owner)
        assert data is not None and run.epochs_done == 3
    # start-up removed every leftover: no temp folders, no unlisted run folders, only used CSVs
    assert list((root / "tmp").iterdir()) == []
    assert sorted(p.name for p in (root / "runs").iterdir()) == sorted(r.run_id for r in listed)
    assert len(list((root / "csv").iterdir())) == (1 if listed else 0)
    s.close()
    return len(listed)


@pytest.mark.slow
def test_a_kill_at_each_step_of_a_save_never_leaves_a_broken_listed_run(tmp_path, trained_csv, crash_inputs):
    run, data, raw = trained_csv
    steps = [*store.CRASH_STEPS, "wrote run.json", "wrote weights.safetensors"]
    roots = [tmp_path / f"s{i}" for i in range(len(steps))]
    for root in roots:
        RunStore(root).save(run, data, owner="seed", source="train", csv_bytes=raw)
    _crash_children("steps", roots, crash_inputs)
    for step, root in zip(steps, roots):
        assert _every_listed_run_opens(root) == (2 if step in ("renamed", "indexed", "pruned") else 1), step


@pytest.mark.slow
def test_random_kills_during_saves_never_leave_a_broken_listed_run(tmp_path, crash_inputs):
    roots = [tmp_path / f"r{i}" for i in range(8)]
    _crash_children("random", roots, crash_inputs)
    assert sum(_every_listed_run_opens(root) for root in roots) >= 1  # saves did happen before the kills


# ---------------------------------------------------------------- damage, schema, orphans
def test_truncated_or_missing_file_lists_the_run_as_damaged(tmp_path, trained):
    run, data = trained
    s = RunStore(tmp_path)
    a = s.save(run, data, owner="me", source="train")
    b = s.save(run, data, owner="me", source="train")
    w = tmp_path / "runs" / a.run_id / "weights.safetensors"
    w.write_bytes(w.read_bytes()[:100])
    (tmp_path / "runs" / b.run_id / "run.json").unlink()
    s.close()
    s2 = RunStore(tmp_path)  # start-up compares sizes
    by_id = {r.run_id: r for r in s2.list("me")}
    assert "weights.safetensors" in by_id[a.run_id].damaged and "truncated" in by_id[a.run_id].damaged
    assert "run.json is missing" in by_id[b.run_id].damaged
    for rid in (a.run_id, b.run_id):
        with pytest.raises(StoreError, match="damaged"):
            s2.load(rid, "me")
    s2.delete(a.run_id, "me")  # a damaged run can still be deleted
    assert s2.get(a.run_id, "me") is None


def test_changed_content_is_caught_on_load_and_marked(tmp_path, trained):
    run, data = trained
    s = RunStore(tmp_path)
    rec = s.save(run, data, owner="me", source="train")
    w = tmp_path / "runs" / rec.run_id / "weights.safetensors"
    blob = bytearray(w.read_bytes())
    blob[-5] ^= 0xFF  # same size, one weight changed
    w.write_bytes(bytes(blob))
    assert s.get(rec.run_id, "me").damaged is None  # listing reads no file
    with pytest.raises(StoreError, match="weights.safetensors changed since it was saved"):
        s.load(rec.run_id, "me")
    assert "weights.safetensors" in s.get(rec.run_id, "me").damaged
    with pytest.raises(StoreError, match="damaged"):
        s.export_zip(rec.run_id, "me")


def test_a_newer_schema_makes_the_store_unavailable_with_a_reason(tmp_path, trained):
    run, data = trained
    s = RunStore(tmp_path)
    s.save(run, data, owner="me", source="train")
    s.close()
    with sqlite3.connect(tmp_path / "index.sqlite") as conn:
        conn.execute(f"PRAGMA user_version={store.SCHEMA_VERSION + 1}")
    s2 = RunStore(tmp_path)
    assert not s2.available and "newer version" in s2.why and f"schema {store.SCHEMA_VERSION + 1}" in s2.why
    assert s2.list("me") == [] and s2.pruned_notice("me") == []
    with pytest.raises(StoreUnavailable, match="newer version"):
        s2.save(run, data, owner="me", source="train")
    with pytest.raises(StoreError, match="cannot be read"):
        s2.load("A" * 22, "me")


def test_an_index_that_is_not_sqlite_or_not_ours_is_refused(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "index.sqlite").write_bytes(b"this is not a database" * 100)
    s = RunStore(tmp_path / "a")  # not SQLite: moved aside (kept for a person) and rebuilt empty
    assert s.available and "moved to index.sqlite.corrupt-" in s.index_note
    [aside] = (tmp_path / "a").glob("index.sqlite.corrupt-*")
    assert aside.read_bytes() == b"this is not a database" * 100
    (tmp_path / "b").mkdir()
    with sqlite3.connect(tmp_path / "b" / "index.sqlite") as conn:
        conn.execute("CREATE TABLE other(x)")
    s = RunStore(tmp_path / "b")
    assert not s.available and "not a run index" in s.why


def test_start_up_removes_leftovers_and_reindexes_unlisted_folders(tmp_path, trained):
    run, data = trained
    s = RunStore(tmp_path)
    keep = s.save(run, data, owner="me", source="train")
    s.close()
    leftovers = [tmp_path / "tmp" / "half-written", tmp_path / "runs" / "AAAAAAAAAAAAAAAAAAAAAA"]
    for p in leftovers:
        p.mkdir()
        (p / "run.json").write_text("{}")
    (tmp_path / "csv" / ("0" * 64 + ".csv")).write_text("a,b\n1,2\n")
    fd = os.open(tmp_path / "lock", os.O_RDWR)
    fcntl.flock(fd, fcntl.LOCK_SH)  # another process is saving: its folders must survive
    try:
        RunStore(tmp_path).close()
        assert all(p.exists() for p in leftovers)
    finally:
        os.close(fd)
    s2 = RunStore(tmp_path)
    # the temp folder is a leftover; the run folder without an index row is kept and re-indexed: with no
    # readable owner it goes under "recovered", damaged (it has no store.json nor config.json)
    assert not leftovers[0].exists() and leftovers[1].exists() and s2.reindexed == 1
    [rec] = s2.list(store.RECOVERED_OWNER)
    assert rec.run_id == leftovers[1].name and "store.json" in rec.damaged and "config.json" in rec.damaged
    assert [r.run_id for r in s2.list("me")] == [keep.run_id]
    assert list((tmp_path / "csv").iterdir()) == []
    s2.close()


# ---------------------------------------------------------------- retention
def test_retention_count_prunes_oldest_unstarred_first_with_a_notice(tmp_path, trained):
    run, data = trained
    s = RunStore(tmp_path, max_runs_per_owner=3)
    recs = [s.save(run, data, owner="me", source="train", label=f"r{i}") for i in range(2)]
    s.star(recs[0].run_id, "me", True)
    other = s.save(run, data, owner="other", source="train")
    recs += [s.save(run, data, owner="me", source="train", label=f"r{i}") for i in range(2, 5)]
    assert [r.label for r in s.list("me")] == ["r4", "r3", "r0"]  # r1, r2 pruned; starred r0 kept
    notes = s.pruned_notice("me")
    assert len(notes) == 2 and "“r1”" in notes[0] and "“r2”" in notes[1] and "at most 3 runs" in notes[0]
    assert s.pruned_notice("me") == [] and s.pruned_notice("other") == []
    assert s.get(other.run_id, "other") is not None  # other owners are not counted
    assert not (tmp_path / "runs" / recs[1].run_id).exists()


def test_retention_total_bytes_prunes_across_owners(tmp_path, trained):
    run, data = trained
    probe = RunStore(tmp_path / "probe").save(run, data, owner="x", source="train")
    s = RunStore(tmp_path / "s", max_total_bytes=int(probe.bytes * 2.5))
    a = s.save(run, data, owner="alice", source="train")
    b = s.save(run, data, owner="bob", source="train")
    s.star(a.run_id, "alice", True)
    c = s.save(run, data, owner="carol", source="train")
    assert s.get(a.run_id, "alice") and s.get(c.run_id, "carol")  # starred and newest kept
    assert s.get(b.run_id, "bob") is None  # the oldest unstarred went
    assert "MB of runs" in s.pruned_notice("bob")[0]
    s.star(c.run_id, "carol", True)
    d = s.save(run, data, owner="dave", source="train")  # every other run starred: over the cap, kept
    assert s.get(d.run_id, "dave") is not None


# ---------------------------------------------------------------- unavailable
def test_an_unwritable_location_makes_the_store_unavailable(tmp_path, trained):
    run, data = trained
    (tmp_path / "file").write_text("x")
    s = RunStore(tmp_path / "file" / "data")
    assert not s.available and "is not a folder" in s.why
    assert s.list("me") == [] and s.get("A" * 22, "me") is None and s.pruned_notice("me") == []
    with pytest.raises(StoreUnavailable, match="not being kept"):
        s.save(run, data, owner="me", source="train")


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders")
def test_a_read_only_folder_makes_the_store_unavailable(tmp_path, trained):  # pragma: no cover - not as root
    run, data = trained
    (tmp_path / "ro").mkdir(mode=0o555)
    s = RunStore(tmp_path / "ro" / "data")
    assert not s.available and "read-only" in s.why


def test_a_full_disk_raises_unavailable_and_recovers(tmp_path, trained, monkeypatch):
    run, data = trained
    s = RunStore(tmp_path)

    def full(folder, files):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(store, "_write_files", full)
    with pytest.raises(StoreUnavailable, match="disk .* is full"):
        s.save(run, data, owner="me", source="train")
    assert not s.available and "full" in s.why and s.list("me") == []
    assert list((tmp_path / "tmp").iterdir()) == []
    monkeypatch.undo()
    s.save(run, data, owner="me", source="train")
    assert s.available and len(s.list("me")) == 1


def test_a_locked_index_raises_unavailable_and_leaves_nothing_behind(tmp_path, trained):
    run, data = trained
    s = RunStore(tmp_path, busy_timeout_s=0.2)
    other = sqlite3.connect(tmp_path / "index.sqlite", isolation_level=None)
    other.execute("BEGIN EXCLUSIVE")
    try:
        with pytest.raises(StoreUnavailable, match="locked"):
            s.save(run, data, owner="me", source="train")
        assert not s.available and "locked" in s.why
    finally:
        other.execute("ROLLBACK")
        other.close()
    assert list((tmp_path / "runs").iterdir()) == [] and s.list("me") == []
    s.save(run, data, owner="me", source="train")
    assert s.available


# ---------------------------------------------------------------- links, isolation, restart
def test_share_revoke_and_open_shared_survive_a_restart(tmp_path, trained):
    run, data = trained
    s = RunStore(tmp_path)
    rec = s.save(run, data, owner="me", source="train")
    token = s.share(rec.run_id, "me")
    assert len(token) >= 32 and s.share(rec.run_id, "me") == token  # 192 bits; same link while active
    assert s.get(rec.run_id, "me").shared
    s.close()
    s2 = RunStore(tmp_path)
    got, run2, data2 = s2.open_shared(token)
    assert got.run_id == rec.run_id and data2 is not None
    _same_predictions(run, run2, data.x_test)
    s2.revoke(rec.run_id, "me")
    assert not s2.get(rec.run_id, "me").shared
    with pytest.raises(StoreError, match="revoked"):
        s2.open_shared(token)
    token2 = s2.share(rec.run_id, "me")
    assert token2 != token and s2.open_shared(token2)[0].run_id == rec.run_id
    s2.delete(rec.run_id, "me")
    with pytest.raises(StoreError, match="unknown"):
        s2.open_shared(token2)
    for bad in ("", "x", "../../etc/passwd" * 3, None, 12):
        with pytest.raises(StoreError, match="not valid"):
            s2.open_shared(bad)


def test_an_owner_cannot_reach_another_owners_runs(tmp_path, trained):
    run, data = trained
    s = RunStore(tmp_path)
    rec = s.save(run, data, owner="alice", source="train")
    assert s.get(rec.run_id, "bob") is None and s.list("bob") == []
    for action in (lambda: s.load(rec.run_id, "bob"), lambda: s.delete(rec.run_id, "bob"),
                   lambda: s.rename(rec.run_id, "bob", "mine"), lambda: s.star(rec.run_id, "bob", True),
                   lambda: s.share(rec.run_id, "bob"), lambda: s.revoke(rec.run_id, "bob"),
                   lambda: s.export_zip(rec.run_id, "bob"), lambda: s.read_config(rec.run_id, "bob"),
                   lambda: s.load_csv(rec.run_id, "bob")):
        with pytest.raises(StoreError, match="no such run"):
            action()
    after = s.get(rec.run_id, "alice")
    assert after.label == "" and not after.starred and not after.shared
    for bad_id in ("../x", "", "a" * 300, None):
        assert s.get(bad_id, "alice") is None
        with pytest.raises(StoreError):
            s.load(bad_id, "alice")
    with pytest.raises(StoreError, match="owner"):
        s.list("")


def test_a_new_store_on_the_same_folder_sees_runs_links_and_notices(tmp_path, trained):
    run, data = trained
    s = RunStore(tmp_path, max_runs_per_owner=1)
    s.save(run, data, owner="me", source="train", label="old")
    rec = s.save(run, data, owner="me", source="cli", label="new")
    s.star(rec.run_id, "me", True)
    token = s.share(rec.run_id, "me")
    s.close()
    s2 = RunStore(tmp_path, max_runs_per_owner=1)
    [got] = s2.list("me")
    assert (got.run_id, got.label, got.starred, got.shared, got.source) == (rec.run_id, "new", True, True, "cli")
    assert s2.open_shared(token)[0].run_id == rec.run_id
    assert len(s2.pruned_notice("me")) == 1


def test_default_is_one_instance_per_data_dir(tmp_path, monkeypatch):
    monkeypatch.setenv(store.DATA_DIR_ENV, str(tmp_path / "d1"))
    got: list[RunStore] = []
    threads = [threading.Thread(target=lambda: got.append(RunStore.default())) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len({id(g) for g in got}) == 1 and got[0].root == tmp_path / "d1" and got[0].available
    monkeypatch.setenv(store.MAX_RUNS_ENV, "7")
    assert RunStore.default().max_runs_per_owner == 7
    monkeypatch.setenv(store.DATA_DIR_ENV, str(tmp_path / "d2"))
    assert RunStore.default().root == tmp_path / "d2"


def test_store_json_says_what_the_index_says(tmp_path, trained):
    run, data = trained
    s = RunStore(tmp_path)
    rec = s.save(run, data, owner="me", source="train")
    meta = json.loads((tmp_path / "runs" / rec.run_id / "store.json").read_text())
    assert meta["run_id"] == rec.run_id and meta["owner"] == "me" and meta["test_nll"] == rec.test_nll
