"""Hostile inputs at the core: links that must never raise, CSV messages that say what is wrong, safe CSV cells."""

from __future__ import annotations

import pandas as pd
import pytest

from ensemble_core import share
from ensemble_core.config import DataSpec
from ensemble_core.data import (
    MalformedCsvError,
    UndecodableError,
    ValueRangeError,
    csv_safe,
    csv_safe_cell,
    load_csv,
)
from ensemble_core.share import ShareState

DEFAULT = ShareState()


# ------------------------------------------------------------------ links
@pytest.mark.parametrize("params,words", [
    ({"data.features": "[" * 3000 + "]" * 3000}, "nested too deeply"),
    ({"data.features": "x" * 20_000}, "data.features: the value is 20,013 characters long; at most 16,384"),
    ({f"k{i}": "v" * 10_000 for i in range(10)}, "the link is 100,0"),
    ({"data.n": "9" * 5000}, "data.n: cannot read"),
    ({"data.features": '[{"a": 1}]', "hide": "nope"}, "hide: unknown control"),
    ({"lesson": ["x"] * 3, "page": ["nowhere"]}, "page: must be one of"),
])
def test_any_bad_link_gives_defaults_and_a_message(params, words):
    state, msg = share.apply_query(params)
    assert state == DEFAULT and msg is not None and words in msg, msg
    assert len(msg) < 500  # a message quotes at most a short piece of the link


@pytest.mark.parametrize("error", [RecursionError, MemoryError, TypeError, OverflowError, KeyError])
def test_apply_query_turns_any_exception_into_the_warning(monkeypatch, error):
    def boom(params):
        raise error("boom")

    monkeypatch.setattr(share, "from_query", boom)
    state, msg = share.apply_query({"data.n": "30"})
    assert state == DEFAULT and msg.startswith("This link has a setting that could not be used")


def test_a_long_but_legal_link_still_opens():
    features = tuple(f"column number {i}" for i in range(300))
    cfg = DEFAULT.config.replace(**{"data.source": "csv", "data.name": "wide.csv", "data.features": features})
    state, msg = share.apply_query(share.to_query(ShareState(config=cfg)))
    assert msg is None and state.config.data.features == features


# ------------------------------------------------------------------ CSV messages
def _rows(n: int = 30) -> str:
    return "".join(f"{i},{i * 2.5 + (i % 3)}\n" for i in range(n))


def test_huge_feature_values_are_named_with_the_limit_not_called_constant():
    text = "x,y\n" + "".join(f"{'1e308' if i % 2 else '-1e308'},{i * 1.5}\n" for i in range(30))
    with pytest.raises(ValueRangeError, match=r"column 'x' has values as large as 1e\+308; values beyond "
                                              r"±1e\+100 are too large to use") as info:
        load_csv(text.encode())
    assert info.value.column == "x"


def test_huge_target_values_are_named_with_the_limit():
    vals = ["1e308", "-1e308", "5e307", "-3e307", "2.5e306", "7.25e300"]
    text = "x,y\n" + "".join(f"{i},{vals[i % 6]}\n" for i in range(30))
    with pytest.raises(ValueRangeError, match=r"column 'y' has values as large as 1e\+308") as info:
        load_csv(text.encode(), DataSpec(source="csv", name="big.csv", task="regression"))
    assert "single value" not in str(info.value) and "inf" not in str(info.value)


def test_an_unterminated_quote_is_reported_at_its_line():
    text = 'x,y\n1,2\n3,"4\n5,6\n' + _rows()
    with pytest.raises(MalformedCsvError, match=r"a quote \(\"\) in line 3 is never closed"):
        load_csv(text.encode())


def test_a_closed_quote_over_two_lines_is_fine():
    ds = load_csv(('x,y\n1,2\n3,"4\n"\n' + _rows()).encode())
    assert ds.n_train > 0


@pytest.mark.parametrize("codec", ["utf-16-le", "utf-16-be"])
def test_utf16_without_a_bom_asks_for_utf8(codec):
    with pytest.raises(UndecodableError, match="UTF-16 text without a byte-order mark.*save the file as UTF-8"):
        load_csv(("x,y\n" + _rows()).encode(codec))


def test_utf16_with_a_bom_still_reads():
    assert load_csv(("x,y\n" + _rows()).encode("utf-16")).n_train > 0


def test_binary_with_nul_bytes_is_still_not_text():
    with pytest.raises(UndecodableError, match="NUL bytes"):
        load_csv(b"x,y\n1,2\n" + bytes(range(256)) * 4)


# ------------------------------------------------------------------ CSV cells
@pytest.mark.parametrize("cell,safe", [
    ("=cmd|' /C calc'!A0", "'=cmd|' /C calc'!A0"), ("+1+cmd", "'+1+cmd"), ("-2+3", "'-2+3"),
    ("@SUM(A1:A2)", "'@SUM(A1:A2)"), ("\t=1", "'\t=1"), ("\r=1", "'\r=1"),
    ("-3.2", "-3.2"), ("+4", "+4"), ("-1e-05", "-1e-05"), ("-inf", "-inf"), ("plain", "plain"), ("", ""),
    (-3.2, -3.2), (None, None),
])
def test_csv_safe_cell(cell, safe):
    assert csv_safe_cell(cell) == safe


def test_csv_safe_escapes_text_cells_and_names_and_leaves_numbers():
    frame = pd.DataFrame({"=HYPERLINK(\"http://x\")": ["=cmd|' /C calc'!A0", "-3.2", "ok"], "n": [-1.5, 2.0, -3.0]})
    out = csv_safe(frame).to_csv(index=False).splitlines()
    assert out == ["\"'=HYPERLINK(\"\"http://x\"\")\",n", "'=cmd|' /C calc'!A0,-1.5", "-3.2,2.0", "ok,-3.0"]
    assert list(frame.columns)[0].startswith("=")  # the input is not changed
