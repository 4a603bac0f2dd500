"""The classroom load test at CI size: 3 students train at once through the real UI.

Each opens the Train page in its own browser context, sets its own seed and a short run, clicks
Train and waits for the result.  All must finish, each must show the numbers of *its own* seed
(checked against the same run trained headless) and no traceback may appear.  The full-size
version with timings is ``benchmarks/load_classroom.py``.
"""

from __future__ import annotations

import asyncio

import pytest

from .harness import AppServer, expected_result, launch, run_async, train_session

N = 3
EPOCHS = 15

pytestmark = [pytest.mark.e2e, pytest.mark.slow, pytest.mark.timeout(300)]


async def _classroom(url: str) -> list:
    from playwright.async_api import async_playwright

    async with async_playwright() as p:
        browser = await launch(p)
        try:
            return await asyncio.gather(*[
                train_session(browser, url, f"student{i}", seed=100 + i, epochs=EPOCHS, timeout_s=200)
                for i in range(N)])
        finally:
            await browser.close()


def test_three_students_train_at_once_and_each_gets_their_own_result(server: AppServer) -> None:
    results = run_async(_classroom(server.url))
    expected = {r.seed: expected_result(r.seed, EPOCHS) for r in results}
    assert len({(e["nll"], e["rmse"]) for e in expected.values()}) == N, "seeds must give different results"
    for r in results:
        assert r.ok, f"{r.name}: {r.error}"
        assert r.exceptions == 0
        assert (r.members, r.epochs) == (5, EPOCHS)
        want = expected[r.seed]
        assert (r.nll, r.rmse) == (want["nll"], want["rmse"]), (
            f"{r.name} (seed {r.seed}) shows NLL {r.nll} / RMSE {r.rmse}; its own run gives "
            f"{want['nll']} / {want['rmse']}")
        assert f"Done — {EPOCHS} epochs" in r.sidebar
        # the page's account of the wait and the run fits in the time the student saw (rounding: 0.1 s)
        assert 0 <= r.queue_seconds and r.queue_seconds + r.run_seconds <= r.time_to_result + 0.1
    assert "Traceback" not in server.log_text()
