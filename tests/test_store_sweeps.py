"""Saved sweeps in the run store (issue 19: "A sweep is saved and can be shared like a run")."""

from __future__ import annotations

import errno
import json
import math
import sqlite3

import numpy as np
import pytest

from ensemble_core import store
from ensemble_core.store import MAX_SWEEP_BYTES, RunStore, StoreError, StoreUnavailable, SweepRecord


def _summary(n: int = 3, done: int = 2, status: str = "running") -> dict:
    trials = [{"params": {"optim.lr": 10.0 ** -(i + 1)}, "status": "done" if i < done else "queued",
               "metrics": {"test_nll": 1.0 + i / 10 if i < done else None},
               "val_curve": [2.0 - 0.1 * k for k in range(5)] if i < done else []} for i in range(n)]
    return {"label": "lr sweep", "task": "regression", "metric": "test_nll", "status": status,
            "spec": {"grid": {"optim.lr": [0.1, 0.01, 0.001]}}, "trials": trials}


def test_a_sweep_round_trips(tmp_path):
    s = RunStore(tmp_path)
    summ = _summary()
    sid = s.save_sweep("me", summ, run_ids=["A" * 22, None, None])
    assert len(sid) >= 22 and (tmp_path / "sweeps" / sid / "summary.json").is_file()
    rec, got, ids = s.load_sweep(sid, "me")
    assert got == summ and ids == ["A" * 22, None, None]
    assert isinstance(rec, SweepRecord)
    assert (rec.sweep_id, rec.owner, rec.label, rec.task, rec.metric, rec.n_trials, rec.n_done, rec.status,
            rec.shared, rec.damaged) == (sid, "me", "lr sweep", "regression", "test_nll", 3, 2, "running",
                                         False, None)
    assert rec.created == rec.updated and s.list_sweeps("me") == [rec]
    # explicit counts win over what the trials say; numpy values, tuples and non-finite floats are stored as JSON
    sid2 = s.save_sweep("me", {"n_trials": 8, "n_done": 1, "status": "done",
                               "trials": [{"x": np.float32(0.5), "y": (1, 2), "nll": math.inf, "z": np.arange(2),
                                           "w": float("nan")}]})
    rec2, got2, ids2 = s.load_sweep(sid2, "me")
    assert (rec2.n_trials, rec2.n_done, rec2.status, rec2.label, ids2) == (8, 1, "done", "", [])
    assert got2["trials"] == [{"x": 0.5, "y": [1, 2], "nll": None, "z": [0, 1], "w": None}]
    assert [r.sweep_id for r in s.list_sweeps("me")] == [sid2, sid] and len(s.list_sweeps("me", limit=1)) == 1


def test_a_sweep_is_updated_in_place_and_keeps_its_link(tmp_path):
    s = RunStore(tmp_path)
    sid = s.save_sweep("me", _summary(done=1), run_ids=["A" * 22])
    token = s.share_sweep(sid, "me")
    first = s.load_sweep(sid, "me")[0]
    final = _summary(done=3, status="done")
    assert s.save_sweep("me", final, sweep_id=sid, run_ids=["A" * 22, "B" * 22, None]) == sid
    rec, got, ids = s.load_sweep(sid, "me")
    assert got == final and ids == ["A" * 22, "B" * 22, None]
    assert (rec.n_done, rec.status, rec.shared, rec.created) == (3, "done", True, first.created)
    assert rec.updated >= first.updated and [r.sweep_id for r in s.list_sweeps("me")] == [sid]
    assert s.open_shared_sweep(token)[1] == final  # the link shows the latest results
    assert sorted(p.name for p in (tmp_path / "sweeps" / sid).iterdir()) == ["meta.json", "summary.json"]
    assert list((tmp_path / "tmp").iterdir()) == []
    with pytest.raises(StoreError, match="no such sweep"):
        s.save_sweep("me", final, sweep_id="B" * 22)  # an id that was never saved is not created


def test_share_revoke_and_open_a_sweep(tmp_path):
    s = RunStore(tmp_path)
    sid = s.save_sweep("me", _summary())
    token = s.share_sweep(sid, "me")
    assert len(token) >= 32 and s.share_sweep(sid, "me") == token and s.load_sweep(sid, "me")[0].shared
    rec, summ = s.open_shared_sweep(token)
    assert rec.sweep_id == sid and summ == _summary()
    s.revoke_sweep(sid, "me")
    assert not s.list_sweeps("me")[0].shared
    with pytest.raises(StoreError, match="this link was revoked or never existed"):
        s.open_shared_sweep(token)
    token2 = s.share_sweep(sid, "me")
    assert token2 != token and s.open_shared_sweep(token2)[0].sweep_id == sid
    for bad in ("", "x", "../../etc/passwd" * 3, None, 12, "A" * 32):
        with pytest.raises(StoreError, match="this link was revoked or never existed"):
            s.open_shared_sweep(bad)
    with pytest.raises(StoreError):  # a sweep link is not a run link, and the other way round
        s.open_shared(token2)
    s.delete_sweep(sid, "me")
    assert s.list_sweeps("me") == [] and not (tmp_path / "sweeps" / sid).exists()
    with pytest.raises(StoreError, match="this link was revoked or never existed"):
        s.open_shared_sweep(token2)


def test_another_owner_cannot_reach_a_sweep(tmp_path):
    s = RunStore(tmp_path)
    sid = s.save_sweep("alice", _summary())
    assert s.list_sweeps("bob") == []
    for action in (lambda: s.load_sweep(sid, "bob"), lambda: s.delete_sweep(sid, "bob"),
                   lambda: s.share_sweep(sid, "bob"), lambda: s.revoke_sweep(sid, "bob"),
                   lambda: s.save_sweep("bob", {"trials": []}, sweep_id=sid)):
        with pytest.raises(StoreError, match="no such sweep"):
            action()
    rec, summ, _ids = s.load_sweep(sid, "alice")
    assert summ == _summary() and not rec.shared and rec.owner == "alice"
    for bad_id in ("../x", "", "a" * 300, None):
        with pytest.raises(StoreError):
            s.load_sweep(bad_id, "alice")


def test_bad_summaries_are_refused_with_a_clear_error(tmp_path):
    s = RunStore(tmp_path)
    big = {"trials": [{"curve": [0.123456789] * 1000} for _ in range(MAX_SWEEP_BYTES // 12_000 + 10)]}
    assert len(json.dumps(big)) > MAX_SWEEP_BYTES
    with pytest.raises(StoreError, match="over the 4.0 MB"):
        s.save_sweep("me", big)
    for bad, match in (([], "must be a dict"), ({"trials": [object()]}, "only JSON values"),
                       ({"status": "paused"}, "status must be one of"), ({(1, 2): 3}, "keys must be text"),
                       ({"label": "x" * 500}, "at most 200")):
        with pytest.raises(StoreError, match=match):
            s.save_sweep("me", bad)
    with pytest.raises(StoreError, match="run_ids"):
        s.save_sweep("me", {}, run_ids=["../etc"])
    assert s.list_sweeps("me") == [] and list((tmp_path / "sweeps").iterdir()) == []


def test_a_restart_keeps_sweeps_and_links(tmp_path):
    s = RunStore(tmp_path)
    sid = s.save_sweep("me", _summary(), run_ids=[None, "A" * 22, None])
    token = s.share_sweep(sid, "me")
    before = s.list_sweeps("me")
    s.close()
    s2 = RunStore(tmp_path)
    assert s2.list_sweeps("me") == before
    assert s2.open_shared_sweep(token)[1] == _summary()
    assert s2.load_sweep(sid, "me")[2] == [None, "A" * 22, None]


def test_a_damaged_summary_is_listed_and_refused(tmp_path):
    s = RunStore(tmp_path)
    a = s.save_sweep("me", _summary())
    b = s.save_sweep("me", _summary())
    pa = tmp_path / "sweeps" / a / "summary.json"
    pa.write_bytes(pa.read_bytes()[:-20])  # truncated: found at start-up by its size
    pb = tmp_path / "sweeps" / b / "summary.json"
    pb.write_bytes(pb.read_bytes().replace(b"lr sweep", b"LR SWEEP"))  # same size, changed: found on load
    s.close()
    s = RunStore(tmp_path)
    by_id = {r.sweep_id: r for r in s.list_sweeps("me")}
    assert "truncated" in by_id[a].damaged and by_id[b].damaged is None
    for sid in (a, b):
        with pytest.raises(StoreError, match="damaged"):
            s.load_sweep(sid, "me")
    assert "changed" in {r.sweep_id: r for r in s.list_sweeps("me")}[b].damaged
    s.delete_sweep(a, "me")  # a damaged sweep can still be deleted
    assert [r.sweep_id for r in s.list_sweeps("me")] == [b]


def test_an_unwritable_store_raises_store_unavailable(tmp_path, monkeypatch):
    (tmp_path / "file").write_text("x")
    s = RunStore(tmp_path / "file" / "data")
    assert not s.available and s.list_sweeps("me") == []
    with pytest.raises(StoreUnavailable, match="not being kept"):
        s.save_sweep("me", _summary())
    with pytest.raises(StoreError):
        s.load_sweep("A" * 22, "me")
    with pytest.raises(StoreError):
        s.open_shared_sweep("A" * 32)
    # a full disk: StoreUnavailable, nothing listed or left behind, and it recovers
    s = RunStore(tmp_path / "ok")
    sid = s.save_sweep("me", _summary())

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(store, "_write_files", full)
    monkeypatch.setattr(store, "_write_synced", full)
    with pytest.raises(StoreUnavailable, match="full"):
        s.save_sweep("me", _summary())
    with pytest.raises(StoreUnavailable, match="full"):
        s.save_sweep("me", _summary(status="done"), sweep_id=sid)
    assert not s.available and list((tmp_path / "ok" / "tmp").iterdir()) == []
    monkeypatch.undo()
    assert s.load_sweep(sid, "me")[0].status == "running"  # the failed update changed nothing
    s.save_sweep("me", _summary(status="done"), sweep_id=sid)
    assert s.available and [r.status for r in s.list_sweeps("me")] == ["done"]


def test_retention_keeps_the_newest_sweeps_with_a_notice(tmp_path, monkeypatch):
    monkeypatch.setattr(store, "MAX_SWEEPS_PER_OWNER", 3)
    s = RunStore(tmp_path)
    ids = [s.save_sweep("me", {**_summary(), "label": f"s{i}"}) for i in range(3)]
    s.save_sweep("me", _summary(status="done"), sweep_id=ids[0])  # updating makes it the newest
    s.save_sweep("other", _summary())
    new = s.save_sweep("me", {**_summary(), "label": "s3"})
    assert [r.sweep_id for r in s.list_sweeps("me")] == [new, ids[0], ids[2]]
    assert not (tmp_path / "sweeps" / ids[1]).exists()
    [notice] = s.pruned_notice("me")
    assert "“s1”" in notice and "at most 3 sweeps" in notice
    assert len(s.list_sweeps("other")) == 1 and s.pruned_notice("other") == []


def test_sweeps_count_toward_the_disk_cap(tmp_path):
    from ensemble_core.config import RunConfig

    s = RunStore(tmp_path, max_total_bytes=20_000)
    old = s.save_failed(RunConfig(), owner="me", source="train", error="first")
    new = s.save_failed(RunConfig(), owner="me", source="train", error="second")
    assert old.bytes + new.bytes < 20_000
    sid = s.save_sweep("me", {"trials": [{"curve": [0.5] * 4100}]})  # ~17 KB: over the cap with both runs
    size = (tmp_path / "sweeps" / sid / "summary.json").stat().st_size
    assert old.bytes + new.bytes + size > 20_000 >= new.bytes + size
    assert [r.run_id for r in s.list("me")] == [new.run_id]  # the oldest unstarred run made room
    assert any("the store keeps at most" in n for n in s.pruned_notice("me"))
    assert [r.sweep_id for r in s.list_sweeps("me")] == [sid]


def test_a_schema_1_index_is_migrated_and_keeps_its_runs(tmp_path):
    from ensemble_core.config import RunConfig

    s = RunStore(tmp_path)
    rec = s.save_failed(RunConfig(), owner="me", source="train", error="boom")
    s.close()
    with sqlite3.connect(tmp_path / "index.sqlite") as conn:  # an index as schema 1 wrote it
        conn.execute("DROP TABLE sweeps")
        conn.execute("DROP TABLE sweep_links")
        conn.execute("PRAGMA user_version=1")
    s = RunStore(tmp_path)
    assert s.available and [r.run_id for r in s.list("me")] == [rec.run_id]
    sid = s.save_sweep("me", _summary())
    assert s.load_sweep(sid, "me")[1] == _summary()
    with sqlite3.connect(tmp_path / "index.sqlite") as conn:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == store.SCHEMA_VERSION == 2
