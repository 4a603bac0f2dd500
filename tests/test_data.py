"""Tests of ensemble_core.data: generators, bundled sets, scaling, CSV parsing, bad input, UCI."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest

from ensemble_core.config import (
    BUNDLED_CLASSIFICATION,
    BUNDLED_REGRESSION,
    SYNTHETIC_CLASSIFICATION,
    SYNTHETIC_REGRESSION,
    DataSpec,
)
from ensemble_core.data import (
    GAP_BANDS,
    MAX_CLASSES,
    MIN_ROWS,
    NOISE_REFERENCE,
    AllMissingError,
    ClassCountError,
    ConstantTargetError,
    CsvTable,
    DataError,
    Dataset,
    DuplicateColumnError,
    EmptyFileError,
    HeaderOnlyError,
    InvalidArrayError,
    MalformedCsvError,
    NonNumericError,
    TooFewColumnsError,
    TooFewRowsError,
    TooLargeError,
    UndecodableError,
    UnknownColumnError,
    add_training_point,
    dataset_from_arrays,
    dataset_from_table,
    describe,
    effective_noise,
    load_csv,
    load_dataset,
    load_uci,
    parse_csv,
)

UCI = Path(__file__).resolve().parents[1] / ".." / "shared" / "datasets" / "uci"
ALL_SYNTHETIC = SYNTHETIC_REGRESSION + SYNTHETIC_CLASSIFICATION


def csv_spec(**kw: object) -> DataSpec:
    return DataSpec(source="csv", name="upload.csv", **kw)  # type: ignore[arg-type]


def table_text(n: int = 30, sep: str = ",") -> str:
    lines = [sep.join(["a", "b", "y"])]
    for i in range(n):
        lines.append(sep.join([str(i), str((i * 7) % 5), str(i * i)]))
    return "\n".join(lines) + "\n"


def check_dataset(d: Dataset) -> None:
    """Structural invariants every Dataset must satisfy."""
    assert d.task in ("regression", "classification")
    k = d.n_features
    assert k == len(d.feature_names) >= 1
    for x, y in ((d.x_train, d.y_train), (d.x_val, d.y_val), (d.x_test, d.y_test)):
        assert x.dtype == np.float64 and x.ndim == 2 and x.shape[1] == k
        assert y.ndim == 1 and len(y) == len(x)
        assert np.isfinite(x).all()
        if d.task == "regression":
            assert y.dtype == np.float64 and np.isfinite(y).all()
        else:
            assert y.dtype == np.int64
            assert ((y >= 0) & (y < d.n_classes)).all()
    assert d.x_mean.shape == (k,) and d.x_std.shape == (k,)
    assert (d.x_std > 0).all()
    assert d.y_std > 0
    if d.task == "classification":
        assert d.class_names is not None and len(d.class_names) >= 2


# ------------------------------------------------------------------ synthetic
@pytest.mark.parametrize("name", ALL_SYNTHETIC)
def test_synthetic_shapes_and_types(name: str) -> None:
    d = load_dataset(DataSpec(name=name, n=37, seed=1))
    check_dataset(d)
    assert d.x_train.shape[0] == 37
    assert len(d.x_val) == 200 and len(d.x_test) == 200  # max(200, n)
    if name in SYNTHETIC_REGRESSION:
        assert d.task == "regression" and d.n_features == 1
        assert d.true_fn is not None and d.noise_fn is not None and d.plot_range is not None
        lo, hi = d.plot_range
        assert lo < d.x_train.min() and d.x_train.max() < hi
    else:
        assert d.task == "classification" and d.n_features == 2


@pytest.mark.parametrize("name", ALL_SYNTHETIC)
def test_synthetic_deterministic_and_seed_dependent(name: str) -> None:
    a = load_dataset(DataSpec(name=name, seed=5))
    b = load_dataset(DataSpec(name=name, seed=5))
    c = load_dataset(DataSpec(name=name, seed=6))
    for part in ("x_train", "y_train", "x_val", "y_val", "x_test", "y_test"):
        np.testing.assert_array_equal(getattr(a, part), getattr(b, part))
    assert not np.array_equal(a.x_train, c.x_train)
    # train, validation and test are different draws
    assert not np.array_equal(a.x_train, a.x_val[: len(a.x_train)])
    assert not np.array_equal(a.x_val, a.x_test)


def test_cubic_is_the_papers_toy() -> None:
    d = load_dataset(DataSpec(name="cubic", n=5000, seed=0))
    x, y = d.x_train[:, 0], d.y_train
    assert x.min() >= -4 and x.max() <= 4 and x.min() < -3.9 and x.max() > 3.9
    resid = y - x**3
    assert abs(resid.mean()) < 0.15
    assert abs(resid.std() - 3.0) < 0.1  # eps ~ N(0, 3^2)
    np.testing.assert_allclose(d.true_fn(np.array([2.0])), [8.0])  # type: ignore[misc]
    np.testing.assert_allclose(d.noise_fn(np.array([-1.0, 3.0])), [3.0, 3.0])  # type: ignore[misc]
    assert d.plot_range == (-6.0, 6.0)
    assert describe(DataSpec()) == "Cubic toy · 20 points · noise 3"


def test_cubic_noise_is_configurable_and_zero_noise_is_exact() -> None:
    d = load_dataset(DataSpec(name="cubic", n=50, noise=0.0))
    np.testing.assert_allclose(d.y_train, d.x_train[:, 0] ** 3)
    d = load_dataset(DataSpec(name="cubic", n=4000, noise=1.0))
    assert abs((d.y_train - d.x_train[:, 0] ** 3).std() - 1.0) < 0.05


def test_sine_is_heteroscedastic_and_matches_noise_fn() -> None:
    d = load_dataset(DataSpec(name="sine", n=20000, seed=2))
    x = d.x_train[:, 0]
    resid = d.y_train - d.true_fn(x)  # type: ignore[misc]
    z = resid / d.noise_fn(x)  # type: ignore[misc]
    assert abs(z.std() - 1.0) < 0.03
    inner, outer = np.abs(x) < 1, np.abs(x) > 4
    assert resid[outer].std() > 3 * resid[inner].std()
    # noise scales with spec.noise relative to the default 3
    assert effective_noise(DataSpec(name="sine", noise=6.0)) == pytest.approx(2 * NOISE_REFERENCE["sine"])


@pytest.mark.parametrize("name", ["cubic", "sine", "gap"])
def test_gap_band_is_empty_in_training_and_validation_but_not_test(name: str) -> None:
    spec = DataSpec(name=name, n=3000, gap=True, seed=3)
    d = load_dataset(spec)
    lo, hi = GAP_BANDS[name]
    assert d.gaps == [(lo, hi)]
    for x in (d.x_train[:, 0], d.x_val[:, 0]):
        assert not ((x > lo) & (x < hi)).any()
    xt = d.x_test[:, 0]
    assert ((xt > lo) & (xt < hi)).any()
    # points exist on both sides of the gap, and the training size is exact
    assert len(d.x_train) == 3000
    assert (d.x_train[:, 0] < lo).any() and (d.x_train[:, 0] > hi).any()


def test_gap_flag_off_leaves_cubic_whole() -> None:
    d = load_dataset(DataSpec(name="cubic", n=3000, gap=False))
    lo, hi = GAP_BANDS["cubic"]
    x = d.x_train[:, 0]
    assert ((x > lo) & (x < hi)).any()
    assert d.gaps == []


def test_gap_set_always_has_its_gap() -> None:
    assert load_dataset(DataSpec(name="gap")).gaps == [GAP_BANDS["gap"]]


@pytest.mark.parametrize("name", SYNTHETIC_CLASSIFICATION)
def test_classification_generators_are_balanced(name: str) -> None:
    d = load_dataset(DataSpec(name=name, n=300, n_classes=4, seed=0))
    k = 4 if name in ("spirals", "blobs") else 2
    assert d.n_classes == k
    counts = np.bincount(d.y_train, minlength=k)
    assert counts.max() - counts.min() <= 1


def test_classification_generators_are_separable_without_noise() -> None:
    """Zero noise puts points exactly on the defining curves."""
    d = load_dataset(DataSpec(name="circles", n=200, noise=0.0))
    r = np.linalg.norm(d.x_train, axis=1)
    np.testing.assert_allclose(r[d.y_train == 0], 1.0)
    np.testing.assert_allclose(r[d.y_train == 1], 0.5)
    d = load_dataset(DataSpec(name="xor", n=200, noise=0.0))
    prod = d.x_train[:, 0] * d.x_train[:, 1]
    assert ((prod < 0) == (d.y_train == 1)).all()
    d = load_dataset(DataSpec(name="moons", n=200, noise=0.0))
    upper = d.x_train[d.y_train == 0]
    np.testing.assert_allclose(np.linalg.norm(upper, axis=1), 1.0)


def test_noise_changes_spread() -> None:
    a = load_dataset(DataSpec(name="blobs", n=600, noise=1.0))
    b = load_dataset(DataSpec(name="blobs", n=600, noise=6.0))

    def spread(d: Dataset) -> float:
        return float(np.mean([d.x_train[d.y_train == c].std(axis=0).mean() for c in range(d.n_classes)]))

    assert spread(b) > 3 * spread(a)


def test_synthetic_val_and_test_can_be_switched_off_and_scale_with_n() -> None:
    d = load_dataset(DataSpec(name="moons", n=500, val_fraction=0.0, test_fraction=0.0))
    assert len(d.x_val) == 0 and len(d.x_test) == 0 and d.x_val.shape == (0, 2)
    d = load_dataset(DataSpec(name="cubic", n=500))
    assert len(d.x_val) == 500 and len(d.x_test) == 500


def test_task_mismatch_is_refused() -> None:
    with pytest.raises(DataError, match="'moons' is a classification data set"):
        load_dataset(DataSpec(name="moons", task="regression"))
    with pytest.raises(DataError, match="'cubic' is a regression data set"):
        load_dataset(DataSpec(name="cubic", task="classification"))


# -------------------------------------------------------------------- bundled
@pytest.mark.parametrize("name", BUNDLED_REGRESSION + BUNDLED_CLASSIFICATION)
def test_bundled_sets_load_and_split(name: str) -> None:
    d = load_dataset(DataSpec(source="bundled", name=name, val_fraction=0.2, test_fraction=0.25, seed=0))
    check_dataset(d)
    n = len(d.x_train) + len(d.x_val) + len(d.x_test)
    assert len(d.x_test) == round(0.25 * n) or abs(len(d.x_test) - 0.25 * n) <= d.n_classes + 1
    assert d.task == ("regression" if name in BUNDLED_REGRESSION else "classification")
    # no row appears in two splits
    rows = np.concatenate([d.x_train, d.x_val, d.x_test])
    assert len(np.unique(rows, axis=0)) == len(np.unique(np.concatenate([d.x_train]), axis=0)) + len(
        np.unique(d.x_val, axis=0)) + len(np.unique(d.x_test, axis=0))


def test_bundled_classification_split_is_stratified() -> None:
    d = load_dataset(DataSpec(source="bundled", name="iris", seed=4))
    for y in (d.y_train, d.y_val, d.y_test):
        counts = np.bincount(y, minlength=3)
        assert counts.max() - counts.min() <= 1
    assert d.class_names == ["setosa", "versicolor", "virginica"]


def test_bundled_split_depends_on_seed() -> None:
    a = load_dataset(DataSpec(source="bundled", name="diabetes", seed=0))
    b = load_dataset(DataSpec(source="bundled", name="diabetes", seed=1))
    c = load_dataset(DataSpec(source="bundled", name="diabetes", seed=0))
    np.testing.assert_array_equal(a.x_test, c.x_test)
    assert not np.array_equal(a.x_test, b.x_test)


def test_digits_constant_pixels_get_unit_scale_and_a_note() -> None:
    d = load_dataset(DataSpec(source="bundled", name="digits"))
    const = d.x_train.std(axis=0) == 0
    assert const.any()
    assert (d.x_std[const] == 1.0).all()
    assert any("constant in the training data" in n and "scale is set to 1.0" in n for n in d.notes)


# ---------------------------------------------------------------- scaling
def test_standardisation_uses_training_statistics_only() -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(5.0, 2.0, size=(100, 3))
    y = x.sum(axis=1) + rng.normal(size=100)
    x_test = x[:20] + 1000.0  # wildly different: must not leak into the statistics
    d = dataset_from_arrays(x, y, "regression", x_test=x_test, y_test=y[:20] * 50, val_fraction=0.2)
    np.testing.assert_allclose(d.x_mean, d.x_train.mean(axis=0))
    np.testing.assert_allclose(d.x_std, d.x_train.std(axis=0))
    assert d.y_mean == pytest.approx(d.y_train.mean())
    assert d.y_std == pytest.approx(d.y_train.std())
    z = d.scale_x(d.x_train)
    np.testing.assert_allclose(z.mean(axis=0), 0.0, atol=1e-12)
    np.testing.assert_allclose(z.std(axis=0), 1.0)
    # full-data statistics would differ
    assert not np.allclose(d.x_mean, np.concatenate([x, x_test]).mean(axis=0))


def test_inverse_transforms() -> None:
    d = load_dataset(DataSpec(name="cubic", n=100, seed=3))
    np.testing.assert_allclose(d.unscale_x(d.scale_x(d.x_test)), d.x_test)
    np.testing.assert_allclose(d.unscale_mean(d.scale_y(d.y_test)), d.y_test)
    zvar = np.array([0.5, 2.0])
    np.testing.assert_allclose(d.unscale_var(zvar), zvar * d.y_std**2)
    np.testing.assert_allclose(d.unscale_std(np.sqrt(zvar)), np.sqrt(d.unscale_var(zvar)))
    assert d.y_std == pytest.approx(d.y_train.std())


def test_dataset_from_arrays_classification_labels_and_split() -> None:
    rng = np.random.default_rng(1)
    x = rng.normal(size=(60, 2))
    y = np.array(["cat", "dog", "emu"] * 20)
    d = dataset_from_arrays(x, y, "classification", val_fraction=0.2, test_fraction=0.2, seed=3)
    check_dataset(d)
    assert d.class_names == ["cat", "dog", "emu"]
    assert len(d.x_train) + len(d.x_val) + len(d.x_test) == 60
    assert np.bincount(d.y_test, minlength=3).tolist() == [4, 4, 4]


def test_dataset_from_arrays_bad_input() -> None:
    x = np.zeros((10, 2))
    with pytest.raises(InvalidArrayError, match="different numbers of rows: 10 and 9"):
        dataset_from_arrays(x, np.arange(9.0), "regression")
    with pytest.raises(InvalidArrayError, match=r"x \(train\) contains NaN"):
        dataset_from_arrays(np.full((10, 1), np.nan), np.arange(10.0), "regression")
    with pytest.raises(InvalidArrayError, match="task must be"):
        dataset_from_arrays(x, np.arange(10.0), "ranking")  # type: ignore[arg-type]
    with pytest.raises(ConstantTargetError, match="single value 2.0"):
        dataset_from_arrays(np.arange(10.0), np.full(10, 2.0), "regression")
    with pytest.raises(ClassCountError, match="single class"):
        dataset_from_arrays(np.arange(10.0), np.zeros(10, dtype=int), "classification")
    with pytest.raises(InvalidArrayError, match="labels must be integers 0..1"):
        dataset_from_arrays(np.arange(10.0), np.arange(10), "classification", class_names=["a", "b"])


# ----------------------------------------------------------------------- CSV
@pytest.mark.parametrize("sep, name", [(",", "comma"), (";", "semicolon"), ("\t", "tab"), ("|", "pipe")])
def test_delimiter_sniffing(sep: str, name: str) -> None:
    t = parse_csv(table_text(sep=sep).encode())
    assert t.delimiter == sep
    assert t.column_names == ["a", "b", "y"]
    assert [c.kind for c in t.columns] == ["numeric"] * 3
    assert t.rows_read == 30
    np.testing.assert_array_equal(t.frame["y"].to_numpy(), np.arange(30.0) ** 2)


def test_quoted_fields_keep_separators_and_newlines() -> None:
    text = 'id,"size, cm",label\n' + "".join(f'{i},"{i}.5","multi\nline {i % 2}"\n' for i in range(20))
    t = parse_csv(text)
    assert t.column_names == ["id", "size, cm", "label"]
    assert t.column("size, cm").kind == "numeric"
    assert t.rows_read == 20
    assert t.frame["label"].iloc[1] == "multi\nline 1"
    d = dataset_from_table(t, csv_spec())
    assert d.task == "classification" and d.class_names == ["multi\nline 0", "multi\nline 1"]


def test_semicolon_with_decimal_comma() -> None:
    text = "x;y\n" + "".join(f"{i},5;{i * 2},25\n" for i in range(20))
    t = parse_csv(text.encode())
    assert t.delimiter == ";" and t.decimal == ","
    np.testing.assert_allclose(t.frame["x"].to_numpy(), np.arange(20) + 0.5)
    assert any("decimal comma" in n for n in t.notes)


def test_utf8_bom_is_stripped() -> None:
    t = parse_csv(table_text().encode("utf-8-sig"))
    assert t.column_names[0] == "a" and t.encoding == "utf-8"
    assert not any("UTF-8" in n for n in t.notes)


def test_latin1_fallback_with_a_note() -> None:
    text = "température,durée,y\n" + "".join(f"{i},{i % 3},{i * i}\n" for i in range(20))
    t = parse_csv(text.encode("latin-1"))
    assert t.column_names == ["température", "durée", "y"]
    assert t.encoding in ("cp1252", "latin-1")
    assert any("not UTF-8" in n for n in t.notes)


def test_utf16_with_bom() -> None:
    t = parse_csv(table_text().encode("utf-16"))
    assert t.column_names == ["a", "b", "y"] and t.encoding == "utf-16"


def test_headerless_file_gets_column_names() -> None:
    t = parse_csv("".join(f"{i},{i % 4},{i * 3}\n" for i in range(20)))
    assert not t.has_header
    assert t.column_names == ["column_1", "column_2", "column_3"]
    assert t.rows_read == 20


def test_nan_and_inf_rows_are_dropped_and_counted() -> None:
    lines = ["a,b,y"]
    for i in range(40):
        a = "NaN" if i % 10 == 0 else ("" if i % 10 == 1 else str(i))
        y = "inf" if i % 10 == 2 else str(i * 2)
        lines.append(f"{a},{i % 3},{y}")
    d = load_csv("\n".join(lines), csv_spec())
    assert d.summary is not None
    assert d.summary.rows_read == 40
    assert d.summary.rows_dropped == {"a missing or non-numeric value": 8, "an infinite value": 4}
    assert d.summary.rows_used == 28 == len(d.x_train) + len(d.x_val) + len(d.x_test)
    assert any("8 row(s) with a missing or non-numeric value" in n for n in d.notes)
    assert any("4 row(s) with an infinite value" in n for n in d.notes)


def test_unused_column_with_nan_does_not_drop_rows() -> None:
    lines = ["a,junk,y"] + [f"{i},{'' if i % 2 else i},{i * 1.5}" for i in range(30)]
    d = load_csv("\n".join(lines), csv_spec(features=("a",)))
    assert d.summary is not None and d.summary.rows_used == 30 and d.summary.rows_dropped == {}
    assert d.summary.columns_dropped == {"junk": "not chosen as a feature"}


def test_text_feature_column_dropped_with_note() -> None:
    lines = ["city,a,y"] + [f"{['Oslo', 'Rome'][i % 2]},{i},{i * 0.7}" for i in range(30)]
    d = load_csv("\n".join(lines), csv_spec())
    assert d.feature_names == ["a"]
    assert d.summary is not None and "city" in d.summary.columns_dropped
    assert any("'city'" in n and "not used as features" in n for n in d.notes)


def test_text_in_numeric_column_counts_as_missing_with_note() -> None:
    lines = ["a,y"] + [f"{'oops' if i == 7 else i},{i * 0.3}" for i in range(30)]
    t = parse_csv("\n".join(lines))
    info = t.column("a")
    assert info.kind == "numeric" and info.n_text_in_numeric == 1
    assert any("Column 'a': 1 non-numeric value(s) (e.g. 'oops')" in n for n in t.notes)
    d = dataset_from_table(t, csv_spec())
    assert d.summary is not None and d.summary.rows_used == 29


def test_task_inference_rule() -> None:
    reg = load_csv(table_text(), csv_spec())
    assert reg.task == "regression" and reg.summary is not None
    assert "numeric with 30 distinct values" in reg.summary.task_reason
    # few whole-number values -> classification
    cls = load_csv(table_text(), csv_spec(target="b"))
    assert cls.task == "classification" and cls.class_names == ["0", "1", "2", "3", "4"]
    assert cls.summary is not None and "whole numbers with only 5 distinct values" in cls.summary.task_reason
    # text target -> classification
    lines = ["a,b,kind"] + [f"{i},{i % 5},{'ab'[i % 2]}" for i in range(30)]
    txt = load_csv("\n".join(lines), csv_spec())
    assert txt.task == "classification" and txt.class_names == ["a", "b"]
    # non-integer values with few distinct values stay regression
    lines = ["a,y"] + [f"{i},{(i % 3) + 0.5}" for i in range(30)]
    assert load_csv("\n".join(lines), csv_spec()).task == "regression"


def test_task_override() -> None:
    d = load_csv(table_text(), csv_spec(target="b", task="regression"))
    assert d.task == "regression" and d.y_train.dtype == np.float64
    assert d.summary is not None and d.summary.task_reason == "chosen: regression"
    d = load_csv(table_text(), csv_spec(task="classification"))  # y = i^2: 30 classes, allowed
    assert d.task == "classification" and d.n_classes == 30


def test_target_and_features_selection() -> None:
    d = load_csv(table_text(), csv_spec(target="a", features=("y",)))
    assert d.target_name == "a" and d.feature_names == ["y"]
    d = load_csv(table_text(), csv_spec())
    assert d.target_name == "y" and d.feature_names == ["a", "b"]


def test_csv_split_fractions() -> None:
    d = load_csv(table_text(n=100), csv_spec(val_fraction=0.1, test_fraction=0.3, seed=2))
    assert (len(d.x_train), len(d.x_val), len(d.x_test)) == (60, 10, 30)
    e = load_csv(table_text(n=100), csv_spec(val_fraction=0.1, test_fraction=0.3, seed=2))
    np.testing.assert_array_equal(d.x_test, e.x_test)


def test_load_dataset_csv_source() -> None:
    d = load_dataset(csv_spec(), table_text().encode())
    assert d.name == "upload.csv" and d.task == "regression"
    with pytest.raises(EmptyFileError, match="no CSV file was given"):
        load_dataset(csv_spec())


def test_csv_from_path(tmp_path: Path) -> None:
    p = tmp_path / "data.csv"
    p.write_text(table_text())
    assert parse_csv(p).rows_read == 30
    assert load_csv(p).name == "data.csv"
    with pytest.raises(DataError, match="cannot open the file 'missing.csv'"):
        parse_csv(tmp_path / "missing.csv")


# -------------------------------------------------------- bad input: messages
BAD_CASES = [
    (b"", EmptyFileError, "the file is empty"),
    (b"\n\n  \n", EmptyFileError, "the file is empty"),
    (b"a,b,y\n", HeaderOnlyError, "has a header ('a', 'b', 'y') but no data rows"),
    (b"value\n1\n2\n3\n", TooFewColumnsError, "only one column was found (first line: 'value')"),
    (b"\x00\x01\x02\x03binary\x00", UndecodableError, "contains NUL bytes"),
    (bytes(range(1, 32)) * 50, UndecodableError, "does not look like text"),
    (b"PK\x03\x04\x14\x00rest", UndecodableError, "ZIP archive (an Excel .xlsx"),
    (b"a,b,a\n1,2,3\n", DuplicateColumnError, "duplicate column names: 'a' (columns 1, 3)"),
    (b"a,y\n" + b"".join(b"%d,3\n" % i for i in range(20)), ConstantTargetError,
     "target 'y' has a single value 3.0 \u2014 nothing to learn"),
    (b"a,y\n1,2\n", TooFewRowsError, f"only 1 usable row(s) remain; at least {MIN_ROWS} are needed"),
    (b"a,y\n" + b"".join(b"%d,%s\n" % (i, b"nan" if i < 15 else b"%d" % i) for i in range(20)), TooFewRowsError,
     f"only 5 usable row(s) remain after dropping 15 with missing or infinite values; at least {MIN_ROWS}"),
    (b"a,y\n" + b"".join(b"%d,\n" % i for i in range(20)), AllMissingError, "target 'y' has no values"),
    (b"a,y\n" + b"".join(b"%d,c%d\n" % (i, i) for i in range(60)), ClassCountError,
     f"target 'y' has 60 distinct values, more than the {MAX_CLASSES} classes allowed"),
    (b"a,y\n" + b"".join(b"%d,same\n" % i for i in range(20)), ConstantTargetError,
     "target 'y' has a single value 'same' \u2014 nothing to learn"),
    (b"name,y\n" + b"".join(b"n%d,%d\n" % (i, i) for i in range(20)), NonNumericError,
     "no numeric feature columns besides the target 'y' (text columns: 'name')"),
    (b'a,y\n1,"unterminated\n' + b"x" * 200_000 + b"\n", MalformedCsvError, "a field is too long"),
    (b"a,b\n" + b"".join(b"1,2,3,4,5\n" for _ in range(10)), MalformedCsvError,
     "10 of 10 rows have more fields than the header's 2"),
]


@pytest.mark.parametrize("data, exc, message", BAD_CASES, ids=[c[1].__name__ + str(i) for i, c in enumerate(BAD_CASES)])
def test_bad_csv_gives_typed_error_and_message(data: bytes, exc: type[DataError], message: str) -> None:
    with pytest.raises(exc) as info:
        load_dataset(csv_spec(), data)
    assert message in str(info.value)
    assert isinstance(info.value, DataError)
    assert "Error(" not in str(info.value) and "Traceback" not in str(info.value)


def test_unknown_target_and_feature_columns() -> None:
    with pytest.raises(UnknownColumnError, match=r"no column named 'zz'; the columns are: 'a', 'b', 'y'") as e:
        load_csv(table_text(), csv_spec(target="zz"))
    assert e.value.column == "zz"
    with pytest.raises(UnknownColumnError, match="no column named 'q'"):
        load_csv(table_text(), csv_spec(features=("a", "q")))


def test_bad_feature_choices() -> None:
    lines = ["t,e,a,y"] + [f"w{i % 2},,{i},{i * 2.5}" for i in range(30)]
    text = "\n".join(lines)
    with pytest.raises(NonNumericError, match="feature 't' is text \\(e.g. 'w0'\\)"):
        load_csv(text, csv_spec(features=("t", "a")))
    with pytest.raises(AllMissingError, match="feature 'e' has no values"):
        load_csv(text, csv_spec(features=("e",)))
    with pytest.raises(DataError, match="'y' is the target; it cannot also be a feature"):
        load_csv(text, csv_spec(features=("a", "y")))
    with pytest.raises(NonNumericError, match="target 't' is text .* regression needs a numeric target"):
        load_csv(text, csv_spec(target="t", task="regression"))


def test_size_limits_are_checked_before_parsing(tmp_path: Path) -> None:
    big = table_text(n=200).encode()
    with pytest.raises(TooLargeError, match="over the 1 KB limit") as e:
        parse_csv(big, max_bytes=1024)
    assert e.value.limit == 1024
    p = tmp_path / "big.csv"
    p.write_bytes(big)
    with pytest.raises(TooLargeError, match="over the 1 KB limit"):
        parse_csv(p, max_bytes=1024)
    with pytest.raises(TooLargeError, match="more than 50 rows; at most 50 are allowed"):
        parse_csv(big, max_rows=50)
    wide = (",".join(f"c{i}" for i in range(600)) + "\n" + ",".join("1" * 600) + "\n").encode()
    with pytest.raises(TooLargeError, match="600 columns; at most 500 are allowed"):
        parse_csv(wide)


def test_ragged_minority_rows_are_dropped_with_count() -> None:
    lines = ["a,b,y"] + [f"{i},{i % 3},{i}" for i in range(20)] + ["1,2,3,4", "5,6"]
    t = parse_csv("\n".join(lines))
    assert t.rows_dropped == {"more fields than the header": 1}
    assert t.rows_read == 22
    d = dataset_from_table(t, csv_spec())
    assert d.summary is not None
    assert d.summary.rows_dropped["a missing or non-numeric value"] == 1  # the short row "5,6" (y missing)


def test_parse_csv_rejects_unsupported_input_type() -> None:
    with pytest.raises(DataError, match="expected CSV content as bytes, text or a path, got int"):
        parse_csv(42)  # type: ignore[arg-type]


def test_csv_table_summary() -> None:
    lines = ["a,kind,empty,y"] + [f"{i},{'xy'[i % 2]},,{i / 4}" for i in range(20)]
    t = parse_csv("\n".join(lines))
    assert isinstance(t, CsvTable)
    kinds = {c.name: c.kind for c in t.columns}
    assert kinds == {"a": "numeric", "kind": "text", "empty": "empty", "y": "numeric"}
    assert t.column("a").integer and not t.column("y").integer
    assert t.column("kind").n_distinct == 2 and t.column("empty").n_missing == 20
    assert t.numeric_columns == ["a", "y"]
    d = dataset_from_table(t, csv_spec())
    assert d.summary is not None
    assert d.summary.columns_dropped["empty"] == "no values"


# ------------------------------------------------------------------------ UCI
needs_uci = pytest.mark.skipif(not (UCI / "yacht.csv").exists(), reason="../shared/datasets/uci is not available")


@needs_uci
def test_load_uci_split_indices_and_scaling() -> None:
    meta = json.loads((UCI / "yacht_splits.json").read_text())
    d = load_uci(UCI / "yacht.csv", UCI / "yacht_splits.json", 2)
    import pandas as pd

    raw = pd.read_csv(UCI / "yacht.csv").to_numpy(dtype=float)
    tr, te = meta["splits"][2]["train"], meta["splits"][2]["test"]
    np.testing.assert_array_equal(d.x_train, raw[tr, :-1])
    np.testing.assert_array_equal(d.y_test, raw[te, -1])
    assert d.target_name == "residuary_resistance" and d.n_features == 6
    assert len(d.x_val) == 0
    assert d.y_mean == pytest.approx(raw[tr, -1].mean())
    np.testing.assert_allclose(d.x_std, raw[tr, :-1].std(axis=0))


@needs_uci
def test_load_uci_validation_and_errors() -> None:
    d = load_uci(UCI / "energy.csv", UCI / "energy_splits.json", 0, val_fraction=0.1, seed=1)
    meta = json.loads((UCI / "energy_splits.json").read_text())
    assert len(d.x_train) + len(d.x_val) == len(meta["splits"][0]["train"]) and len(d.x_val) > 0
    with pytest.raises(DataError, match="split 20 does not exist; 'yacht_splits.json' has 20 splits"):
        load_uci(UCI / "yacht.csv", UCI / "yacht_splits.json", 20)
    with pytest.raises(DataError, match="index is outside the 308 rows"):
        load_uci(UCI / "yacht.csv", UCI / "energy_splits.json", 0)


def test_load_uci_bad_files(tmp_path: Path) -> None:
    (tmp_path / "d.csv").write_text(table_text())
    (tmp_path / "s.json").write_text("{not json")
    with pytest.raises(DataError, match="'s.json' is not valid JSON"):
        load_uci(tmp_path / "d.csv", tmp_path / "s.json", 0)
    (tmp_path / "s.json").write_text(json.dumps({"splits": [{"train": [0, 1, 2, 3], "test": [3, 4]}]}))
    with pytest.raises(DataError, match="some rows are in both the train and the test set"):
        load_uci(tmp_path / "d.csv", tmp_path / "s.json", 0)
    with pytest.raises(DataError, match="cannot open the splits file 'nope.json'"):
        load_uci(tmp_path / "d.csv", tmp_path / "nope.json", 0)


def test_describe_labels() -> None:
    assert describe(DataSpec(name="spirals", n=200, n_classes=4, noise=1.5)) == \
        "Spirals · 200 points · 4 classes · noise 1.5"
    assert describe(DataSpec(name="sine", gap=True)) == "Heteroscedastic sine · 20 points · noise 3 · with a gap"
    assert describe(DataSpec(source="bundled", name="wine")) == "Wine · classification (scikit-learn)"
    assert describe(csv_spec(target="y")) == "upload.csv · target 'y'"


def test_headerless_file_with_a_text_label_column() -> None:
    text = "".join(f"{i}.1,{i % 3}.5,{['setosa', 'virginica'][i % 2]}\n" for i in range(20))
    t = parse_csv(text)
    assert not t.has_header and t.rows_read == 20
    assert t.column_names == ["column_1", "column_2", "column_3"]
    d = dataset_from_table(t, csv_spec())
    assert d.task == "classification" and d.class_names == ["setosa", "virginica"]


def test_header_with_numeric_looking_names_in_text_columns_is_a_header() -> None:
    text = "height,weight,label\n" + "".join(f"{i},{i * 2},{'ab'[i % 2]}\n" for i in range(20))
    t = parse_csv(text)
    assert t.has_header and t.column_names == ["height", "weight", "label"]


def test_add_training_point_refits_statistics_and_keeps_the_original() -> None:
    x = np.array([[0.0], [2.0]])
    d = dataset_from_arrays(x, np.array([1.0, 3.0]), task="regression")
    d2 = add_training_point(d, 4.0, 5.0)
    assert d.x_train.shape == (2, 1) and d2.x_train.shape == (3, 1)
    assert d2.x_mean[0] == pytest.approx(2.0) and d2.y_mean == pytest.approx(3.0)
    assert d2.x_std[0] == pytest.approx(np.std([0.0, 2.0, 4.0]))
    assert d2.y_std == pytest.approx(np.std([1.0, 3.0, 5.0]))
    assert d2.notes[-1].startswith("added a training point at x=4")
    with pytest.raises(ValueError, match="finite"):
        add_training_point(d, float("nan"), 1.0)
    with pytest.raises(ValueError, match="1-D regression"):
        add_training_point(dataclasses.replace(d, task="classification"), 1.0, 1.0)
