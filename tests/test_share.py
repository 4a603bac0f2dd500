"""Tests for ensemble_core.share: links restore every field; bad links say why."""

from __future__ import annotations

from urllib.parse import parse_qsl, urlsplit

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
    apply_query,
    from_query,
    make_link,
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
