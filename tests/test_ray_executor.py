"""The pool's Ray executor (ensemble_core.ray_executor) on a local Ray with 2 CPUs.

Also: a group job under Ray, and a Ray job in a process pool (the executor chosen per job).
Skipped where Ray is not installed (``pip install -r requirements-ray.txt``; CI installs it).
Ray's cold start costs seconds, so one local Ray and one pool serve every test here.
"""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pytest

ray = pytest.importorskip("ray", reason="Ray is optional: pip install -r requirements-ray.txt")

from conftest import make_cubic  # noqa: E402

from ensemble_core.config import RunConfig  # noqa: E402
from ensemble_core.jobs import JobPool, Limits  # noqa: E402
from ensemble_core.ray_executor import RAY_WORKER_DIED, RayWorker, start_ray  # noqa: E402
from ensemble_core.run import EpochEnd  # noqa: E402
from ensemble_core.sweeps import SweepRun, SweepSpec, plan, run_sweep_local  # noqa: E402

BASE = RunConfig().replace(**{"optim.epochs": 8, "strategy.members": 2, "model.width": 16})


@pytest.fixture(scope="module")
def ray_pool():
    os.environ.pop("RAY_ADDRESS", None)
    start_ray(num_cpus=2)
    pool = JobPool(max_running=2, executor="ray", heartbeat_timeout=None, max_active_per_user=4)
    yield pool
    pool.shutdown()
    ray.shutdown()


def _wait(pred, timeout=120.0):
    deadline = time.monotonic() + timeout
    while not pred():
        if time.monotonic() > deadline:
            raise AssertionError("timed out")
        time.sleep(0.01)


def test_lab_executor_env_selects_ray(monkeypatch):
    """First in the file: its one-actor pool ends before the shared pool takes both CPUs."""
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    start_ray(num_cpus=2)
    monkeypatch.setenv("LAB_EXECUTOR", "ray")
    pool = JobPool(max_running=1, heartbeat_timeout=None)
    try:
        assert pool.executor == "ray"
        job = pool.submit(BASE, make_cubic(), "e1:train")
        _wait(lambda: not job.active, timeout=180)
        assert job.status == "done" and job.result.epochs_done == BASE.optim.epochs
    finally:
        pool.shutdown()


def test_a_local_rays_training_actor_runs_at_this_servers_priority(monkeypatch):
    """Ray's default starts workers at nice 15: beside a busy dashboard they starved (3x slower in a class).

    Before the shared pool: this actor needs one of the two CPUs.
    """
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    start_ray(num_cpus=2)
    worker = RayWorker(torch_threads=1)
    try:
        pid = worker.pid
        assert pid is not None and pid != os.getpid()
        assert os.getpriority(os.PRIO_PROCESS, pid) == os.getpriority(os.PRIO_PROCESS, 0)
    finally:
        worker.close()


def test_a_ray_job_in_a_process_pool_trains_on_a_ray_actor_in_the_fair_order(monkeypatch):
    """Before the shared pool too: the pool's one lazily made actor ends with it."""
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    monkeypatch.delenv("LAB_EXECUTOR", raising=False)
    start_ray(num_cpus=2)
    data = make_cubic()
    long = BASE.replace(**{"optim.epochs": 5000})
    big = make_cubic(n_train=2000)  # the long jobs run until stopped, however slow the actor's start
    endless = Limits(max_work=1e18, max_steps=10**9, max_cpu_seconds=1e9)
    pool = JobPool(max_running=1, heartbeat_timeout=None, max_active_per_user=3, ray_workers=1, torch_threads=1,
                   limits=endless)
    try:
        assert pool.executor == "process" and {w.kind for w in pool._workers} == {"process"}
        a1 = pool.submit(long, big, "a:1")
        _wait(lambda: a1.progress().epoch >= 1)
        r = pool.submit(long, big, "a:2", executor="ray")  # the pool's Ray worker is made now
        _wait(lambda: r.progress().epoch >= 1)
        assert r.executor == "ray" and a1.executor == "process" and a1.status == "running"
        with pool._lock:
            busy = {w.kind: w for w in pool._workers if w not in pool._idle}
        assert set(busy) == {"process", "ray"}
        assert busy["ray"]._job == r.id and busy["process"]._job == a1.id
        assert busy["ray"].pid != busy["process"].pid and busy["ray"].pid != os.getpid()
        # fairness holds across kinds: user a trains two jobs, so b's and c's go first, oldest first
        a3 = pool.submit(BASE, data, "a:3")
        b1 = pool.submit(BASE, data, "b:1")
        c1 = pool.submit(BASE, data, "c:1", executor="ray")
        assert (b1.queue_position, c1.queue_position, a3.queue_position) == (1, 2, 3)
        a1.stop()  # the process worker is free: b's job takes it, though a's third is older
        _wait(lambda: b1.status != "queued", timeout=10)
        assert a3.status == "queued" and c1.status == "queued"
        r.stop()  # the Ray worker is free: c's Ray job takes it
        for job in (a1, r, a3, b1, c1):
            _wait(lambda job=job: not job.active, timeout=180)
    finally:
        pool.shutdown()
    assert [j.status for j in (b1, c1, a3)] == ["done"] * 3
    assert b1.started_at < a3.started_at and a3.started_at >= b1.finished_at  # a's third waited for b's
    assert c1.started_at >= r.finished_at  # c's Ray job took the Ray worker r left
    assert a1.status == r.status == "stopped"


def test_same_seeds_same_test_nlls_as_the_process_executor(ray_pool):
    data = make_cubic()
    spec = SweepSpec(BASE, grid=(("optim.lr", (0.001, 0.01)), ("strategy.members", (1, 2))))
    by_process = run_sweep_local(spec, data, executor="process", workers=2)
    checked = plan(spec, data)
    assert checked.programs == ((0, 2), (1, 3))  # two batched programs: one job on each actor
    by_ray = SweepRun(checked, data, ray_pool, "sw", parallel=2)  # fans out over both actors
    assert by_ray.wait(300)
    nll_p = [t.metrics["test_nll"] for t in by_process.trials]
    nll_r = [t.metrics["test_nll"] for t in by_ray.trials]
    assert [t.status for t in by_ray.trials] == ["done"] * 4
    assert nll_r == nll_p  # bit for bit: the same engine, seeds and torch threads
    assert len(set(nll_p)) == 4  # and the trials really differ


def test_events_stream_back_and_stop_lands_within_a_second(ray_pool):
    data = make_cubic()
    job = ray_pool.submit(BASE.replace(**{"optim.epochs": 4000}), data, "s1:train",
                          preview_x=data.x_train[:8], preview_every=5)
    _wait(lambda: job.progress().epoch >= 10)
    assert job.active and job.status == "running"  # epochs arrive while it trains
    epochs = [e.epoch for e in job.events if isinstance(e, EpochEnd)]
    assert epochs == list(range(1, len(epochs) + 1))
    assert any(getattr(e, "kind", None) == "preview" for e in job.events)
    t0 = time.monotonic()
    job.stop()
    _wait(lambda: not job.active, timeout=5)
    assert time.monotonic() - t0 < 1.0
    assert job.status == "stopped" and job.result.stopped and 10 <= job.result.epochs_done < 4000


def test_a_killed_ray_worker_fails_only_its_own_job(ray_pool):
    data = make_cubic()
    doomed = ray_pool.submit(BASE.replace(**{"optim.epochs": 4000}), data, "k1:train")
    other = ray_pool.submit(BASE.replace(**{"optim.epochs": 300}), data, "k2:train")
    _wait(lambda: doomed.progress().epoch >= 3 and other.status == "running")
    busy = [w for w in ray_pool._workers if w not in ray_pool._idle]
    pids = {w.pid for w in busy}
    assert len(pids) == 2
    victim = next(w for w in busy if getattr(w, "_job", None) == doomed.id)
    os.kill(victim.pid, signal.SIGKILL)
    _wait(lambda: not doomed.active and not other.active, timeout=180)
    assert doomed.status == "failed" and doomed.error == RAY_WORKER_DIED
    assert other.status == "done" and other.result.epochs_done == 300
    again = ray_pool.submit(BASE, data, "k1:train")  # the replaced worker trains the next job
    _wait(lambda: not again.active, timeout=180)
    assert again.status == "done"


def test_a_group_job_under_ray_equals_the_process_executor(ray_pool):
    from ensemble_core.predict import evaluate_run

    data = make_cubic()
    configs = [BASE.replace(**{"optim.lr": lr, "seed": s}) for lr, s in ((0.001, 0), (0.01, 1), (0.003, 2))]
    px = data.x_train[:4]
    on_ray = ray_pool.submit_group(configs, data, "g:ray", preview_x=px, preview_every=2)
    proc = JobPool(max_running=1, heartbeat_timeout=None, torch_threads=1)
    try:
        on_proc = proc.submit_group(configs, data, "g:proc", preview_x=px, preview_every=2)
        _wait(lambda: not on_proc.active, timeout=180)
    finally:
        proc.shutdown()
    _wait(lambda: not on_ray.active, timeout=180)
    assert on_ray.executor == "ray" and on_proc.executor == "process"
    assert on_ray.status == on_proc.status == "done"
    nlls = []
    for a, b in zip(on_ray.lanes, on_proc.lanes, strict=True):
        nll = evaluate_run(a.result, data.x_test, data.y_test)["nll"]
        assert nll == evaluate_run(b.result, data.x_test, data.y_test)["nll"]  # the same engine, seeds, threads
        nlls.append(nll)
        assert [type(e).__name__ for e in a.events] == [type(e).__name__ for e in b.events]
        assert [e.epoch for e in a.events if isinstance(e, EpochEnd)] == list(range(1, BASE.optim.epochs + 1))
        assert len(a.result.replay) == len(b.result.replay) > 0
    assert len(set(nlls)) == 3


_SHORT_THREAD_SCRIPT = r"""
import os, sys, threading, time
sys.path.insert(0, sys.argv[1])
os.environ.pop("RAY_ADDRESS", None)
import ray
from ensemble_core.ray_executor import start_ray
t = threading.Thread(target=start_ray, kwargs={"num_cpus": 1})  # like a Streamlit script thread
t.start(); t.join()
time.sleep(4)  # before the fix the local Ray's processes were killed here, with the thread that forked them
@ray.remote
def f():
    return 41 + 1
print("ANSWER", ray.get(f.remote(), timeout=60))
ray.shutdown()
"""


def test_a_local_ray_started_from_a_short_lived_thread_outlives_it(tmp_path):
    """The dashboard starts Ray from a script thread that ends at once; Ray must survive it (own process)."""
    import subprocess
    import sys

    root = str(Path(__file__).resolve().parents[1])
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}
    out = subprocess.run([sys.executable, "-c", _SHORT_THREAD_SCRIPT, root], capture_output=True, text=True,
                         timeout=180, env=env)
    assert "ANSWER 42" in out.stdout, out.stdout[-2000:] + out.stderr[-3000:]
