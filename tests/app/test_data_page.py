"""AppTest for pages/data.py: every source, the CSV upload (good and malformed), the split, escaping."""

from __future__ import annotations

import pytest
from apphelpers import chart_specs, open_page, sidebar_text

GOOD_CSV = b"size,rooms,city,price\n" + b"".join(
    f"{50 + i},{1 + i % 4},{'AB'[i % 2]},{100 + 3 * i + (i % 5)}\n".encode() for i in range(40)
) + b"70,2,A,\n"  # one row without a target: dropped with a note


@pytest.fixture
def data_page(app):
    return open_page(app, "data")


def test_default_is_the_cubic_toy_with_its_figure(data_page):
    at = data_page
    assert at.session_state["dataset"].name.lower().startswith("cubic")
    assert {m.label: m.value for m in at.metric}["Training rows"] == "20"
    figs = chart_specs(at)
    assert figs, "the data figure is drawn"
    names = [t.get("name", "") for fig in figs.values() for t in fig["data"]]
    assert any("Train" in n for n in names)


@pytest.mark.parametrize("name, task", [("moons", "classification"), ("sine", "regression"),
                                        ("spirals", "classification")])
def test_switch_generator(data_page, name, task):
    at = data_page
    at.selectbox(key="data_synth").set_value(name).run()
    assert not at.exception and not at.error
    assert at.session_state["settings"].config.data.name == name
    assert at.session_state["dataset"].task == task
    assert at.session_state["settings"].config.data == at.session_state["settings"].config.data


def test_gap_and_size_controls(data_page):
    at = data_page
    at.number_input(key="data_n").set_value(60).run()
    at.toggle(key="data_gap").set_value(True).run()
    spec = at.session_state["settings"].config.data
    assert (spec.n, spec.gap) == (60, True)
    assert at.session_state["dataset"].n_train == 60
    assert "60 points" in sidebar_text(at)


def test_bundled_source(data_page):
    at = data_page
    at.segmented_control(key="data_source").set_value("bundled").run()
    at.selectbox(key="data_bundled").set_value("wine").run()
    assert not at.exception and not at.error
    ds = at.session_state["dataset"]
    assert ds.task == "classification" and ds.n_features == 13
    assert chart_specs(at), "histograms are drawn for many features"


def test_split_controls_and_invalid_split(data_page):
    at = data_page
    at.segmented_control(key="data_source").set_value("bundled").run()
    at.slider(key="data_test").set_value(0.4).run()
    assert at.session_state["settings"].config.data.test_fraction == 0.4
    at.slider(key="data_val").set_value(0.5).run()  # 0.5 + 0.4 leaves < 20% for training
    assert not at.exception
    assert any("Validation fraction" in e.value and "Kept 0\\.2" in e.value for e in at.error), [e.value for e in at.error]
    assert at.session_state["settings"].config.data.val_fraction == 0.2
    assert at.slider(key="data_val").value == 0.2  # the control shows what will train


def test_csv_upload_with_summary(data_page):
    at = data_page
    at.segmented_control(key="data_source").set_value("csv").run()
    at.file_uploader(key="data_upload").set_value(("houses.csv", GOOD_CSV, "text/csv")).run()
    assert not at.exception and not at.error
    ds = at.session_state["dataset"]
    assert ds.task == "regression" and ds.target_name == "price"
    assert ds.feature_names == ["size", "rooms"]  # the text column is not offered by default
    assert at.session_state["csv_bytes"] == GOOD_CSV
    notes = " ".join(m.value for m in at.markdown)
    assert "city" in notes and "not used" in notes  # the dropped column, with its reason
    assert "dropped" in notes  # the row without a target
    assert any(df.value.shape[0] > 0 for df in at.dataframe)  # preview tables


def test_csv_choose_target_and_task(data_page):
    at = data_page
    at.segmented_control(key="data_source").set_value("csv").run()
    at.file_uploader(key="data_upload").set_value(("houses.csv", GOOD_CSV, "text/csv")).run()
    at.selectbox(key="data_target").set_value("rooms").run()
    at.selectbox(key="data_task").set_value("classification").run()
    assert not at.exception and not at.error
    ds = at.session_state["dataset"]
    assert ds.target_name == "rooms" and ds.task == "classification" and ds.n_classes == 4


@pytest.mark.parametrize("content", [b"", b"\x00\x01\x02\xff binary", b"a,b,c\n", b"only\n1\n2\n"])
def test_malformed_csv_shows_an_error_not_an_exception(data_page, content):
    at = data_page
    at.segmented_control(key="data_source").set_value("csv").run()
    before = at.session_state["dataset"]
    at.file_uploader(key="data_upload").set_value(("bad.csv", content, "text/csv")).run()
    assert not at.exception
    assert at.error, "a human message is shown"
    assert "Traceback" not in at.error[0].value
    assert at.session_state["dataset"] is before  # the previous data are kept


def test_column_names_are_escaped(data_page):
    at = data_page
    evil = b"<b>x</b>,**y**\n" + b"".join(f"{i},{i * 2 + i % 3}\n".encode() for i in range(30))
    at.segmented_control(key="data_source").set_value("csv").run()
    at.file_uploader(key="data_upload").set_value(("e.csv", evil, "text/csv")).run()
    assert not at.exception
    caption = " ".join(c.value for c in at.caption)
    assert r"\*\*y\*\*" in caption  # shown literally, not as bold
    assert all(not getattr(m.proto, "allow_html", False) for m in at.markdown if "<b>" in m.value or "\\<b" in m.value)


def test_a_csv_whose_last_column_cannot_be_the_target_lets_you_pick_another(data_page):
    """A constant last column is refused, but the file stays: choosing another target makes it usable."""
    at = data_page
    rows = b"".join(f"{i},{2 * i + (i % 3)},7\n".encode() for i in range(60))
    at.segmented_control(key="data_source").set_value("csv").run()
    at.file_uploader(key="data_upload").set_value(("flat.csv", b"x,y,flat\n" + rows, "text/csv")).run()
    assert not at.exception
    assert any("cannot be used" in e.value for e in at.error)
    assert at.session_state["settings"].config.data.source == "synthetic"  # the old data train meanwhile
    at.selectbox(key="data_p_target").set_value("y").run()
    assert not at.exception and not at.error
    spec = at.session_state["settings"].config.data
    assert (spec.source, spec.target) == ("csv", "y") and "flat" not in spec.features
    assert at.session_state["dataset"].target_name == "y"
