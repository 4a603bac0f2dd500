"""Every lesson tells the truth: each claim holds at the lesson's default settings for seeds 0, 1 and 2.

This trains every lesson's panels in full (no epoch cap) three times: about a
minute or two on two cores.  A claim that fails here means the lesson's words or
settings must change (ensemble_core/lessons.py), never the check
(ensemble_core/claims.py); the measurements behind the settings are in
docs/decisions.md ("Lessons checked by their own numbers").
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from ensemble_core.claims import CLAIMS, ClaimResult, band_coverage, check_lesson, claims_for
from ensemble_core.data import load_dataset
from ensemble_core.lessons import LESSONS, get_lesson
from ensemble_core.training import train

ORIGINAL = ["figure1", "aleatoric-epistemic", "snapshot", "bootstrap", "how-many", "classification", "unknowns",
            "mc-dropout"]
SEEDS = (0, 1, 2)


@pytest.fixture(scope="module", autouse=True)
def _one_thread():
    """Two cores are shared: one intra-op thread keeps the timings stable (results do not depend on it)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _trained(lesson_id: str, seed: int) -> tuple[list, object]:
    lesson = get_lesson(lesson_id)
    assert lesson is not None
    data = load_dataset(lesson.data_spec)
    return [train(cfg.replace(seed=seed), data) for cfg in lesson.configs()], data


def test_every_line_of_the_original_lessons_is_checked() -> None:
    for lid in ORIGINAL:
        lesson = get_lesson(lid)
        lines = sorted(c.line for c in claims_for(lid))
        assert lines == list(range(len(lesson.look_for))), lid  # one claim per line, no line unchecked
    assert set(CLAIMS) <= {lesson.id for lesson in LESSONS}  # no claims for a lesson that does not exist


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("lesson_id", ORIGINAL)
def test_claims_hold_at_default_settings(lesson_id: str, seed: int) -> None:
    runs, data = _trained(lesson_id, seed)
    results = check_lesson(get_lesson(lesson_id), runs, data)
    failed = [(c.what, r.text) for c, r in ((c, results[c.line]) for c in claims_for(lesson_id)) if not r.holds]
    assert not failed, f"{lesson_id}, seed {seed}: {failed}"
    for r in results:
        assert r is None or (isinstance(r, ClaimResult) and math.isfinite(r.number) and r.text)


def test_claims_can_fail_on_a_run_that_does_not_show_them() -> None:
    """The checks are not vacuous: Figure 1 trained for 2 epochs (the AppTest's tiny runs) fails several."""
    lesson = get_lesson("figure1")
    data = load_dataset(lesson.data_spec)
    runs = [train(cfg, data) for cfg in lesson.configs(max_epochs=2)]
    results = check_lesson(lesson, runs, data)
    assert sum(not r.holds for r in results if r is not None) >= 2


def test_band_coverage_is_the_band_drawn() -> None:
    """band_coverage is |mean - truth| <= 3 sd with predict's own mean and total variance, point by point."""
    from ensemble_core.predict import predict

    lesson = get_lesson("figure1")
    data = load_dataset(lesson.data_spec)
    run = train(lesson.configs(max_epochs=20)[3], data)  # the ensemble panel, briefly trained
    x = np.linspace(-6, 6, 25)
    p = predict(run, x.reshape(-1, 1))
    want = np.abs(p.mean - x**3) <= 3 * np.sqrt(p.total)
    assert 0 < want.sum() < len(x)  # a mixed case, so the comparison can fail either way
    assert (band_coverage(run, x, x**3) == want).all()
    assert not band_coverage(run, x, x**3, sigmas=0.0).any()  # a zero-width band holds nothing


def test_a_check_that_raises_is_shown_as_not_holding(monkeypatch: pytest.MonkeyPatch) -> None:
    import ensemble_core.claims as claims

    lesson = get_lesson("figure1")
    boom = claims.Claim(0, "raises", lambda runs, ds: 1 / 0)
    monkeypatch.setitem(claims.CLAIMS, "figure1", (boom,))
    res = check_lesson(lesson, [object()] * 4, None)
    assert res[0] is not None and not res[0].holds and "could not be computed" in res[0].text
    assert res[1:] == [None] * (len(lesson.look_for) - 1)
    with pytest.raises(ValueError, match="needs 4 trained runs"):
        check_lesson(lesson, [object()], None)
