"""Tests for ensemble_core.lessons: six well-formed lessons whose setups say what they claim."""

from __future__ import annotations

import pytest

from ensemble_core.lessons import LESSONS, get_lesson, lesson_ids
from ensemble_core.race import budget_of
from ensemble_core.share import ShareState, from_query, to_query

EXPECTED = ["figure1", "aleatoric-epistemic", "snapshot", "bootstrap", "how-many", "classification", "unknowns",
            "mc-dropout"]


def test_the_six_lessons_in_teaching_order() -> None:
    assert lesson_ids() == EXPECTED
    for lesson in LESSONS:
        assert lesson.title and lesson.goal and lesson.question and lesson.answer
        assert len(lesson.look_for) >= 3
        assert get_lesson(lesson.id) is lesson
    assert get_lesson("nope") is None and get_lesson(None) is None


def test_lesson_ids_are_valid_link_parameters() -> None:
    for lid in lesson_ids():
        state = ShareState(page="lessons", lesson=lid)
        assert from_query(to_query(state)) == state


def test_figure1_is_the_papers_four_panel_setup() -> None:
    lesson = get_lesson("figure1")
    assert lesson is not None and len(lesson.panels) == 4 and lesson.view == "bands"
    mse, single, adv, ens = lesson.configs()
    for cfg in (mse, single, adv, ens):
        assert (cfg.data.name, cfg.data.n, cfg.data.noise) == ("cubic", 20, 3.0)
        assert (cfg.model.hidden_layers, cfg.model.width) == (1, 100)
    assert mse.loss.kind == "mse" and mse.strategy.members == 5
    assert single.loss.kind == "nll" and single.strategy.members == 1 and not single.strategy.adversarial
    assert adv.strategy.members == 1 and adv.strategy.adversarial
    assert ens.loss.kind == "nll" and ens.strategy.members == 5 and ens.strategy.adversarial


def test_race_lessons_compare_at_equal_cost() -> None:
    snap = get_lesson("snapshot")
    boot = get_lesson("bootstrap")
    assert snap is not None and boot is not None
    kinds = [c.strategy.kind for c in snap.configs()]
    assert kinds == ["independent", "snapshot"]
    assert [c.strategy.kind for c in boot.configs()] == ["independent", "bootstrap"]
    for lesson in (snap, boot):
        for scale, cap in ((1.0, None), (1.0, 2), (0.1, None)):
            assert len({budget_of(c) for c in lesson.configs(scale, max_epochs=cap)}) == 1


def test_data_matches_the_lesson() -> None:
    data = {lesson.id: lesson.data_spec for lesson in LESSONS}
    assert data["aleatoric-epistemic"].name == "sine" and data["aleatoric-epistemic"].gap
    assert data["classification"].name == "moons"
    assert get_lesson("how-many").configs()[0].strategy.members >= 8  # a curve needs members


@pytest.mark.parametrize("lid", EXPECTED)
def test_tiny_override_caps_every_epoch_count(lid: str) -> None:
    lesson = get_lesson(lid)
    assert lesson is not None
    for cfg in lesson.configs(max_epochs=2):
        cycles = cfg.strategy.snapshots if cfg.strategy.kind == "snapshot" else 1
        assert cfg.optim.epochs == 2 * cycles
    assert lesson.configs()[0].optim.epochs > 10


def test_mc_dropout_lesson_races_at_equal_compute() -> None:
    lesson = get_lesson("mc-dropout")
    assert lesson is not None and lesson.view == "bands"
    ens, mc = lesson.configs()
    assert ens.strategy.kind == "independent" and ens.strategy.members == 5
    assert mc.strategy.kind == "mc_dropout" and mc.strategy.members == 1
    assert (mc.strategy.dropout, mc.strategy.passes) == (0.1, 100)
    assert budget_of(ens) == budget_of(mc)
