"""AppTest for the classroom features wired into the dashboard (issue 4).

Shareable links (open a link -> the Train and Data widgets show its values;
set widgets -> the URL and the Share box's link carry them; reload -> same
widgets), classroom links (hidden controls are not drawn and keep the link's
value), bad links (a warning, never an exception), presentation mode, and the
Uncertainty page's import of exported runs.
"""

from __future__ import annotations

from urllib.parse import parse_qsl, urlsplit

import numpy as np
import pytest
from apphelpers import open_page
from streamlit.testing.v1 import AppTest

from ensemble_core import persistence, share
from ensemble_core.config import RunConfig
from ensemble_core.data import load_dataset
from ensemble_core.predict import predict
from ensemble_core.training import train


def widget(at: AppTest, key: str):
    """The widget with this key, whatever its kind; ``None`` when it is not drawn."""
    for kind in ("slider", "select_slider", "number_input", "selectbox", "toggle", "radio", "button_group"):
        for w in at.get(kind):
            if getattr(w, "key", None) == key:
                return w
    return None


def set_widget(at: AppTest, key: str, value) -> None:
    w = widget(at, key)
    assert w is not None, f"{key} is not drawn"
    w.set_value(value).run()
    assert not at.exception, [e.message for e in at.exception]


def link_params(at: AppTest) -> dict[str, str]:
    """The query parameters of the link the Share box shows."""
    codes = [c.value for c in at.get("code") if "page=" in c.value]
    assert len(codes) == 1, codes
    return dict(parse_qsl(urlsplit(codes[0]).query, keep_blank_values=True))


TRAIN_VALUES = {  # widget key -> a value different from the default (snapshot first: it resets others)
    "train_kind": "snapshot", "train_members": 2, "train_snapshots": 3, "train_adv": True, "train_seed": 7,
    "train_layers": 3, "train_width": 32, "train_act": "tanh", "train_loss": "beta_nll", "train_beta": 0.3,
    "train_var": "logvar", "train_opt": "sgd", "train_lr": 0.03, "train_lr_min": 0.001, "train_gran": "epoch",
    "train_epochs": 40, "train_batch": 16, "train_wd": 1e-4, "train_momentum": 0.8,
}
DATA_VALUES = {"data_synth": "sine", "data_n": 30, "data_seed": 3, "data_noise": 1.5, "data_gap": True,
               "data_val": 0.1, "data_test": 0.3}


def test_a_link_restores_the_train_widgets_and_the_data(fresh):
    cfg = RunConfig().replace(**{"strategy.members": 3, "strategy.kind": "bootstrap", "optim.lr": 0.003,
                                 "optim.epochs": 60, "data.n": 30, "data.name": "sine"})
    at = fresh(share.to_query(share.ShareState(config=cfg, page="train")), page="train")
    assert widget(at, "train_members").value == 3
    assert widget(at, "train_kind").value == "bootstrap"
    assert widget(at, "train_lr").value == 0.003
    assert widget(at, "train_epochs").value == 60
    assert at.session_state["settings"].config == cfg  # the widgets rebuild exactly the link's config
    assert at.session_state["dataset"].n_train == 30 and at.session_state["settings"].config.data.name == "sine"
    assert "30 training rows" in " ".join(c.value for c in at.sidebar.caption)
    assert not at.warning


def test_a_classroom_link_draws_only_the_chosen_controls(fresh):
    cfg = RunConfig().replace(**{"strategy.members": 4, "optim.lr": 0.003, "model.width": 32})
    hidden = frozenset(c for c in share.CONTROLS if c not in ("strategy.members", "strategy.kind"))
    at = fresh(share.to_query(share.ShareState(config=cfg, page="train", hidden=hidden)), page="train")
    drawn = {w.key for kind in ("slider", "select_slider", "number_input", "selectbox", "toggle", "radio")
             for w in at.get(kind) if (w.key or "").startswith("train_")}
    assert drawn == {"train_members", "train_kind"}
    assert [t.label for t in at.tabs] == ["Ensemble"]
    set_widget(at, "train_members", 6)  # students change what they may; the hidden values stay the link's
    got = at.session_state["settings"].config
    assert got.strategy.members == 6 and got.optim.lr == 0.003 and got.model.width == 32
    # switching strategy does not overwrite hidden controls with the strategy's defaults
    set_widget(at, "train_kind", "bootstrap")
    assert at.session_state["settings"].config.optim.lr == 0.003
    # the Data page hides its controls too
    open_page(at, "data")
    assert widget(at, "data_n") is None and widget(at, "data_synth") is None and widget(at, "data_noise") is None
    # students share it as they got it: the same hidden controls, and no way to unhide them
    shared = share.from_query(link_params(at))
    assert {c for c in share.CONTROLS if not share.visible(c, shared)} == hidden
    assert "optim" in shared.hidden  # whole sections are named once (shorter links)
    assert widget(at, "ui_share_hide") is None and not at.multiselect


def test_the_share_box_makes_a_classroom_link_and_switches_presentation_on(fresh):
    at = fresh(page="train")
    at.multiselect(key="ui_share_hide").set_value(["optim", "model.width"]).run()
    link = share.from_query(link_params(at))
    assert link.hidden == {"optim", "model.width"} and link.page == "train"
    assert share.visible("optim.lr", share.from_query(at.query_params))  # the teacher keeps every control
    at.toggle(key="ui_share_present").set_value(True).run()
    assert any("font-size: 21px" in h.proto.body for h in at.get("html"))
    assert share.from_query(at.query_params).presentation and share.from_query(link_params(at)).presentation


def test_a_url_changed_in_place_is_applied(fresh):
    """A link opened in place (same session, parameters this session never wrote): the setup follows it."""
    at = fresh(page="train")
    at.query_params.update({"strategy.members": "7", "page": "train"})
    at.run()
    assert widget(at, "train_members").value == 7 and at.session_state["settings"].config.strategy.members == 7


def test_every_control_set_in_the_ui_survives_a_reload_from_the_link(fresh):
    at = fresh(page="data")
    for key, value in DATA_VALUES.items():
        set_widget(at, key, value)
    open_page(at, "train")
    for key, value in TRAIN_VALUES.items():
        set_widget(at, key, value)
    cfg = at.session_state["settings"].config
    for key, value in TRAIN_VALUES.items():  # the UI really changed every control
        assert widget(at, key).value == value, key
    params = dict(at.query_params)
    assert params == link_params(at)  # the address bar and the Share box agree
    assert params["page"] == "train"

    again = fresh(params)  # reload: the router would open /train; the link's page key says so
    assert share.from_query(again.query_params).page == "train"
    open_page(again, "train")
    for key, value in TRAIN_VALUES.items():
        assert widget(again, key).value == value, key
    assert again.session_state["settings"].config == cfg
    open_page(again, "data")
    for key, value in DATA_VALUES.items():
        assert widget(again, key).value == value, key
    assert again.session_state["dataset"].n_train == 30


@pytest.mark.parametrize("params", [{"optim.lr": "fast"}, {"hide": "optim.nonsense"}, {"strategy.members": "-3"},
                                    {"page": "<script>alert(1)</script>"}, {"present": "maybe"}])
def test_a_bad_link_warns_and_opens_the_defaults(fresh, params):
    at = fresh(params, page="train")
    assert at.warning and "could not be used" in at.warning[0].value
    assert "<script>" not in at.warning[0].value  # user text is escaped
    assert at.session_state["settings"].config == RunConfig().replace(**{"optim.epochs": 300})
    at.button(key="ui_share_dismiss").click().run()
    assert not at.warning


def test_presentation_mode_enlarges_type_and_tucks_the_settings_away(fresh):
    at = fresh({"present": "1"}, page="train")
    assert any("font-size: 21px" in h.proto.body for h in at.get("html"))
    assert [e.label for e in at.expander] == ["Settings"]
    plain = fresh(page="train")
    assert not any("font-size: 21px" in h.proto.body for h in plain.get("html"))
    assert not plain.expander


@pytest.fixture(scope="module")
def tiny_run():
    cfg = RunConfig().replace(**{"strategy.members": 2, "optim.epochs": 3, "model.width": 8})
    ds = load_dataset(cfg.data)
    return train(cfg, ds), ds


def test_import_of_an_exported_run_shows_the_same_predictions(fresh, tiny_run):
    run, ds = tiny_run
    at = fresh(page="uncertainty")
    at.file_uploader(key="ui_import").upload("run.zip", b"PK\x03\x04 certainly not a zip", "application/zip").run()
    assert not at.exception and at.error and "cannot be imported" in at.error[0].value
    assert at.session_state["run"] is None

    at.file_uploader(key="ui_import").upload("run.zip", persistence.export_zip(run, ds), "application/zip").run()
    assert not at.exception, [e.message for e in at.exception]
    got = at.session_state["run"]
    np.testing.assert_array_equal(predict(got, ds.x_test).mean, predict(run, ds.x_test).mean)
    assert at.session_state["run_dataset"].n_train == ds.n_train
    assert any(b.label == "Download the run (.zip)" for b in at.get("download_button"))
    assert any(b.label == "HTML report" for b in at.get("download_button"))


def test_a_run_on_other_columns_asks_to_load_its_data_first(fresh, tiny_run):
    run, ds = tiny_run
    other = run.config.replace(**{"data.source": "csv", "data.name": "houses.csv", "data.target": "price"})
    moved = type(run)(**{**run.__dict__, "config": other, "feature_names": ["area"]})
    at = fresh(page="uncertainty")
    at.file_uploader(key="ui_import").upload("run.zip", persistence.export_zip(moved), "application/zip").run()
    assert not at.exception and at.error and "Load those data on the Data page first" in at.error[0].value
    assert at.session_state["run"] is None
