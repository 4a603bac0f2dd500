"""Fuzzing CSV ingestion: whatever the bytes, the core returns a valid table/dataset or raises DataError.

Never any other exception, never a hang (inputs are size-bounded; each test has a timeout).
"""

from __future__ import annotations

import time

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ensemble_core.config import DataSpec
from ensemble_core.data import CsvTable, DataError, Dataset, dataset_from_table, parse_csv

FUZZ = settings(max_examples=60, deadline=None, derandomize=True,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
LIMITS = {"max_bytes": 64 * 1024, "max_rows": 500, "max_columns": 40}


def check_table(t: CsvTable) -> None:
    assert isinstance(t, CsvTable)
    assert len(t.columns) == t.frame.shape[1] >= 2
    assert t.column_names == list(t.frame.columns)
    assert len(set(t.column_names)) == len(t.column_names)
    assert t.frame.shape[0] <= t.rows_read
    for c in t.columns:
        col = t.frame[c.name]
        if c.kind == "numeric":
            assert col.dtype == np.float64
    assert all(isinstance(n, str) and n for n in t.notes)


def check_dataset(d: Dataset) -> None:
    assert isinstance(d, Dataset)
    k = d.n_features
    assert k >= 1 and len(d.feature_names) == k
    assert len(d.x_train) >= 1
    for x, y in ((d.x_train, d.y_train), (d.x_val, d.y_val), (d.x_test, d.y_test)):
        assert x.shape == (len(y), k) and np.isfinite(x).all()
        if d.task == "regression":
            assert y.dtype == np.float64 and np.isfinite(y).all()
        else:
            assert y.dtype == np.int64 and (0 <= y).all() and (y < d.n_classes).all()
    assert np.isfinite(d.x_std).all() and (d.x_std > 0).all()
    assert np.isfinite(d.y_std) and d.y_std > 0
    assert d.summary is not None and d.summary.rows_used == len(d.y_train) + len(d.y_val) + len(d.y_test)


def ingest(data: bytes | str, spec: DataSpec | None = None) -> None:
    """The property: a valid table and dataset, or a DataError with a human message."""
    spec = spec or DataSpec(source="csv", name="fuzz.csv")
    try:
        table = parse_csv(data, **LIMITS)
    except DataError as exc:
        assert str(exc) and "Traceback" not in str(exc)
        return
    check_table(table)
    try:
        d = dataset_from_table(table, spec)
    except DataError as exc:
        assert str(exc) and "Traceback" not in str(exc)
        return
    check_dataset(d)


@pytest.mark.timeout(60)
@FUZZ
@given(st.binary(max_size=3000))
def test_random_bytes(data: bytes) -> None:
    ingest(data)


@pytest.mark.timeout(60)
@FUZZ
@given(st.text(alphabet=st.sampled_from(list(',;\t|"\n\r 0123456789.-eEinfaNA\'x\u00e9')), max_size=600))
def test_csv_like_text(text: str) -> None:
    ingest(text)
    ingest(text.encode("utf-8"))


# --------------------------------------------------------- structured tables
CLEAN_NUMBER = st.one_of(
    st.integers(-1000, 1000).map(str),
    st.floats(-1e6, 1e6, width=32).map(repr),
)
SPECIAL_NUMBER = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True, width=32).map(repr),
    st.sampled_from(["nan", "NaN", "inf", "-inf", "", "NA", "?", "1e400", "-0", ".5"]),
)
NUMBER = st.one_of(CLEAN_NUMBER, SPECIAL_NUMBER)
TEXT = st.one_of(
    st.sampled_from(["red", "green", "blue", "Oslo", "naïve", "x y"]),
    st.text(alphabet=st.sampled_from(list('ab ,;|\t"\n\u00e9')), max_size=8),
)


@st.composite
def tables(draw: st.DrawFn) -> tuple[bytes, DataSpec]:
    sep = draw(st.sampled_from([",", ";", "\t", "|"]))
    n_cols = draw(st.integers(1, 6))
    n_rows = draw(st.one_of(st.integers(0, 3), st.integers(10, 60)))
    kinds = draw(st.lists(st.sampled_from(["num", "num", "int", "text", "mixed"]), min_size=n_cols,
                          max_size=n_cols))
    decimal_comma = sep != "," and draw(st.booleans())
    # mostly unique names; sometimes blank or duplicated ones
    header = [draw(st.sampled_from(["a", "b", "y", "col", "x 1", "température", "a"])) + str(j)
              if draw(st.integers(0, 9)) else draw(st.sampled_from(["a", "b", "", "y"])) for j in range(n_cols)]

    def cell(kind: str) -> str:
        if kind == "int":
            return str(draw(st.integers(0, 3)))
        if kind == "num":
            v = draw(SPECIAL_NUMBER if draw(st.integers(0, 14)) == 0 else CLEAN_NUMBER)
            return v.replace(".", ",") if decimal_comma else v
        if kind == "text":
            return draw(TEXT)
        return draw(st.one_of(NUMBER, TEXT))

    def quote(v: str) -> str:
        if any(ch in v for ch in (sep, '"', "\n")) or draw(st.booleans()):
            return '"' + v.replace('"', '""') + '"'
        return v

    lines = []
    if draw(st.integers(0, 3)):
        lines.append(sep.join(quote(h) for h in header))
    for _ in range(n_rows):
        row = [cell(k) for k in kinds]
        if draw(st.integers(0, 30)) == 0:  # occasionally ragged
            row = row[: draw(st.integers(0, len(row)))] + ["9"] * draw(st.integers(0, 2))
        lines.append(sep.join(quote(v) for v in row))
    eol = draw(st.sampled_from(["\n", "\r\n"]))
    text = eol.join(lines) + (eol if draw(st.booleans()) else "")
    enc = draw(st.sampled_from(["utf-8", "utf-8-sig", "latin-1", "utf-16"]))
    try:
        data = text.encode(enc)
    except UnicodeEncodeError:
        data = text.encode("utf-8")
    names = [h for h in header if h]
    target = draw(st.sampled_from(["", "", *names[:3], "missing_col"]))
    task = draw(st.sampled_from(["auto", "auto", "regression", "classification"]))
    feats = tuple(draw(st.lists(st.sampled_from(names), max_size=2, unique=True))) if names and draw(
        st.booleans()) else ()
    spec = DataSpec(source="csv", name="fuzz.csv", target=target, task=task, features=feats,
                    val_fraction=draw(st.sampled_from([0.0, 0.2])), test_fraction=draw(st.sampled_from([0.0, 0.25])),
                    seed=draw(st.integers(0, 3)))
    return data, spec


@pytest.mark.timeout(60)
@settings(FUZZ, max_examples=120)
@given(tables())
def test_random_tables(case: tuple[bytes, DataSpec]) -> None:
    data, spec = case
    ingest(data, spec)


@pytest.mark.timeout(60)
@FUZZ
@given(st.integers(12, 60), st.sampled_from([",", ";", "\t", "|"]), st.integers(0, 5))
def test_clean_numeric_tables_always_load(n: int, sep: str, seed: int) -> None:
    """The positive side of the property: a clean numeric table always gives a dataset."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 3))
    y = x @ [1.0, -2.0, 0.5] + rng.normal(size=n)
    lines = [sep.join(["f1", "f2", "f3", "target"])]
    lines += [sep.join(f"{v:.6f}" for v in [*row, t]) for row, t in zip(x, y, strict=True)]
    table = parse_csv("\n".join(lines))
    assert table.delimiter == sep
    d = dataset_from_table(table, DataSpec(source="csv", name="ok.csv"))
    check_dataset(d)
    assert d.task == "regression" and d.feature_names == ["f1", "f2", "f3"]
    assert d.summary is not None and d.summary.rows_used == n


@pytest.mark.timeout(60)
@pytest.mark.parametrize("payload", [
    b'"' * 2_000_000,
    b"," * 2_000_000,
    b"a,b\n" + b"1,2\n" * 400_000,
    (b"x" * 100 + b"\n") * 20_000,
    b"a;b\n" + b"\"1\n" * 300_000,
    bytes(range(128, 256)) * 8000,
], ids=["quotes", "commas", "long", "one-column", "open-quotes", "high-bytes"])
def test_adversarial_large_inputs_finish_quickly(payload: bytes) -> None:
    start = time.perf_counter()
    try:
        table = parse_csv(payload)
        dataset_from_table(table, DataSpec(source="csv", name="big.csv"))
    except DataError:
        pass
    assert time.perf_counter() - start < 20.0


@pytest.mark.parametrize("text", [";", ";;;\n;;", "|||\n|||"])
def test_separators_only_is_a_clear_empty_file_error(text: str) -> None:
    """Found by hypothesis: a file of separators alone once crashed with IndexError."""
    with pytest.raises(DataError, match="no values|empty"):
        parse_csv(text)
