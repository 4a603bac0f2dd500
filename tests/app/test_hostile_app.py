"""Hostile inputs through the app (AppTest): links, run imports, user text in messages and tables.

A link nested 3,000 deep or asking for more than a control offers, the two hostile run zips of
``tests/attack_zips.py``, a CSV whose column names are Markdown or spreadsheet formulas: each gives a
clear message (escaped) and never an exception.
"""

from __future__ import annotations

import attack_zips
import pytest
from streamlit.testing.v1 import AppTest

from dashboard.settings import default_config


def _warnings(at: AppTest) -> str:
    return " ".join(w.value for w in at.warning)


def test_a_link_nested_3000_deep_warns_and_opens_the_defaults(fresh):
    at = fresh({"data.features": "[" * 3000 + "]" * 3000, "optim.lr": "0.5"}, page="train")
    assert "nested too deeply" in _warnings(at)
    assert at.session_state["settings"].config == default_config()
    at.run()  # a reload of the same URL: the same warning, still no exception
    assert not at.exception and "nested too deeply" in _warnings(at)


def test_a_link_with_a_huge_value_is_refused_before_parsing(fresh):
    at = fresh({"data.name": "x" * 50_000}, page="data")
    assert "at most 16,384 are allowed" in _warnings(at)
    assert at.session_state["settings"].config == default_config()


def test_a_link_beyond_the_visible_control_says_what_was_used(fresh):
    at = fresh({"data.n": "100000", "model.width": "1024"}, page="data")
    warning = _warnings(at)
    assert "This link asks for 100,000 training points; at most 10,000 are allowed here — 10,000 were used" in warning
    cfg = at.session_state["settings"].config
    assert cfg.data.n == 10_000 and cfg.model.width == 1024  # a width not among the stops is simply shown
    assert next(w for w in at.number_input if w.key == "data_n").value == 10_000
    assert at.session_state["dataset"].n_train == 10_000


def test_a_hidden_control_keeps_the_links_value(fresh):
    at = fresh({"data.n": "20000", "hide": "data"}, page="train")
    assert "training points" not in _warnings(at)
    assert at.session_state["settings"].config.data.n == 20_000


@pytest.mark.parametrize("make,words", [
    (attack_zips.huge_lr_trace_zip, "run.json is 100.0 MB"),
    (attack_zips.float8_model_zip, "294,051,920 parameters"),
], ids=["lr_trace", "float8"])
def test_the_hostile_run_zips_are_refused_on_the_uncertainty_page(fresh, make, words):
    at = fresh(page="uncertainty")
    at.file_uploader(key="ui_import").upload("run.zip", make(), "application/zip").run()
    assert not at.exception, [e.message for e in at.exception]
    shown = at.error[0].value.replace("\\", "") if at.error else ""  # the message is Markdown-escaped
    assert "cannot be imported" in shown and words in shown
    assert at.session_state["run"] is None


LEAK = "![t](http://127.0.0.1:9/leak.png)"


def test_a_constant_target_named_like_an_image_is_shown_escaped(fresh):
    csv = (f"x,{LEAK}\n" + "".join(f"{i},1\n" for i in range(30))).encode()
    at = fresh(page="data")
    at.segmented_control(key="data_source").set_value("csv").run()
    at.file_uploader(key="data_upload").set_value(("leak.csv", csv, "text/csv")).run()
    assert not at.exception
    shown = " ".join(e.value for e in at.error)
    assert "single value" in shown and LEAK not in shown and r"\!\[t\]\(http" in shown


def test_set_data_escapes_the_error_it_shows():
    def script():
        from dashboard import state
        from ensemble_core.config import DataSpec

        leak = "![t](http://127.0.0.1:9/leak.png)"
        csv = (f"x,{leak}\n" + "".join(f"{i},1\n" for i in range(30))).encode()
        state.set_data(DataSpec(source="csv", name="leak.csv"), csv)

    at = AppTest.from_function(script, default_timeout=30).run()
    assert not at.exception, [e.message for e in at.exception]
    assert at.error and LEAK not in at.error[0].value and r"\!\[t\]\(http" in at.error[0].value


def test_the_data_pages_tables_hold_escaped_formulas(fresh):
    csv = ("=cmd|' /C calc'!A0,note,y\n"
           + "".join(f"{i},{'=HYPERLINK(1)' if i == 0 else 'ok'},{-1.5 * i + i % 3}\n" for i in range(30))).encode()
    at = fresh(page="data")
    at.segmented_control(key="data_source").set_value("csv").run()
    at.file_uploader(key="data_upload").set_value(("f.csv", csv, "text/csv")).run()
    assert not at.exception, [e.message for e in at.exception]
    frames = [d.value for d in at.dataframe]
    assert frames, "the tables are drawn"
    for frame in frames:
        for name in frame.columns:
            assert not str(name).startswith(("=", "+", "@")), name
        for col in frame.columns:
            for v in frame[col]:
                assert not (isinstance(v, str) and v.startswith(("=", "+", "@"))), v
    preview = frames[0]
    assert "'=cmd|' /C calc'!A0" in preview.columns and "'=HYPERLINK(1)" in list(preview["note"])
    assert (preview["y"] < 0).any()  # negative numbers stay numbers
