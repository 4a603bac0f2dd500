"""AppTest for the Sweep page: the cost check, bad values, a live sweep to its ranked results, Stop, Open in Train."""

from __future__ import annotations

from apphelpers import chart_specs, open_page, run_until


def _text(at) -> str:
    return " ".join(m.value for m in at.markdown)


def _error(at) -> str:
    """The first error's text, without Markdown's escapes."""
    return app_error.replace("\\", "") if (app_error := at.error[0].value if at.error else "") else ""


def _ended(at) -> bool:
    return any("Sweep finished" in s.value or "Sweep stopped" in s.value for s in at.success)


def _small(at, epochs: int) -> None:
    s = at.session_state["settings"]
    s.set("optim.epochs", epochs)
    s.set("strategy.members", 2)


def test_the_cost_is_checked_before_start_and_bad_values_are_named(app):
    open_page(app, "sweep")
    assert "**4 trials**" in _text(app) and "of computing in all" in _text(app)  # the suggested 4 learning rates
    assert not app.button(key="sweep_start").disabled
    app.text_input(key="sweep_values_optim.lr").set_value("0.01, fast").run()
    assert "This sweep cannot start" in _error(app) and "Learning rate: 'fast' is not valid" in _error(app)
    assert app.button(key="sweep_start").disabled
    app.text_input(key="sweep_values_optim.lr").set_value("0.01, 0.1").run()
    app.multiselect(key="sweep_params").set_value(["optim.lr", "optim.epochs"]).run()
    app.session_state["settings"].set("strategy.members", 20)
    app.text_input(key="sweep_values_optim.epochs").set_value("3000, 5000").run()
    app.text_input(key="sweep_values_optim.lr").set_value("0.001,0.002,0.003,0.004,0.005,0.006,0.007").run()
    assert "743 CPU-seconds (14 trials), over the limit of 600" in _error(app)  # 14 long trials: over the sweep's budget
    app.segmented_control(key="sweep_mode").set_value("random").run()
    assert app.text_input(key="sweep_ranges_optim.lr").value == "1e-4:1e-1:log"
    assert app.number_input(key="sweep_n").value == 8


def test_a_sweep_runs_live_ranks_its_trials_and_opens_one_in_train(app):
    open_page(app, "sweep")
    _small(app, 15)
    app.multiselect(key="sweep_params").set_value(["optim.lr", "seed"]).run()
    app.text_input(key="sweep_values_optim.lr").set_value("0.0005, 0.02").run()
    app.text_input(key="sweep_values_seed").set_value("0, 1").run()
    app.button(key="sweep_start").click().run()
    assert not app.exception
    run_until(app, _ended, timeout=300, pause=0.3)
    assert not app.error
    rows = app.dataframe[0].value
    assert list(rows["rank"]) == [1, 2, 3, 4]
    nll = list(rows["Test NLL"])
    assert nll == sorted(nll)
    charts = chart_specs(app)
    assert {t["type"] for t in charts["sweep_chart_parcoords"]["data"]} == {"parcoords"}
    dims = charts["sweep_chart_parcoords"]["data"][0]["dimensions"]
    assert [d["label"] for d in dims] == ["log₁₀ Learning rate", "Seed", "Test NLL"]
    assert len(charts["sweep_chart_metric"]["data"]) == 2  # one panel per swept setting
    curves = charts["sweep_chart_curves"]["data"]
    assert len(curves) == 4 and all(len(c["x"]) == 15 for c in curves)
    best_lr = rows["Learning rate"].iloc[0]
    best_seed = rows["Seed"].iloc[0]
    app.button(key="sweep_open").click().run()
    cfg = app.session_state["settings"].config
    assert cfg.optim.lr == best_lr and cfg.seed == best_seed
    assert app.session_state["ui_page"] == "train"


def test_stop_ends_the_whole_sweep_and_keeps_finished_trials(app):
    open_page(app, "sweep")
    _small(app, 10)
    app.multiselect(key="sweep_params").set_value(["optim.lr", "optim.epochs"]).run()
    app.text_input(key="sweep_values_optim.lr").set_value("0.01, 0.02").run()
    app.text_input(key="sweep_values_optim.epochs").set_value("10, 4000").run()  # trial 2 is long
    app.button(key="sweep_start").click().run()
    sweep = app.session_state["sweep_run"]
    run_until(app, lambda at: sweep.counts().get("done", 0) >= 1, timeout=300, pause=0.3)
    app.button(key="sweep_stop").click().run()
    run_until(app, _ended, timeout=60, pause=0.3)
    statuses = [t.status for t in sweep.trials]
    assert statuses[0] == "done" and statuses[1] == "stopped" and statuses[3] == "skipped"
    assert any("Sweep stopped" in s.value for s in app.success)
    rows = app.dataframe[0].value
    assert rows["rank"].iloc[0] == 1 and rows["status"].iloc[0] == "done"
