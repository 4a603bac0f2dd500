"""AppTest for the Lessons page: every lesson runs end to end with tiny epochs and shows what it claims."""

from __future__ import annotations

import re

import pytest
from conftest import chart_specs, open_page, run_until

from ensemble_core.lessons import get_lesson, lesson_ids


def _finished(at) -> bool:
    return any("Scores on the test set" in m.value for m in at.markdown)


@pytest.fixture(autouse=True)
def tiny_lessons(monkeypatch):
    """Tiny runs: 2 epochs per member / per cycle (the page trains ``Lesson.configs``)."""
    from ensemble_core.lessons import Lesson

    full = Lesson.configs
    monkeypatch.setattr(Lesson, "configs", lambda self, scale=1.0, max_epochs=None: full(self, scale, max_epochs=2))


def _run_lesson(app, lesson_id: str):
    open_page(app, "lessons")
    app.selectbox(key="lessons_pick").set_value(lesson_id).run()
    assert app.query_params["lesson"] == [lesson_id] or app.query_params["lesson"] == lesson_id
    app.button(key="lessons_run").click().run()
    run_until(app, _finished, timeout=240, pause=0.2)
    assert not app.error and not app.warning, ([e.value for e in app.error], [w.value for w in app.warning])
    return app, chart_specs(app)


def _trace_names(fig: dict, axis: str) -> set[str]:
    return {t.get("name") for t in fig["data"] if t.get("xaxis", "x") == axis}


def test_lesson_link_opens_that_lesson(app):
    app.query_params["lesson"] = "bootstrap"
    open_page(app, "lessons")
    assert app.selectbox(key="lessons_pick").value == "bootstrap"
    assert any("Does bootstrapping help?" in h.value for h in app.header)
    # the question is asked, and the explanation waits in an expander
    assert any(get_lesson("bootstrap").question in m.value for m in app.markdown)
    assert app.expander[0].label == "Reveal the explanation"


def test_figure1_lesson_has_four_panels_side_by_side(app):
    app, charts = _run_lesson(app, "figure1")
    fig = charts["lessons_bands"]
    axes = {t.get("xaxis", "x") for t in fig["data"]}
    assert axes == {"x", "x2", "x3", "x4"}
    titles = [a["text"] for a in fig["layout"]["annotations"]][:4]
    assert titles == get_lesson("figure1").labels
    for ax in ("x", "x2", "x3", "x4"):  # every panel has the data, the mean and the bands
        assert {"Training data", "Ensemble mean", "Total ±3σ", "Aleatoric ±3σ", "Epistemic ±3σ"} <= _trace_names(fig, ax)
    # same axes: y shared across panels
    assert all(fig["layout"][f"yaxis{i}"]["matches"] == "y" for i in (2, 3, 4))
    # members per panel: 5 MSE, 1, 1, 5
    members = [sum(1 for t in fig["data"] if t.get("xaxis", "x") == ax and re.fullmatch(r"Member \d+", str(t.get("name"))))
               for ax in ("x", "x2", "x3", "x4")]
    assert members == [5, 1, 1, 5]
    # the lesson made its setup current and published its main run
    ss = app.session_state
    assert ss["settings"].config.strategy.members == 5 and ss["settings"].config.data.name == "cubic"
    assert ss["run"] is not None and len(ss["run"].healthy) == 5
    table = app.dataframe[0].value
    assert len(table) == 4


@pytest.mark.parametrize("lesson_id", [lid for lid in lesson_ids() if lid != "figure1"])
def test_each_lesson_runs_end_to_end(app, lesson_id):
    app, charts = _run_lesson(app, lesson_id)
    lesson = get_lesson(lesson_id)
    assert len(app.dataframe[0].value) == len(lesson.panels)
    if lesson.view == "maps":
        fig = charts["lessons_maps"]
        kinds = {t.get("name"): t["type"] for t in fig["data"]}
        assert kinds["Predicted class"] == "image" and kinds["Entropy"] == kinds["MI"] == "heatmap"
        assert {t.get("xaxis", "x") for t in fig["data"]} == {"x", "x2", "x3"}  # three maps side by side
    elif lesson.view == "size_curve":
        curve = charts["lessons_size_curve"]
        ens = next(t for t in curve["data"] if t["name"].startswith("Ensemble of M members"))
        assert ens["x"] == list(range(1, 11))
        bands = charts["lessons_bands"]
        assert {t.get("xaxis", "x") for t in bands["data"]} == {"x", "x2"}
    elif lesson.view == "unknowns":
        hist, abstain = charts["lessons_ood_hist"], charts["lessons_ood_abstain"]
        assert len(hist["data"]) >= 4 and all(t["type"] == "histogram" for t in hist["data"])
        assert len(abstain["data"]) >= 2
    else:
        bands = charts["lessons_bands"]
        n = len(lesson.panels)
        assert {t.get("xaxis", "x") for t in bands["data"]} == {"x"} | {f"x{i}" for i in range(2, n + 1)}
        assert "Epistemic ±2σ" in _trace_names(bands, "x")
    if lesson.view == "snapshot":
        lr = charts["lessons_lr"]
        assert any("napshot" in str(t.get("name", "")) for t in lr["data"])


# ------------------------------------------------------------------ lines checked by the run's own numbers
def test_look_for_lines_wait_for_a_run(app):
    open_page(app, "lessons")
    assert any("each line is checked against your run's own numbers" in c.value for c in app.caption)
    assert not any(":green[**✓**]" in m.value or ":red[**✗**]" in m.value for m in app.markdown)


@pytest.mark.parametrize("lesson_id", ["figure1", "classification"])
def test_look_for_lines_show_the_runs_own_check(app, lesson_id: str):
    """Each line carries ✓/✗ and the number from *this* run: the page shows exactly what check_lesson says."""
    from ensemble_core.claims import check_lesson

    app, _ = _run_lesson(app, lesson_id)
    lesson = get_lesson(lesson_id)
    seq = app.session_state["lessons_seq"]
    want = check_lesson(lesson, seq.runs, seq.dataset)
    md = next(m.value for m in app.markdown if lesson.look_for[0] in m.value)
    lines = md.split("\n")
    for i, (item, res) in enumerate(zip(lesson.look_for, want), 1):
        k = next(j for j, line in enumerate(lines) if line.startswith(f"{i}. "))
        mark = ":green[**✓**]" if res.holds else ":red[**✗**]"
        assert lines[k] == f"{i}. {mark} {item}  ", lines[k]
        assert lines[k + 1].strip() == f":gray[{res.text}]"
    ok = sum(r.holds for r in want)
    assert any(f"Checked on your run: {ok} of {len(want)} statements hold." in c.value for c in app.caption)
    if lesson_id == "figure1":  # 2-epoch runs cannot show Figure 1's message, and the page says so
        assert ok < len(want) and any("does not show what the line says" in c.value for c in app.caption)
