"""Tests for ensemble_core.share: links restore every field; bad links say why."""

from __future__ import annotations

import dataclasses
from urllib.parse import parse_qsl, urlsplit

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ensemble_core.config import (
    ConfigError,
    DataSpec,
    LossSpec,
    ModelSpec,
    OptimSpec,
    RunConfig,
    StrategySpec,
)
from ensemble_core.share import (
    CONTROLS,
    PAGES,
    SECTIONS,
    ShareState,
    add_click_grid,
    add_training_point,
    apply_query,
    click_grid,
    from_query,
    make_link,
    point_from_selection,
    presentation_css,
    sync_query_params,
    to_query,
    visible,
)

finite = dict(allow_nan=False, allow_infinity=False)


@st.composite
def run_configs(draw: st.DrawFn) -> RunConfig:
    """Random valid RunConfigs touching every field."""
    name = draw(st.sampled_from(["cubic", "sine", "gap", "moons", "spirals"]))
    val = draw(st.floats(0.0, 0.4, **finite))
    data = DataSpec(
        source="synthetic", name=name, n=draw(st.integers(4, 5000)), noise=draw(st.floats(0, 100, **finite)),
        seed=draw(st.integers(0, 2**31 - 1)), gap=draw(st.booleans()), n_classes=draw(st.integers(2, 10)),
        val_fraction=val, test_fraction=draw(st.floats(0.0, min(0.5, 0.8 - val), **finite)),
        target=draw(st.text(max_size=8)), features=tuple(draw(st.lists(st.text(max_size=6), max_size=3))),
        task=draw(st.sampled_from(["auto", "regression", "classification"])),
    )
    model = ModelSpec(draw(st.integers(0, 8)), draw(st.integers(1, 1024)),
                      draw(st.sampled_from(["relu", "tanh", "gelu", "silu"])))
    loss = LossSpec(draw(st.sampled_from(["nll", "beta_nll", "mse"])), draw(st.floats(0, 1, **finite)),
                    draw(st.sampled_from(["softplus", "logvar"])))
    kind = draw(st.sampled_from(["independent", "bootstrap", "snapshot"]))
    members = draw(st.integers(1, 20 if kind != "snapshot" else 4))
    snaps = draw(st.integers(1, 10))
    strategy = StrategySpec(kind, members, snaps, draw(st.booleans()), draw(st.floats(1e-4, 1.0, **finite)))
    lr = draw(st.floats(1e-6, 100, **finite))
    optim = OptimSpec(
        draw(st.sampled_from(["adam", "sgd"])), lr, draw(st.floats(0, lr, **finite)),
        draw(st.floats(0, 1, **finite)), draw(st.floats(0, 0.999, **finite)), draw(st.integers(1, 100_000)),
        draw(st.integers(snaps, 5000)), "cyclic" if kind == "snapshot" else draw(st.sampled_from(["constant", "cosine"])),
        draw(st.sampled_from(["epoch", "iteration"])),
    )
    return RunConfig(data, model, loss, strategy, optim, draw(st.integers(0, 2**31 - 1)),
                     draw(st.sampled_from(["cpu", "cuda", "auto"])))


share_states = st.builds(
    ShareState,
    config=run_configs(),
    page=st.sampled_from(PAGES),
    hidden=st.frozensets(st.sampled_from(CONTROLS + SECTIONS), max_size=6),
    presentation=st.booleans(),
    lesson=st.one_of(st.none(), st.sampled_from(["figure1", "aleatoric-epistemic", "how_many"])),
)


@settings(max_examples=150, deadline=None)
@given(share_states, st.booleans())
def test_every_field_round_trips_through_the_query(state: ShareState, only_changed: bool) -> None:
    params = to_query(state, only_changed=only_changed)
    assert all(isinstance(k, str) and isinstance(v, str) for k, v in params.items())
    assert from_query(params) == state


@settings(max_examples=60, deadline=None)
@given(share_states)
def test_every_field_round_trips_through_a_link(state: ShareState) -> None:
    link = make_link("http://localhost:8501/", state)
    parts = urlsplit(link)
    assert parts.netloc == "localhost:8501"
    assert parts.path == ("" if state.page == "home" else "/" + state.page)
    assert from_query(dict(parse_qsl(parts.query, keep_blank_values=True))) == state


def test_default_state_gives_a_short_link() -> None:
    assert to_query(ShareState()) == {"page": "home"}
    assert make_link("http://h:1/train", ShareState(page="lessons", lesson="figure1")) == (
        "http://h:1/lessons?page=lessons&lesson=figure1"
    )


def test_list_values_take_the_last_and_unknown_keys_are_ignored() -> None:
    state = from_query({"optim.lr": ["0.5", "0.25"], "utm_source": "mail", "page": "train"})
    assert state.config.optim.lr == 0.25 and state.page == "train"


@pytest.mark.parametrize(
    ("params", "fragment"),
    [
        ({"optim.lr": "fast"}, "optim.lr"),
        ({"strategy.members": "99"}, "strategy.members"),
        ({"page": "admin"}, "page"),
        ({"hide": "optim.lr,optim.turbo"}, "optim.turbo"),
        ({"present": "maybe"}, "present"),
        ({"lesson": "<script>"}, "lesson"),
    ],
)
def test_bad_values_give_a_clear_error_and_apply_falls_back(params: dict[str, str], fragment: str) -> None:
    with pytest.raises(ConfigError, match=fragment):
        from_query(params)
    state, message = apply_query(params)
    assert state == ShareState()
    assert message is not None and fragment in message and "defaults" in message


def test_apply_query_accepts_a_good_link() -> None:
    state, message = apply_query({"strategy.members": "3", "hide": "optim"})
    assert message is None and state.config.strategy.members == 3 and state.classroom


def test_visible_hides_controls_and_whole_sections() -> None:
    state = ShareState(hidden=frozenset({"optim.lr", "model"}))
    assert not visible("optim.lr", state)
    assert visible("optim.epochs", state)
    assert not visible("model.width", state) and not visible("model.activation", state)
    assert visible("strategy.members", state) and visible("optim.lr", None)


def test_sync_query_params_writes_only_changes_and_keeps_foreign_keys() -> None:
    qp: dict[str, str] = {"utm": "x", "optim.lr": "0.5", "hide": "model"}
    state = ShareState(config=RunConfig().replace(**{"strategy.members": 3}), page="train")
    assert sync_query_params(qp, state)
    assert qp == {"utm": "x", "strategy.members": "3", "page": "train"}
    assert not sync_query_params(qp, state)
    assert from_query(qp) == state


def test_presentation_css_only_when_presenting() -> None:
    assert presentation_css(ShareState()) == ""
    css = presentation_css(ShareState(presentation=True))
    assert css.startswith("\n<style>") and css.rstrip().endswith("</style>") and "font-size" in css


def test_add_click_grid_makes_the_plot_clickable() -> None:
    import plotly.graph_objects as go

    fig = go.Figure(go.Scatter(x=[0, 1], y=[0, 1], name="data"))
    with pytest.raises(ValueError, match="ranges"):
        add_click_grid(fig)
    fig.update_layout(xaxis_range=[-6, 6], yaxis_range=[-10, 10])
    curve = add_click_grid(fig, n=4)
    assert curve == 1 and len(fig.data[1].x) == 16 and fig.data[1].marker.opacity == 0
    assert fig.data[1].hoverinfo == "none"  # "skip" would also disable click events
    assert fig.layout.hovermode == "closest" and fig.data[0].unselected.marker.opacity == 1.0


def test_click_selection_gives_the_point_of_the_click_grid() -> None:
    xs, ys = click_grid((-6, 6), (-100, 100), n=5)
    assert xs.shape == ys.shape == (25,) and xs.min() == -6 and ys.max() == 100
    event = {"selection": {"points": [{"curve_number": 0, "x": 1.0, "y": 2.0},
                                      {"curve_number": 3, "x": 0.5, "y": -7.0}]}}
    assert point_from_selection(event, curve=3) == (0.5, -7.0)
    assert point_from_selection(event, curve=0) == (1.0, 2.0)
    assert point_from_selection(event, curve=9) is None
    assert point_from_selection({"selection": {"points": []}}) is None
    assert point_from_selection(None) is None


@dataclasses.dataclass
class _Toy:
    """The fields of data.Dataset that add_training_point touches."""

    task: str
    x_train: np.ndarray
    y_train: np.ndarray
    x_mean: np.ndarray
    x_std: np.ndarray
    y_mean: float
    y_std: float
    notes: list[str]


def test_add_training_point_refits_statistics_and_keeps_the_original() -> None:
    x = np.array([[0.0], [2.0]])
    d = _Toy("regression", x, np.array([1.0, 3.0]), x.mean(0), x.std(0), 2.0, 1.0, [])
    d2 = add_training_point(d, 4.0, 5.0)
    assert d.x_train.shape == (2, 1) and d2.x_train.shape == (3, 1)
    assert d2.x_mean[0] == pytest.approx(2.0) and d2.y_mean == pytest.approx(3.0)
    assert d2.y_std == pytest.approx(np.std([1.0, 3.0, 5.0]))
    with pytest.raises(ValueError, match="finite"):
        add_training_point(d, float("nan"), 1.0)
    with pytest.raises(ValueError, match="1-D regression"):
        add_training_point(dataclasses.replace(d, task="classification"), 1.0, 1.0)
