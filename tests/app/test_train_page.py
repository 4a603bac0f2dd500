"""AppTest for pages/train.py: controls -> RunConfig, the LR schedule, a real tiny training, stop, limits."""

from __future__ import annotations

import json

import pytest
from apphelpers import ROOT, chart_specs, open_page, run_until, sidebar_text, values
from streamlit.testing.v1 import AppTest

from ensemble_core import schedules


@pytest.fixture
def train_page(app):
    return open_page(app, "train")


def job_of(at):
    from dashboard import pool

    return pool.pool().get(at.session_state["job_id"], at.session_state["ui_browser"] + ":train")


def set_widgets(at, **values):
    for key, value in values.items():
        widget = at.get_widget(f"train_{key}") if hasattr(at, "get_widget") else None
        if widget is None:
            widget = next(w for kind in ("slider", "select_slider", "number_input", "selectbox", "toggle", "radio")
                          for w in at.get(kind) if getattr(w, "key", None) == f"train_{key}")
        widget.set_value(value)
        at.run()
        assert not at.exception, at.exception


def test_lr_schedule_is_drawn_before_training(train_page):
    at = train_page
    set_widgets(at, epochs=40, batch=8)
    cfg = at.session_state["settings"].config
    assert cfg.optim.epochs == 40 and cfg.optim.batch_size == 8
    lr = chart_specs(at)["train_lr_plan"]
    n_steps = 40 * schedules.steps_per_epoch(8, at.session_state["dataset"].n_train)
    assert len(values(lr["data"][0])) == n_steps
    assert set(values(lr["data"][0], "y")) == {cfg.optim.lr}
    assert any(b.label == "Train" and not b.disabled for b in at.button)


def test_snapshot_strategy_takes_the_cyclic_schedule_and_offers_its_recipe(train_page):
    at = train_page
    before = at.session_state["settings"].config
    set_widgets(at, kind="snapshot")
    cfg = at.session_state["settings"].config
    # only what a snapshot ensemble needs changes, and the page says so next to the control
    assert cfg == before.replace(**{"strategy.kind": "snapshot", "optim.schedule": "cyclic"})
    assert any("this also set the schedule to cyclic" in i.value for i in at.info)
    at.button(key="train_recipe").click().run()  # the recipe is an explicit choice
    o = at.session_state["settings"].config.optim
    assert (o.optimizer, o.schedule, o.lr, o.lr_min, o.granularity) == ("adam", "cyclic", 0.01, 0.0, "iteration")
    assert at.session_state["settings"].config.strategy.members == 1
    assert not any(b.key == "train_recipe" for b in at.button)  # offered only while the run differs from it
    set_widgets(at, snapshots=4, epochs=40)
    lr = chart_specs(at)["train_lr_plan"]
    planned = next(t for t in lr["data"] if t.get("name", "").startswith("Snapshot (planned)"))
    assert len(values(planned)) == 4
    assert max(values(lr["data"][0], "y")) == pytest.approx(0.01)


def test_invalid_settings_are_refused_next_to_the_control(train_page):
    at = train_page
    set_widgets(at, kind="snapshot", snapshots=6, epochs=3)  # fewer epochs than snapshots
    errors = " ".join(e.value for e in at.error)
    assert "Epochs" in errors and "snapshots" in errors and "Kept 300" in errors
    assert at.session_state["settings"].config.optim.epochs == 300
    assert at.number_input(key="train_epochs").value == 300  # the control shows what will train
    set_widgets(at, epochs=9000)  # typed beyond the control's range: refused, not clamped
    errors = " ".join(e.value for e in at.error)
    assert "9000 is above the largest allowed value, 5000" in errors
    assert at.session_state["settings"].config.optim.epochs == 300
    assert any(b.label == "Train" and not b.disabled for b in at.button)


def test_every_control_has_help(train_page):
    at = train_page
    widgets = [w for kind in ("slider", "select_slider", "number_input", "selectbox", "toggle", "radio")
               for w in at.get(kind) if str(getattr(w, "key", "")).startswith("train_")]
    assert len(widgets) >= 12
    assert all(w.help for w in widgets), [w.key for w in widgets if not w.help]


def test_tiny_training_to_completion(train_page):
    at = train_page
    set_widgets(at, members=3, epochs=4)
    next(b for b in at.button if b.label == "Train").click().run()
    assert at.session_state["job_id"]
    on_change = job_of(at).on_change  # saves the run when it ends, then reruns this session (server push)
    assert on_change.waker is at.session_state["ui_waker"]  # (a 4-epoch run may end before the live view records itself)
    run_until(at, lambda a: "Done" in sidebar_text(a))
    figs = chart_specs(at)
    loss = figs["train_loss_fig"]["data"]
    assert len(loss) == 3  # one trace per member
    assert all(len(values(t)) == 4 for t in loss)  # one point per epoch done
    val = figs["train_val_fig"]["data"]
    assert len(values(val[0])) == 4
    assert "train_preview" in figs  # 1-D regression: the live bands
    lr = figs["train_lr_live"]["layout"]  # the default constant rate too: the schedule with its "now" line
    assert [a["text"] for a in lr["annotations"]] == ["now"] and lr["shapes"][0]["x0"] == pytest.approx(4.0)
    run, ds = at.session_state["run"], at.session_state["run_dataset"]
    assert run is not None and run.epochs_done == 4 and not run.stopped
    assert ds is job_of(at).dataset
    assert any("Done" in s.value for s in at.success)
    from dashboard.chrome import duration

    took = f"4 epochs in {duration(run.seconds)}"  # the sidebar and the page give the same time
    assert took in sidebar_text(at) and any(took in s.value for s in at.success)
    assert not any("in the queue" in s.value for s in at.success)  # it started at once
    job = job_of(at)
    job.submitted_at -= 12.5  # as if it had waited behind a class's runs
    at.run()
    assert any(f"{took} (waited {duration(job.queue_seconds)} in the queue)." in s.value for s in at.success)
    labels = {m.label for m in at.metric}
    assert {"Test NLL", "Test RMSE"} <= labels


def test_stop_keeps_the_partial_run(train_page):
    at = train_page
    set_widgets(at, members=2, epochs=3000)
    next(b for b in at.button if b.label == "Train").click().run()
    job = job_of(at)
    assert job.active and at.session_state["ui_sidebar_active"]  # 3000 epochs: the click's run sees it going
    waker = job.on_change.waker  # the run is saved when it ends, then reruns the live view
    assert waker is at.session_state["ui_waker"] and waker.fragment_id
    run_until(at, lambda a: job.progress().epoch >= 2)
    loss = chart_specs(at)["train_loss_fig"]["data"]
    assert len(loss) == 2 and 1 <= len(values(loss[0])) < 3000  # the chart shows the epochs done so far
    next(b for b in at.button if b.label == "Stop").click().run()
    run_until(at, lambda a: "Stopped" in sidebar_text(a))
    run = at.session_state["run"]
    assert job.status == "stopped" and run.stopped and 2 <= run.epochs_done < 3000
    assert any("Stopped early" in s.value for s in at.success)


def test_classification_shows_accuracy_and_class_map(app):
    at = open_page(app, "data")
    at.selectbox(key="data_synth").set_value("moons").run()
    at.number_input(key="data_n").set_value(40).run()
    open_page(at, "train")
    set_widgets(at, members=2, epochs=3)
    next(b for b in at.button if b.label == "Train").click().run()
    run_until(at, lambda a: "Done" in sidebar_text(a))
    figs = chart_specs(at)
    assert len(figs["train_acc_fig"]["data"]) == 2
    assert "train_preview" in figs
    assert {"Test NLL", "Test accuracy"} <= {m.label for m in at.metric}


def test_over_limit_run_is_refused_with_the_limit(train_page):
    at = train_page
    set_widgets(at, members=20, layers=8, width=512, epochs=5000)
    warnings = " ".join(w.value for w in at.warning)
    assert "classroom limit" in warnings and "20 members" in warnings
    assert any(b.label == "Train" and b.disabled for b in at.button)


def test_sessions_are_isolated(app, train_page):
    a = train_page
    set_widgets(a, members=2, epochs=3)
    next(b for b in a.button if b.label == "Train").click().run()
    b = AppTest.from_file(str(ROOT / "app.py"), default_timeout=60).run()
    open_page(b, "train")
    assert b.session_state.get("ui_browser") != a.session_state["ui_browser"]  # two browsers
    assert b.session_state["job_id"] is None and "Idle" in sidebar_text(b)
    run_until(a, lambda s: "Done" in sidebar_text(s))
    b.run()
    assert b.session_state["run"] is None and "Idle" in sidebar_text(b)


def test_live_chart_bases_are_built_once_per_settings_and_never_changed_by_a_live_view():
    """A class training the same settings (each with its own seed) shares one set of bases, read-only."""
    import copy

    from dashboard import live, state
    from ensemble_core.data import load_dataset
    from ensemble_core.run import EpochEnd

    cfg = state.default_config().replace(**{"optim.epochs": 40, "seed": 1})
    ds = load_dataset(cfg.data)
    bases = live.live_bases(cfg, ds)
    assert live.live_bases(cfg.replace(seed=2), ds) is bases  # another student's seed: the same bases
    assert live.live_bases(cfg.replace(**{"optim.epochs": 41}), ds) is not bases  # other settings: their own
    pristine = copy.deepcopy(bases)
    events = [EpochEnd(k, 40, [1.0 / k] * 5, None, {"nll": 1.0, "rmse": 2.0}, [0.01], 0.0) for k in range(1, 11)]
    live._series_spec(bases["train_loss_fig"], events, lambda e: e.train_loss)
    live._series_spec(bases["train_val_fig"], events, lambda e: [e.val["nll"], e.val["rmse"]])
    live._lr_spec(bases["train_lr_live"], cfg, ds.n_train, 12)
    assert bases == pristine  # the live views patch copies: a shared base never changes


def test_a_restart_spike_never_flattens_a_live_chart():
    """A snapshot run's restart spike (240 over losses in [-2, 1]): the live axis keeps the curves readable."""
    from dashboard import live, state
    from ensemble_core.data import load_dataset
    from ensemble_core.run import EpochEnd

    cfg = state.default_config().replace(**{"optim.epochs": 60})
    ds = load_dataset(cfg.data)
    bases = live.live_bases(cfg, ds)
    smooth = [EpochEnd(k, 60, [1.0 - 3 * k / 60] * 5, None, {"nll": 3.0 - k / 60, "rmse": 4.0}, [0.01], 0.0)
              for k in range(1, 41)]
    spec = live._series_spec(bases["train_loss_fig"], smooth, lambda e: e.train_loss)
    assert "range" not in spec["layout"].get("yaxis", {})  # nothing to clip: Plotly's own autorange
    spiky = list(smooth)
    spiky[20] = EpochEnd(21, 60, [240.0] * 5, None, {"nll": 90.0, "rmse": 4.0}, [0.01], 0.0)
    spec = live._series_spec(bases["train_loss_fig"], spiky, lambda e: e.train_loss)
    lo, hi = spec["layout"]["yaxis"]["range"]
    assert -2.2 < lo < -1.0 and 0.9 < hi < 1.5  # the curves fill the chart, the spike is off it
    assert any("5 spikes off the scale (up to 240)" in a["text"] for a in spec["layout"]["annotations"])
    val = live._series_spec(bases["train_val_fig"], spiky, lambda e: [e.val["nll"], e.val["rmse"]])
    assert val["layout"]["yaxis"]["range"][1] < 10  # the validation NLL's axis too, on its own subplot


def test_the_schedule_chart_before_a_run_is_shared_by_every_seed_and_drawn_as_its_figure():
    """Each change of a setting reruns the page; the schedule does not depend on the seed: one spec for all."""
    from dashboard import charts, live_plot, state
    from ensemble_core.data import load_dataset

    cfg = state.default_config().replace(**{"optim.epochs": 40, "seed": 1})
    n = load_dataset(cfg.data).n_train
    plan = charts.lr_plan(cfg, n)
    assert plan == live_plot.to_spec(charts.lr_figure(cfg, n))  # what drawing the figure itself would send
    assert charts.lr_plan(cfg.replace(seed=2), n) is plan  # another student's seed: the same spec
    other = charts.lr_plan(cfg.replace(**{"optim.schedule": "cosine"}), n)  # other settings: their own schedule
    assert other is not plan and values(other["data"][0], "y") != values(plan["data"][0], "y")
    assert charts.lr_plan(cfg, n + 8) is not plan  # more rows, more steps an epoch


def test_long_live_curves_are_thinned_evenly_and_keep_the_last_epoch():
    from dashboard import live, state
    from ensemble_core.data import load_dataset
    from ensemble_core.run import EpochEnd

    cfg = state.default_config().replace(**{"optim.epochs": 3000, "strategy.members": 2})
    bases = live.live_bases(cfg, load_dataset(cfg.data))
    events = [EpochEnd(k, 3000, [1.0 / k, 2.0 / k], None, {}, [0.01], 0.0) for k in range(1, 2501)]
    spec = live._series_spec(bases["train_loss_fig"], events, lambda e: e.train_loss)
    for trace, scale in zip(spec["data"], (1.0, 2.0), strict=True):
        assert len(trace["x"]) == live.LIVE_POINTS
        assert trace["x"][0] == 1 and trace["x"][-1] == 2500  # the whole range, up to the newest epoch
        assert all(b > a for a, b in zip(trace["x"], trace["x"][1:]))
        gaps = {b - a for a, b in zip(trace["x"], trace["x"][1:])}
        assert max(gaps) - min(gaps) <= 1  # evenly spaced
        assert trace["y"] == [scale / x for x in trace["x"]]  # each point is its own epoch's value
    short = live._series_spec(bases["train_loss_fig"], events[:50], lambda e: e.train_loss)
    assert short["data"][0]["x"] == list(range(1, 51))  # short histories are not thinned
    done = live._series_spec(bases["train_loss_fig"], events, lambda e: e.train_loss, None)
    assert done["data"][0]["x"] == list(range(1, 2501))  # a finished run shows every epoch


def test_live_chart_fast_path_matches_the_viz_figures():
    """The live charts patch data into specs built once; the result must equal a full viz rebuild."""
    import numpy as np

    from dashboard import state
    from dashboard.charts import lr_figure
    from dashboard.live import _lr_spec, _series_spec, live_bases
    from ensemble_core import viz
    from ensemble_core.data import load_dataset
    from ensemble_core.run import EpochEnd

    cfg = state.default_config().replace(**{"optim.epochs": 30, "strategy.kind": "snapshot", "strategy.members": 2,
                                         "strategy.snapshots": 3, "optim.optimizer": "sgd", "optim.schedule": "cyclic",
                                         "optim.lr": 0.1})
    ds = load_dataset(cfg.data)
    bases = live_bases(cfg, ds)
    events = [EpochEnd(k, 30, [1.0 / k, float("nan") if k == 3 else 2.0 / k], None,
                       {"nll": 3.0 - k / 10, "rmse": 9.0 - k / 5}, [0.1], 0.01 * k) for k in range(1, 13)]
    fast = _series_spec(bases["train_loss_fig"], events, lambda e: e.train_loss)
    full = viz.loss_figure(events, 30, metric="loss", n_members=2, height=340).to_dict()
    for f, g in zip(fast["data"], full["data"], strict=True):
        assert f["name"] == g["name"] and values(f) == values(g)
        assert [None if v is None else round(v, 12) for v in f["y"]] == \
            [None if v is None or v != v else round(v, 12) for v in values(g, "y")]
    assert not [a for a in fast["layout"].get("annotations", ()) if "Waiting" in a.get("text", "")]
    empty = _series_spec(bases["train_loss_fig"], [], lambda e: e.train_loss)  # nothing trained yet
    assert [a for a in empty["layout"].get("annotations", ()) if "Waiting" in a.get("text", "")]
    val_fast = _series_spec(bases["train_val_fig"], events, lambda e: [e.val.get("nll"), e.val.get("rmse")])
    val_full = viz.val_figure(events, 30, "regression", height=280).to_dict()
    assert [values(t, "y") for t in val_fast["data"]] == [values(t, "y") for t in val_full["data"]]
    lr_fast = _lr_spec(bases["train_lr_live"], cfg, ds.n_train, 12)
    lr_full = lr_figure(cfg, ds.n_train, 12).to_dict()
    assert lr_fast["layout"]["shapes"][0]["x0"] == lr_full["layout"]["shapes"][0]["x0"]
    for f, g in zip(lr_fast["data"][1:], lr_full["data"][1:], strict=True):
        assert f["name"] == g["name"] and np.allclose(values(f), values(g)) and np.allclose(values(f, "y"), values(g, "y"))


def test_refresh_intervals_grow_with_the_servers_load(monkeypatch):
    from types import SimpleNamespace

    from dashboard import live

    class FakePool:
        max_running = 2

        def __init__(self, active: int, wait: float | None) -> None:
            self.active, self.wait = active, wait

        def stats(self):
            return {"running": min(self.active, 2), "queued": max(0, self.active - 2), "max_running": 2}

        def expected_wait(self, job):
            return self.wait

    def with_pool(active: int, wait: float | None = None) -> None:
        monkeypatch.setattr(live, "pool", lambda: FakePool(active, wait))

    with_pool(1)
    assert live.live_every(live.POLL_S) == live.POLL_S and live.live_every(live.CHART_S) == live.CHART_S  # alone: full speed
    with_pool(4)
    assert live.live_every(live.POLL_S) == live.POLL_S  # two runs per core: still full speed
    with_pool(20)
    assert live.live_every(live.POLL_S) == 2.5 and live.live_every(live.CHART_S) == live.SLOWEST_S  # a class: 5x, capped
    with_pool(200)
    assert live.live_every(live.POLL_S) == live.SLOWEST_S
    running, queued = SimpleNamespace(status="running"), SimpleNamespace(status="queued")
    with_pool(20, wait=4.0)
    assert live.poll_every(running) == 2.5 and live.poll_every(queued) == 2.5  # a short wait: the load decides
    with_pool(20, wait=12.0)
    assert live.poll_every(queued) == 6.0  # half the wait: quicker as the start nears
    with_pool(20, wait=60.0)
    assert live.poll_every(queued) == live.QUEUED_SLOWEST_S  # far back in the line: slow polls
    with_pool(1, wait=None)
    assert live.poll_every(queued) == live.POLL_S  # no estimate yet
    assert live.poll_every(running) == live.POLL_S  # alone: every half second
    with_pool(3)
    assert live.poll_every(running) == live.WAITING_S  # one run waits for this one's CPU: fewer redraws
    with_pool(2)
    assert live.poll_every(running) == live.POLL_S  # nobody waits


def test_durations_read_as_people_write_them():
    from dashboard.chrome import duration

    assert [duration(s) for s in (0.004, 1.234, 9.994, 12.34, 99.94, 123.4, 4321.0)] == [
        "0.00 s", "1.23 s", "9.99 s", "12.3 s", "99.9 s", "123 s", "4321 s"]


def test_a_run_the_server_refuses_says_why_and_changes_nothing(train_page, monkeypatch):
    from ensemble_core.jobs import JobPool, LimitError

    def refuse(self, *args, **kwargs):
        raise LimitError("You already have 2 runs queued or training (the most per person).")

    monkeypatch.setattr(JobPool, "submit", refuse)
    at = train_page
    next(b for b in at.button if b.label == "Train").click().run()
    assert not at.exception
    assert any("You already have 2 runs" in w.value for w in at.warning)
    assert at.session_state["job_id"] is None
    assert any(b.label == "Train" and not b.disabled for b in at.button)
    assert any(b.label == "Stop" and b.disabled for b in at.button)
    at.run()  # the message was for that click only
    assert not any("You already have" in w.value for w in at.warning)


def test_a_run_still_at_epoch_zero_says_it_is_starting():
    from types import SimpleNamespace

    from dashboard.chrome import SLOW_START_S, epoch_text, run_state
    from ensemble_core.jobs import Progress

    def job(status, epoch=0, elapsed=0.0, position=None):
        return SimpleNamespace(status=status, queue_position=position, result=None,
                               progress=lambda: Progress(epoch, 300, elapsed, None))

    assert epoch_text(job("queued", position=3)) == "waiting for a free slot (number 3 in the queue)"
    assert epoch_text(job("running", elapsed=0.1)) == "starting"
    slow = epoch_text(job("running", elapsed=SLOW_START_S + 2))
    assert slow.startswith("starting") and "training engine is loading" in slow
    assert epoch_text(job("running", epoch=12, elapsed=5.0)) == "epoch 12 of 300"
    assert run_state(job("running", elapsed=0.1))[1] == "Training — starting"
    assert run_state(job("running", epoch=12))[1] == "Training — epoch 12 of 300"


def _live_chart_script() -> None:
    import streamlit as st

    from dashboard import live

    sig = st.session_state.get("sig", 1)
    calls = st.session_state.setdefault("calls", [])

    def build() -> dict:
        calls.append(sig)
        return {"data": [{"type": "scatter", "x": [1, 2], "y": [sig, sig]}], "layout": {"height": 300}}

    live.show_live("chart", ("job", sig), build)


def test_live_charts_are_rebuilt_only_when_their_data_changed():
    """A poll between two refreshes of the data sends the chart's previous payload without building it."""
    at = AppTest.from_function(_live_chart_script, default_timeout=60)
    at.run()
    at.run()  # a poll with the same data
    assert at.session_state["calls"] == [1]
    assert chart_specs(at)["chart"]["data"][0]["y"] == [1, 1]
    first = at.session_state["ui_live_payloads"]["chart"][1]
    at.session_state["sig"] = 2  # the data refreshed
    at.run()
    assert at.session_state["calls"] == [1, 2]
    assert chart_specs(at)["chart"]["data"][0]["y"] == [2, 2]
    assert chart_specs(at)["chart"]["layout"]["height"] == 300
    assert at.session_state["ui_live_payloads"]["chart"][1] != first
    at.session_state["settings"].img_fmt = "svg"  # the Share box's download format: same data, new chart options
    at.run()
    assert at.session_state["calls"] == [1, 2, 2]
    assert "svg" in json.dumps(json.loads(at.session_state["ui_live_payloads"]["chart"][1])["config"])


def _retime_script() -> None:
    import streamlit as st
    from streamlit.runtime.scriptrunner_utils.script_run_context import get_script_run_ctx

    from dashboard.st_compat import push

    ctx = get_script_run_ctx()
    sent = []
    enqueue = ctx.enqueue

    def spy(msg) -> None:  # the messages this run sends the browser: keep the timers' ones
        if msg.WhichOneof("type") == "auto_rerun":
            sent.append((msg.auto_rerun.interval, msg.auto_rerun.fragment_id))
        enqueue(msg)

    ctx.enqueue = spy
    st.session_state["outside"] = push.retime_fragment(3.0)

    @st.fragment(run_every=10)
    def live() -> None:
        st.session_state["inside"] = push.retime_fragment(2.5)

    live()
    st.session_state["sent"] = sent


def test_a_live_view_retimes_its_own_refresh_from_inside_the_fragment():
    """The fragment's new interval follows its declared one, for the same fragment id (the browser keeps the last)."""
    at = AppTest.from_function(_retime_script, default_timeout=60)
    at.run()
    assert not at.exception
    assert at.session_state["outside"] is False  # no fragment running: nothing to retime
    assert at.session_state["inside"] is True
    (declared, declared_id), (retimed, retimed_id) = at.session_state["sent"]
    assert (declared, retimed) == (10.0, 2.5) and declared_id == retimed_id and declared_id


def test_a_pushed_rerun_keeps_the_sessions_page_and_widgets(monkeypatch):
    """push_rerun reruns a session from another thread with a copy of its last client state."""
    from types import SimpleNamespace

    import streamlit.runtime as streamlit_runtime
    from streamlit.proto.ClientState_pb2 import ClientState

    from dashboard import live
    from dashboard.st_compat import push

    state = ClientState(page_script_hash="train-page", query_string="seed=3", fragment_id="a poll", is_auto_rerun=True)
    requested = []

    class Loop:
        def call_soon_threadsafe(self, fn) -> None:
            fn()

    class Session:
        _client_state, _event_loop = state, Loop()

        def request_rerun(self, client_state) -> None:
            requested.append(client_state)

    sessions = {"s1": SimpleNamespace(session=Session())}
    monkeypatch.setattr(streamlit_runtime, "exists", lambda: True)
    monkeypatch.setattr(streamlit_runtime, "get_instance",
                        lambda: SimpleNamespace(_session_mgr=SimpleNamespace(get_active_session_info=sessions.get)))
    assert push.push_rerun("a closed tab") is False and requested == []
    assert push.push_rerun("s1") is True and push.push_rerun("s1", "live view") is True
    full, fragment = requested
    assert (full.page_script_hash, full.query_string, full.fragment_id, full.is_auto_rerun) == (
        "train-page", "seed=3", "", False)  # the whole page, the one the session is on
    assert (fragment.page_script_hash, fragment.fragment_id, fragment.is_auto_rerun) == ("train-page", "live view", True)
    assert state.fragment_id == "a poll"  # the session's own state is left alone

    waker, requested[:] = live.SessionWaker("s1"), []
    waker(SimpleNamespace(status="running", active=True))  # started before the live view was seen: nothing
    waker.fragment_id = "live view"
    waker(SimpleNamespace(status="running", active=True))  # started: the live view
    waker(SimpleNamespace(status="done", active=False))  # ended: the whole page
    assert [r.fragment_id for r in requested] == ["live view", ""]
    monkeypatch.setattr(streamlit_runtime, "exists", lambda: False)  # AppTest, a bare script: no server to push
    assert push.push_rerun("s1") is False


def test_the_mse_loss_keeps_every_setting_across_reruns_and_pages(train_page):
    """The reported crash: MSE hides the variance-head radio, Streamlit drops its state, and pressing Train
    raised KeyError 'train_var' (then every setting came back at its minimum)."""
    at = train_page
    set_widgets(at, epochs=40, lr=0.03, var="logvar", members=3)
    before = at.session_state["settings"].config
    set_widgets(at, loss="mse")
    at.run().run()  # the radio is not drawn: Streamlit forgets its widget state (AppTest: a run later)
    next(b for b in at.button if b.label == "Train").click().run()
    assert not at.exception
    job = job_of(at)
    assert job.config == before.replace(**{"loss.kind": "mse"})  # trains exactly what the controls show
    job.stop()
    open_page(at, "data")
    open_page(at, "train")
    assert at.session_state["settings"].config == before.replace(**{"loss.kind": "mse"})
    set_widgets(at, loss="nll")  # the hidden radio comes back with the value it had
    assert at.radio(key="train_var").value == "logvar"
