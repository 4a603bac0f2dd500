"""AppTest: a run trained on Ray from the Train page, the way a classroom server with Ray trains it.

The page starts the local Ray lazily from a Streamlit script thread that ends right after; a
local Ray's processes die with the thread that forked them unless ``ray_executor.start_ray``
keeps a lasting thread for them.  Skipped where Ray is not installed (``requirements-ray.txt``).
"""

from __future__ import annotations

import time

import pytest
from apphelpers import open_page, run_until, sidebar_text

ray = pytest.importorskip("ray")


def _train(at):
    next(b for b in at.button if b.label == "Train").click().run()
    assert not at.exception, [e.message for e in at.exception]
    job_id = at.session_state["job_id"]
    run_until(at, lambda a: "Done" in sidebar_text(a) and a.session_state["job_id"] == job_id, timeout=240)
    from dashboard import pool

    return pool.pool().get(job_id, at.session_state["ui_browser"] + ":train")


def test_a_run_trains_on_ray_from_the_page_and_ray_outlives_the_script_thread(app, monkeypatch):
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    started_here = not ray.is_initialized()
    at = open_page(app, "train")
    try:
        radio = next(r for r in at.radio if r.key == "train_executor")  # offered: Ray is installed
        radio.set_value("ray").run()
        assert at.session_state["settings"].executor == "ray"
        s = at.session_state["settings"]
        s.set("strategy.members", 2)
        s.set("optim.epochs", 4)
        at.run()
        first = _train(at)
        assert first.executor == "ray" and first.status == "done", (first.status, first.error)
        time.sleep(5)  # every script thread that touched Ray has ended long ago
        second = _train(at)
        assert second.id != first.id and second.executor == "ray"
        assert second.status == "done", second.error  # the local Ray is still there
        assert at.session_state["run"].epochs_done == 4
    finally:
        if started_here and ray.is_initialized():
            ray.shutdown()
