"""Isolation (issue 5 §4): each browser session sees only its own data, runs and results, also while
another session trains.  Two Playwright contexts on one server, plus a pool-level check."""

from __future__ import annotations

import asyncio
import re
import threading
import time

import pytest

from ensemble_core.config import DataSpec, ModelSpec, OptimSpec, RunConfig
from ensemble_core.data import load_dataset
from ensemble_core.jobs import JobPool, LimitError

from .harness import (
    AppServer,
    SessionResult,
    configure,
    expected_result,
    launch,
    open_app,
    page_state,
    run_async,
    set_number,
    train_and_wait,
    wait_idle,
)

TIMEOUT = 150


async def _goto_page(page, title: str) -> None:
    """Client-side navigation through the sidebar (a reload would start a new session)."""
    await page.locator("[data-testid='stSidebarNav'] a").filter(has_text=title).first.click()
    await asyncio.sleep(0.3)
    await wait_idle(page, TIMEOUT)


def _members_in_legend(main: str) -> set[int]:
    return {int(m) for m in re.findall(r"Member (\d+)", main)}


async def _two_sessions(url: str) -> dict:
    from playwright.async_api import async_playwright

    seen: dict = {"a_during_b": [], "b_during_a": []}
    async with async_playwright() as p:
        browser = await launch(p)
        try:
            (ctx_a, a), (ctx_b, b) = await asyncio.gather(open_app(browser, url, "data"),
                                                          open_app(browser, url, "train"))
            # A: 30 cubic points, 3 members, seed 11, 1500 epochs.  B: the default 20 points, 7 members, seed 22,
            # 1200 epochs.  Both long enough to be sampled while active: A's 300 epochs (the page's default) once
            # trained between two samples and failed CI ("A was never seen training").
            await set_number(a, "Training points", 30, TIMEOUT)
            await _goto_page(a, "Train")
            await configure(a, seed=11, epochs=1500, members_delta=-2, timeout_s=TIMEOUT)
            await configure(b, seed=22, epochs=1200, members_delta=2, timeout_s=TIMEOUT)
            ra, rb = SessionResult("A", 11), SessionResult("B", 22)

            async def run_a():
                await train_and_wait(a, ra, TIMEOUT)

            async def run_b():
                await asyncio.sleep(1.0)  # B starts while A is training
                await train_and_wait(b, rb, TIMEOUT)

            async def sample_sidebars():
                while not (ra.ok or ra.error) or not (rb.ok or rb.error):
                    sa, sb = await page_state(a), await page_state(b)  # sidebar + main: the progress is in main
                    seen["a_during_b"].append(sa["side"] + "\n" + sa["main"])
                    seen["b_during_a"].append(sb["side"] + "\n" + sb["main"])
                    await asyncio.sleep(0.5)

            await asyncio.wait_for(asyncio.gather(run_a(), run_b(), sample_sidebars()), TIMEOUT + 30)
            seen["a"], seen["b"] = ra, rb
            for key, page in (("a_main", a), ("b_main", b)):  # the charts render after the metrics
                await wait_idle(page, TIMEOUT)
                await page.wait_for_function("() => document.querySelectorAll('.legendtext').length > 0",
                                             timeout=TIMEOUT * 1000)
                seen[key] = (await page_state(page))["main"]
            await ctx_a.close()
            await ctx_b.close()
        finally:
            await browser.close()
    return seen


@pytest.mark.e2e
@pytest.mark.slow
@pytest.mark.timeout(360)
def test_two_sessions_see_only_their_own_data_and_runs(server: AppServer) -> None:
    seen = run_async(_two_sessions(server.url))
    a, b = seen["a"], seen["b"]
    assert a.ok, a.error
    assert b.ok, b.error
    assert a.exceptions == 0 and b.exceptions == 0
    # each sees its own data label, member count and epochs
    assert "Cubic toy · 30 points" in a.sidebar and "Cubic toy · 20 points" in b.sidebar
    assert (a.members, a.epochs) == (3, 1500) and (b.members, b.epochs) == (7, 1200)
    assert _members_in_legend(seen["a_main"]) == {1, 2, 3}
    assert _members_in_legend(seen["b_main"]) == set(range(1, 8))
    # ... and its own numbers (the other's would differ)
    want_a, want_b = expected_result(11, 1500, members=3, n=30), expected_result(22, 1200, members=7, n=20)
    assert (a.nll, a.rmse) == (want_a["nll"], want_a["rmse"])
    assert (b.nll, b.rmse) == (want_b["nll"], want_b["rmse"])
    # while both were active, neither page ever showed the other's data or run
    assert seen["a_during_b"] and seen["b_during_a"]
    assert not any("20 points" in s or "of 1200" in s for s in seen["a_during_b"])
    assert not any("30 points" in s or "of 1500" in s for s in seen["b_during_a"])
    assert any(re.search(r"Epoch \d+ of 1500", s) for s in seen["a_during_b"]), "A was never seen training"
    assert any(re.search(r"Epoch \d+ of 1200|Queued|in the queue", s) for s in seen["b_during_a"]), "B was never seen active"


async def _first_visits(url: str, n: int) -> list[dict]:
    from playwright.async_api import async_playwright

    async with async_playwright() as p:
        browser = await launch(p)
        try:
            opened = await asyncio.gather(*[open_app(browser, url, "train") for _ in range(n)],
                                          return_exceptions=True)
            states = []
            for item in opened:
                if isinstance(item, BaseException):
                    states.append({"main": f"{type(item).__name__}", "exceptions": 0, "side": ""})
                    continue
                states.append(await page_state(item[1]))
                await item[0].close()
            return states
        finally:
            await browser.close()


@pytest.mark.e2e
@pytest.mark.slow
@pytest.mark.timeout(240)
def test_concurrent_first_visits_of_a_deep_link_on_a_fresh_server_work() -> None:
    srv = AppServer()  # a fresh server: nobody has run app.py yet
    try:
        srv.wait_healthy(timeout=90)
        states = run_async(_first_visits(srv.url, 5))
    finally:
        srv.stop()
    broken = [s["main"][:120] for s in states if s["exceptions"] or "Train" not in s["main"]
              or "This app has encountered an error" in s["main"]]
    assert broken == [], f"{len(broken)} of 5 first visitors got a broken page: {broken}"


# ------------------------------------------------------------------------------- pool level
def test_pool_keeps_owners_apart_while_both_train() -> None:
    spec = DataSpec()
    ds = load_dataset(spec)
    gate = threading.Event()

    def slow_train(config, data, on_event, should_stop, **_kw):
        from ensemble_core.training import train

        gate.wait(10)
        return train(config, data, on_event, should_stop)

    pool = JobPool(max_running=2, heartbeat_timeout=None, train_fn=slow_train)
    try:
        cfg = RunConfig(data=spec, model=ModelSpec(width=8), optim=OptimSpec(epochs=3))
        ja = pool.submit(cfg.replace(seed=1), ds, "alice")
        jb = pool.submit(cfg.replace(seed=2), ds, "bob")
        assert ja.status == jb.status == "running"
        # while both train: each owner gets only their own job, and cannot stop the other's
        assert pool.get(ja.id, "alice") is ja and pool.get(jb.id, "alice") is None
        assert pool.get(jb.id, "bob") is jb and pool.get(ja.id, "bob") is None
        assert pool.jobs_of("alice") == [ja] and pool.jobs_of("bob") == [jb]
        assert pool.stop_owner("mallory") == 0 and not ja.stop_requested and not jb.stop_requested
        with pytest.raises(LimitError, match="You already have 1 run queued or training"):
            pool.submit(cfg, ds, "alice")
        gate.set()
        deadline = time.monotonic() + 60
        while (ja.active or jb.active) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert ja.status == jb.status == "done"
        assert ja.result.config.seed == 1 and jb.result.config.seed == 2
        assert [m.seed for m in ja.result.members] != [m.seed for m in jb.result.members]
        assert all(e not in jb.events for e in ja.events if e.kind == "epoch")
    finally:
        gate.set()
        pool.shutdown()
