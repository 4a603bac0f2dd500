"""AppTest for the Compare page: equal budgets are enforced and shown; one row per strategy; side-by-side views."""

from __future__ import annotations

from conftest import chart_specs, open_page, run_until


def _finished(at) -> bool:
    return any(s.value == "Results on the test set" for s in at.subheader)


def test_the_budget_is_shown_and_enforced(app):
    open_page(app, "compare")
    text = " ".join(m.value for m in app.markdown)
    # default: M = 5 from the Train config, 300 epochs each -> 1500 member-epochs for every strategy
    assert "5 members x 300 epochs = 1500 member-epochs" in text
    assert "1 trajectory x 5 cycles x 300 epochs = 1500 member-epochs" in text
    app.number_input(key="compare_budget").set_value(1502).run()
    assert app.error and "Not a fair race" in app.error[0].value and "multiple of 5" in app.error[0].value
    assert app.button(key="compare_start").disabled
    app.multiselect(key="compare_strategies").set_value([]).run()
    assert "at least one" in app.error[0].value


def test_race_runs_and_gives_one_row_per_strategy(app):
    open_page(app, "compare")
    app.multiselect(key="compare_strategies").set_value(["independent", "bootstrap", "snapshot", "single"]).run()
    app.number_input(key="compare_members").set_value(3).run()
    app.number_input(key="compare_budget").set_value(6).run()  # tiny: 2 epochs per member (per cycle for snapshots)
    app.button(key="compare_start").click().run()
    run_until(app, _finished, timeout=240, pause=0.2)
    assert not app.error and not app.warning
    table = app.dataframe[0].value
    assert list(table["strategy"]) == ["Independent seeds", "Bootstrap (bagging)", "Snapshot ensemble",
                                       "Single network"]
    assert set(table["budget"]) == {6}  # equal budget: 3 x 2 member-epochs
    assert list(table["members"]) == [3, 3, 3, 1]
    charts = chart_specs(app)
    bands = charts["compare_race_bands"]
    assert {t.get("xaxis", "x") for t in bands["data"]} == {"x", "x2", "x3", "x4"}
    losses = charts["compare_losses"]
    assert {t.get("xaxis", "x") for t in losses["data"]} == {"x", "x2", "x3", "x4"}
    # the snapshot run trained one network for 6 epochs (3 cycles of 2): one loss point per epoch
    snap = [t for t in losses["data"] if t.get("xaxis") == "x3" and t.get("y")]
    assert len(snap) == 1 and len(snap[0]["y"]) == 6


def test_classification_race_shows_maps_per_strategy(app):
    from ensemble_core.config import DataSpec
    from ensemble_core.data import load_dataset

    spec = DataSpec(name="moons", n=60)
    app.session_state["settings"].set_data(spec)
    app.session_state["dataset"] = load_dataset(spec)
    open_page(app, "compare")
    app.multiselect(key="compare_strategies").set_value(["independent", "snapshot"]).run()
    app.number_input(key="compare_budget").set_value(10).run()  # 5 members x 2 epochs
    app.button(key="compare_start").click().run()
    run_until(app, _finished, timeout=240, pause=0.2)
    table = app.dataframe[0].value
    assert len(table) == 2 and {"accuracy", "ECE"} <= set(table.columns)
    charts = chart_specs(app)
    assert {"compare_race_maps_0", "compare_race_maps_1"} <= set(charts)


def test_a_classroom_link_hides_the_chosen_controls(app):
    app.query_params["hide"] = "strategy.kind,optim.epochs"
    open_page(app, "compare")
    assert not app.multiselect and len(app.number_input) == 1  # only M is left to the students
    assert app.number_input[0].label == "Members M"
    text = " ".join(m.value for m in app.markdown)
    assert "Independent seeds" in text and "Snapshot ensemble" in text  # the default race is still planned


def _results_script() -> None:
    import pandas as pd
    import streamlit as st

    from dashboard import chrome, state

    state.settings().presentation = st.session_state.get("present", False)
    chrome.results_table(pd.DataFrame({"strategy": ["a", "b"], "members": [5, 1], "budget": [10, 10],
                                       "test NLL": [1.23456, 2.5]}))


def test_results_tables_grow_with_presentation_mode():
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_function(_results_script, default_timeout=60).run()
    assert len(at.dataframe) == 1 and not at.table  # a sortable grid on a laptop
    at.session_state["present"] = True
    at.run()
    assert len(at.table) == 1 and not at.dataframe  # static text a projector's larger type reaches
