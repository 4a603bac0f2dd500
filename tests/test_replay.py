"""The watchable pace and the replay: same result bit for bit, previews recorded, bounded, exported and imported."""

from __future__ import annotations

import json
import time

import numpy as np
import pytest
import torch

from ensemble_core import persistence
from ensemble_core.config import DataSpec, RunConfig
from ensemble_core.data import load_dataset
from ensemble_core.jobs import JobPool
from ensemble_core.persistence import PersistenceError, export_zip, import_zip
from ensemble_core.predict import ClassificationPrediction, RegressionPrediction
from ensemble_core.run import (
    MAX_REPLAY_FRAMES,
    MAX_REPLAY_MEMBERS,
    Done,
    EpochEnd,
    Preview,
    pace_seconds,
    preview_every,
    record_replay,
    slim_prediction,
    thin_frames,
)
from ensemble_core.training import train
from ensemble_core.viz import input_grid
from ensemble_core.worker import ProcessWorker, _Pacer


def _cfg(**changes) -> RunConfig:
    return RunConfig().replace(**{"optim.epochs": 60, "strategy.members": 3, **changes})


def _same_run(a, b) -> None:
    """Weights, learning rates, members and every epoch's losses identical, bit for bit."""
    sa, sb = a.model.state_dict(), b.model.state_dict()
    assert sa.keys() == sb.keys()
    for k in sa:
        assert torch.equal(sa[k], sb[k]), k
    assert np.array_equal(a.lr_trace, b.lr_trace)
    assert a.members == b.members
    ea = [e.train_loss for e in a.history if isinstance(e, EpochEnd)]
    eb = [e.train_loss for e in b.history if isinstance(e, EpochEnd)]
    assert ea == eb and len(ea) == a.config.optim.epochs


@pytest.fixture(scope="module")
def cubic():
    cfg = _cfg()
    return cfg, load_dataset(cfg.data)


def test_pace_seconds_and_preview_every():
    assert pace_seconds("fast") == 0.0 and pace_seconds("watchable") > 5
    with pytest.raises(ValueError, match="pace"):
        pace_seconds("slow")
    assert preview_every(300) == 6 and preview_every(10) == 1 and preview_every(5000) == 100


def test_watchable_equals_fast_through_the_pool(cubic):
    """A watchable run through the pool's worker process: the fast run's result, spread over ~9 s."""
    cfg, ds = cubic
    grid = input_grid(ds, n=200).x
    pool = JobPool(max_running=1, heartbeat_timeout=None)
    try:
        runs, walls = {}, {}
        for pace in ("fast", "watchable"):
            t0 = time.monotonic()
            job = pool.submit(cfg, ds, "t", preview_x=grid, preview_every=preview_every(60), pace=pace)
            while job.active:
                time.sleep(0.02)
            walls[pace] = time.monotonic() - t0
            assert job.status == "done", job.error
            runs[pace] = job.result
        _same_run(runs["fast"], runs["watchable"])
        slow = runs["watchable"]
        assert walls["watchable"] >= 0.8 * pace_seconds("watchable")
        # the time not spent training was waited (on a loaded machine the training itself may fill the pace),
        # and the waits are not counted as training
        assert slow.waited >= 0.8 * pace_seconds("watchable") - slow.seconds - 1.0
        assert slow.seconds + slow.waited <= walls["watchable"] + 0.1
        done = [e for e in slow.history if isinstance(e, Done)]
        assert len(done) == 1 and done[0].seconds == pytest.approx(slow.seconds)
        assert runs["fast"].waited == 0.0
        for run in runs.values():  # the previews went into the replay, none stayed in the history
            assert not any(isinstance(e, Preview) for e in run.history)
            assert [f.epoch for f in run.replay] == list(range(2, 61, 2))
            assert run.replay_x.shape == (200, 1)
        for a, b in zip(runs["fast"].replay, runs["watchable"].replay):
            assert np.array_equal(a.prediction.mean, b.prediction.mean)
    finally:
        pool.shutdown()


def test_stop_ends_a_watchable_wait_at_once(cubic):
    """Stopped during a long pace, the worker returns the partial run within a fraction of a second."""
    cfg, ds = cubic
    worker = ProcessWorker()
    try:
        seen: list = []
        asked: list[float] = []

        def should_stop() -> bool:  # Stop as soon as the first epoch was seen (the worker's warm-up is not timed)
            if seen and not asked:
                asked.append(time.monotonic())
            return bool(asked)

        run = worker.run("j", cfg.replace(**{"optim.epochs": 600}), ds, seen.append, should_stop, pace_s=120.0)
        assert time.monotonic() - asked[0] < 3.0  # not the 0.2 s x 600 epochs the pace asked for
        assert run.stopped and 0 < run.epochs_done < 50
    finally:
        worker.close()


def test_pacer_waits_on_stop_and_hurry():
    """The pacer waits only after an epoch ended, until its share of the pace; hurry ends the waits."""
    import threading

    clock = [0.0]
    stop, hurry = threading.Event(), threading.Event()
    waits: list[float] = []

    class FakeStop:
        def is_set(self):
            return stop.is_set()

        def wait(self, t):
            waits.append(t)
            clock[0] += t

    sent: list = []
    pacer = _Pacer(sent.append, lambda: None, FakeStop(), hurry, 10.0, 10, clock=lambda: clock[0])
    assert pacer.should_stop() is False and not waits  # no epoch ended yet: no wait
    pacer.event(EpochEnd(1, 10, [1.0], None, {}, [0.1], 0.0))
    assert pacer.should_stop() is False
    assert clock[0] == pytest.approx(1.0) and pacer.waited == pytest.approx(1.0)
    assert pacer.should_stop() is False and clock[0] == pytest.approx(1.0)  # once per epoch
    hurry.set()
    pacer.event(EpochEnd(2, 10, [1.0], None, {}, [0.1], 0.0))
    pacer.should_stop()
    assert clock[0] == pytest.approx(1.0)  # hurried: no wait
    pacer.event(Done(2, False, 5.0))
    assert sent[-1].seconds == pytest.approx(4.0)  # the waits are not training


def _classif():
    cfg = RunConfig().replace(**{"data": DataSpec(name="moons", n=120), "optim.epochs": 20, "strategy.members": 3})
    return cfg, load_dataset(cfg.data)


def test_record_replay_bounds_and_slims():
    cfg, ds = _classif()
    grid = input_grid(ds, n=50).x
    run = train(cfg, ds, preview_x=grid, preview_every=1)
    full = [e for e in run.history if isinstance(e, Preview)]
    assert len(full) == 20 and full[0].prediction.member_probs.shape[0] == 3
    record_replay(run, grid, most=8)
    assert len(run.replay) == 8 and run.replay[0].epoch == 1 and run.replay[-1].epoch == 20
    p = run.replay[-1].prediction
    assert isinstance(p, ClassificationPrediction) and p.probs.dtype == np.float32 and p.member_probs.shape[0] == 0
    np.testing.assert_allclose(p.probs, full[-1].prediction.probs, rtol=1e-6)
    assert not any(isinstance(e, Preview) for e in run.history)
    # the byte cap thins too: each frame here is (3 + 2 classes) x 2500 float32 = 50 kB
    run2 = train(cfg, ds, preview_x=grid, preview_every=1)
    record_replay(run2, grid, max_bytes=120_000)
    assert len(run2.replay) == 2 and run2.replay[-1].epoch == 20
    assert thin_frames(list(range(100)), MAX_REPLAY_FRAMES)[-1] == 99
    assert len(thin_frames(list(range(100)), MAX_REPLAY_FRAMES)) <= MAX_REPLAY_FRAMES


def test_slim_regression_keeps_at_most_ten_member_curves(cubic):
    cfg, ds = cubic
    run = train(cfg.replace(**{"strategy.members": 12, "optim.epochs": 3}), ds, preview_x=input_grid(ds, n=50).x,
                preview_every=1)
    pred = [e for e in run.history if isinstance(e, Preview)][-1].prediction
    slim = slim_prediction(pred)
    assert isinstance(slim, RegressionPrediction) and slim.member_means.shape == (MAX_REPLAY_MEMBERS, 50)
    assert slim.members == pred.members and slim.mean.dtype == np.float32
    np.testing.assert_allclose(slim.total, pred.total, rtol=1e-6)


@pytest.mark.parametrize("which", ["regression", "classification", "snapshot"])
def test_replay_round_trips_through_export_and_import(which, cubic):
    if which == "classification":
        cfg, ds = _classif()
        grid = input_grid(ds, n=50).x
    else:
        cfg, ds = cubic
        if which == "snapshot":
            cfg = cfg.replace(**{"strategy.kind": "snapshot", "strategy.members": 1, "strategy.snapshots": 3,
                                 "optim.schedule": "cyclic"})
        grid = input_grid(ds, n=200).x
    run = record_replay(train(cfg, ds, preview_x=grid, preview_every=preview_every(cfg.optim.epochs)), grid)
    back = import_zip(export_zip(run, ds))
    assert [f.epoch for f in back.replay] == [f.epoch for f in run.replay] and len(run.replay) >= 10
    np.testing.assert_array_equal(back.replay_x, run.replay_x)
    for a, b in zip(run.replay, back.replay):
        assert a.prediction.members == b.prediction.members
        for name in ("total", "epistemic", "aleatoric"):
            np.testing.assert_array_equal(getattr(a.prediction, name), getattr(b.prediction, name))
    if which == "snapshot":  # snapshots join: the number of members grows with the cycles
        sizes = [len(f.prediction.members) for f in back.replay]
        assert sizes == sorted(sizes) and sizes[-1] == 3
    # a run without previews writes no replay.json, and reads back with an empty replay
    plain = train(cfg.replace(**{"optim.epochs": 3}), ds)
    assert "replay.json" not in persistence.run_files(plain) and import_zip(export_zip(plain)).replay == []


def _zip_with_replay(run, replay: dict) -> bytes:
    import io
    import zipfile

    files = persistence.run_files(run)
    files["replay.json"] = json.dumps(replay).encode()
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, data in files.items():
            zf.writestr(name, data)
    return buf.getvalue()


def test_hostile_replays_are_refused(cubic):
    cfg, ds = cubic
    grid = input_grid(ds, n=20).x
    run = record_replay(train(cfg.replace(**{"optim.epochs": 4}), ds, preview_x=grid, preview_every=1), grid)
    good = json.loads(persistence.run_files(run)["replay.json"])
    assert import_zip(_zip_with_replay(run, good)).replay
    too_many = dict(good, frames=good["frames"] * 20)
    with pytest.raises(PersistenceError, match="frames"):
        import_zip(_zip_with_replay(run, too_many))
    bad_shape = json.loads(json.dumps(good))
    bad_shape["frames"][0]["mean"] = bad_shape["frames"][0]["mean"][:-1]
    with pytest.raises(PersistenceError, match="shape"):
        import_zip(_zip_with_replay(run, bad_shape))
    bad_member = json.loads(json.dumps(good))
    bad_member["frames"][0]["members"] = [99]
    with pytest.raises(PersistenceError, match="members"):
        import_zip(_zip_with_replay(run, bad_member))
    huge = dict(good, x=[[0.0]] * 2_000_000)  # refused by its size/value count before it is parsed
    with pytest.raises(PersistenceError, match="replay.json"):
        import_zip(_zip_with_replay(run, huge))
