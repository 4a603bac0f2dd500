"""The settings model (dashboard/settings.py): one typed object per session, validated on every change."""

from __future__ import annotations

import pytest

from dashboard.settings import SNAPSHOT_RECIPE, Range, SettingError, Settings, default_config
from ensemble_core import share
from ensemble_core.config import ConfigError, DataSpec, RunConfig


def test_a_change_touches_only_its_own_setting() -> None:
    s = Settings()
    before = s.config
    for path, value in [("loss.kind", "mse"), ("loss.kind", "beta_nll"), ("optim.schedule", "cosine"),
                        ("optim.optimizer", "sgd"), ("strategy.kind", "bootstrap"), ("loss.kind", "nll")]:
        assert s.set(path, value) == []
    assert s.config == before.replace(**{"optim.schedule": "cosine", "optim.optimizer": "sgd",
                                         "strategy.kind": "bootstrap"})
    assert s.config.loss.variance == before.loss.variance  # a hidden control keeps its value


def test_a_snapshot_ensemble_takes_only_what_it_needs() -> None:
    s = Settings()
    s.set("optim.epochs", 3)
    assert s.set("strategy.kind", "snapshot") == ["optim.schedule", "optim.epochs"]
    assert (s.config.optim.schedule, s.config.optim.epochs) == ("cyclic", s.config.strategy.snapshots)
    assert s.config.optim.lr == default_config().optim.lr  # the recipe is an explicit choice, not a side effect
    s.apply(SNAPSHOT_RECIPE)
    assert all(s.get(p) == v for p, v in SNAPSHOT_RECIPE.items())


def test_a_refused_value_leaves_everything_as_it_was() -> None:
    s = Settings()
    s.set("strategy.kind", "snapshot")
    before = s.config
    with pytest.raises(SettingError, match="cyclic"):
        s.set("optim.schedule", "constant")
    with pytest.raises(SettingError, match="optim.epochs"):
        s.set("optim.epochs", 2)  # 5 snapshots need 5 epochs
    with pytest.raises(SettingError):
        s.set("optim.lr", -1.0)
    assert s.config == before


def test_ranges_refuse_with_the_value_and_the_limit() -> None:
    r = Range(1, 5000, integer=True)
    assert r.check("Epochs", 300.0) == 300 and isinstance(r.check("Epochs", 300.0), int)
    with pytest.raises(SettingError, match="9000 is above the largest allowed value, 5000"):
        r.check("Epochs", 9000)
    with pytest.raises(SettingError, match="below the smallest"):
        r.check("Epochs", 0)
    with pytest.raises(SettingError, match="whole number"):
        r.check("Epochs", 2.5)
    for bad in (float("nan"), float("inf"), None, "3", True):
        with pytest.raises(SettingError):
            r.check("Epochs", bad)


def test_page_settings_are_typed() -> None:
    s = Settings()
    s.set("compare.members", 4)
    s.set("lesson", "bootstrap")
    s.set("img_fmt", "svg")
    assert (s.compare.members, s.lesson, s.img_fmt) == (4, "bootstrap", "svg")
    for path, value in [("img_fmt", "gif"), ("compare.members", "4"), ("compare.members", True),
                        ("share_hide", ("no.such",)), ("data_view", "ftp"), ("presentation", 1)]:
        with pytest.raises(SettingError):
            s.set(path, value)
    with pytest.raises(SettingError, match="no such setting"):
        s.get("optim.nope")


def test_the_data_page_remembers_each_source() -> None:
    s = Settings()
    s.set("data.n", 57)
    bundled = s.spec_for_view("bundled")
    assert bundled.source == "bundled" and bundled.seed == s.config.data.seed
    s.set_data(bundled)
    assert s.spec_for_view("synthetic").n == 57  # back to the generator as it was left
    assert s.spec_for_view("csv") is None  # nothing uploaded yet
    s.set_data(DataSpec(source="csv", name="a.csv", target="y", features=("a", "y")))
    assert s.set("data.target", "a") == ["data.features"] and s.config.data.features == ("y",)


def test_a_classroom_link_hides_controls_but_keeps_their_values() -> None:
    s = Settings()
    link = share.ShareState(config=RunConfig().replace(**{"optim.lr": 0.003}), page="train",
                            hidden=frozenset({"optim", "strategy.members"}), presentation=True, lesson="bootstrap")
    s.open_link(link, with_config=True)
    assert s.config.optim.lr == 0.003 and s.presentation and s.lesson == "bootstrap"
    assert not s.visible("optim.lr") and not s.visible("strategy.members") and s.visible("strategy.kind")
    assert s.share_state("train", None).hidden == link.hidden


def test_config_replace_validates_changes_together() -> None:
    cfg = RunConfig()
    both = cfg.replace(**{"strategy.kind": "snapshot", "optim.schedule": "cyclic"})
    assert (both.strategy.kind, both.optim.schedule) == ("snapshot", "cyclic")
    with pytest.raises(ConfigError, match="optim.schedule"):
        cfg.replace(**{"strategy.kind": "snapshot"})
    with pytest.raises(ConfigError, match="optim.epochs"):  # a cyclic schedule restarts once per snapshot
        cfg.replace(**{"optim.schedule": "cyclic", "optim.epochs": 3, "strategy.snapshots": 5})


def test_the_executor_setting_defaults_to_the_servers_env_and_refuses_unknown_values(monkeypatch) -> None:
    from dashboard.settings import EXECUTOR_ENV

    monkeypatch.delenv(EXECUTOR_ENV, raising=False)
    s = Settings()
    assert s.executor is None and s.effective_executor() == "process"
    monkeypatch.setenv(EXECUTOR_ENV, "ray")
    assert s.effective_executor() == "ray"
    assert s.effective_executor(ray_ok=False) == "process"  # no Ray on this server: the worker processes
    monkeypatch.setenv(EXECUTOR_ENV, "spark")
    assert s.effective_executor() == "process"  # an env value the app does not know is ignored
    s.set("executor", "ray")
    assert s.get("executor") == "ray" and s.effective_executor() == "ray"
    with pytest.raises(SettingError, match="Train on"):
        s.set("executor", "thread")
    with pytest.raises(SettingError):
        s.set("executor", 3)
    assert s.executor == "ray"  # a refused value changes nothing
    s.set("executor", None)
    assert s.effective_executor() == "process"
