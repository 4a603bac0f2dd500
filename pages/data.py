"""Data: choose a synthetic generator, a bundled real set or your own CSV; see it; set the split."""

from __future__ import annotations

import dataclasses
import hashlib

import numpy as np
import pandas as pd
import streamlit as st

from dashboard import charts, chrome, links, routing, selection, state
from ensemble_core import data as core_data
from ensemble_core.config import (
    BUNDLED_CLASSIFICATION,
    BUNDLED_REGRESSION,
    SYNTHETIC_CLASSIFICATION,
    SYNTHETIC_REGRESSION,
    ConfigError,
    DataSpec,
)
from ensemble_core.data import DataError

routing.route_through_app()  # a deep link on a fresh server goes through app.py

PRETTY = core_data._PRETTY
SOURCES = {"synthetic": "Synthetic", "bundled": "Real", "csv": "Your CSV"}
TASKS = {"auto": "Infer from the target", "regression": "Regression", "classification": "Classification"}


def read_csv(csv_bytes: bytes) -> tuple[core_data.CsvTable | None, str | None]:
    """Parse an uploaded CSV once per file: ``(table, None)`` or ``(None, human message)``."""
    digest = hashlib.sha256(csv_bytes).hexdigest()
    cached = st.session_state.get("data_csv_cache")
    if cached and cached[0] == digest:
        return cached[1], cached[2]
    try:
        table, error = core_data.parse_csv(csv_bytes), None
    except DataError as exc:
        table, error = None, str(exc)
    st.session_state["data_csv_cache"] = (digest, table, error)
    return table, error


def _init_widgets(spec: DataSpec) -> None:
    defaults = {"data_source": spec.source, "data_seed": spec.seed, "data_val": spec.val_fraction,
                "data_test": spec.test_fraction, "data_task": spec.task}
    if spec.source == "synthetic":
        defaults |= {"data_synth": spec.name, "data_n": spec.n, "data_noise": spec.noise, "data_gap": spec.gap,
                     "data_classes": spec.n_classes}
    elif spec.source == "bundled":
        defaults["data_bundled"] = spec.name
    for key, value in defaults.items():
        st.session_state.setdefault(key, value)


def _v(control: str, key: str, widget, *args, **kwargs):
    """A widget's value; a control hidden by a classroom link is not drawn and keeps the link's value."""
    return widget(*args, key=key, **kwargs) if links.visible(control) else st.session_state[key]


def synthetic_controls() -> dict:
    names = list(SYNTHETIC_REGRESSION + SYNTHETIC_CLASSIFICATION)
    name = _v("data.name", "data_synth", st.selectbox, "Generator", names,
                        format_func=lambda n: f"{PRETTY[n]} ({'regression' if n in SYNTHETIC_REGRESSION else 'classification'})",
                        help="Regression toys: the paper's cubic y = x³ + ε, a sine whose noise grows with |x|, "
                             "and a curve with a hole in the inputs. Classification toys are 2-D.")
    c1, c2 = st.columns(2)
    n = _v("data.n", "data_n", c1.number_input, "Training points", 4, 10_000, step=10,
                        help="How many points to train on. The paper's toy uses 20.")
    seed = _v("data.seed", "data_seed", c2.number_input, "Seed", 0, 2**31 - 1, help="Same seed, same points.")
    noise = _v("data.noise", "data_noise", st.slider, "Noise", 0.0, 10.0, step=0.5,
                      help="3 is each generator's intended look (the cubic's σ = 3); 0 is noise-free, 6 doubles it.")
    spec = {"source": "synthetic", "name": name, "n": int(n), "noise": float(noise), "seed": int(seed)}
    if name in ("cubic", "sine"):
        spec["gap"] = _v("data.gap", "data_gap", st.toggle, "Leave a gap in the inputs",
                                help="Remove a band of x values from the training data, to see the "
                                     "ensemble become unsure *between* data.")
    if name in ("spirals", "blobs"):
        spec["n_classes"] = _v("data.n_classes", "data_classes", st.slider, "Classes", 2, 10, help="Number of classes.")
    return spec


def bundled_controls() -> dict:
    names = list(BUNDLED_REGRESSION + BUNDLED_CLASSIFICATION)
    st.session_state.setdefault("data_bundled", names[0])
    name = _v("data.name", "data_bundled", st.selectbox, "Data set", names,
                        format_func=lambda n: f"{PRETTY[n]} ({'regression' if n in BUNDLED_REGRESSION else 'classification'})",
                        help="Small real data sets that ship with scikit-learn (no download).")
    seed = _v("data.seed", "data_seed", st.number_input, "Split seed", 0, 2**31 - 1,
              help="Seed of the shuffle before splitting.")
    return {"source": "bundled", "name": name, "seed": int(seed)}


def csv_controls() -> tuple[dict | None, bytes | None]:
    upload = st.file_uploader("CSV file", type=["csv", "txt", "tsv"], key="data_upload",
                              help="Comma, semicolon or tab separated, with a header row. "
                                   "The file stays in your session only.")
    csv_bytes = upload.getvalue() if upload is not None else st.session_state.get("csv_bytes")
    if csv_bytes is None:
        st.info("Upload a file to use your own data.", icon=":material/upload_file:")
        return None, None
    table, error = read_csv(csv_bytes)
    if table is None:
        st.error(f"**This file cannot be read:** {chrome.esc(error)}", icon=":material/error:")
        return None, None
    columns = table.column_names
    name = upload.name if upload is not None else st.session_state["data_spec"].name
    target = st.selectbox("Target column (what to predict)", columns, index=len(columns) - 1, key="data_target",
                          help="The column the ensemble learns to predict.")
    numeric = [c.name for c in table.columns if c.kind == "numeric" and c.name != target]
    others = [c for c in columns if c != target]
    features = st.multiselect("Feature columns (inputs)", others, default=numeric,
                              key=f"data_features_{hashlib.md5(target.encode()).hexdigest()[:8]}",
                              help="Only numeric columns can be inputs; text columns are left out by default.")
    task = st.selectbox("Task", list(TASKS), format_func=TASKS.get, key="data_task",
                        help="Inferred: a target with a few whole-number or text values is a class label.")
    return {"source": "csv", "name": (name or "upload.csv")[:200], "target": target,
            "features": tuple(features), "task": task}, csv_bytes


def split_controls(source: str) -> dict:
    with st.expander("Train / validation / test split", icon=":material/splitscreen:"):
        if source == "synthetic":
            st.caption("Synthetic sets draw fresh validation and test points; 0 switches a set off.")
        val = _v("data.val_fraction", "data_val", st.slider, "Validation fraction", 0.0, 0.5, step=0.05,
                        help="Held out to track the ensemble's validation metric while training.")
        test = _v("data.test_fraction", "data_test", st.slider, "Test fraction", 0.0, 0.5, step=0.05,
                         help="Held out to score the final ensemble (never used for training).")
    return {"val_fraction": float(val), "test_fraction": float(test)}


def click_to_add(ds) -> None:
    """The 1-D regression plot, where a click anywhere adds a training point; Reset remakes the generated data."""
    ss = st.session_state
    fig = charts.figure("data_figure", ds)
    if fig is None:
        charts.show(None, key="data_fig")
        return
    ys = np.concatenate([ds.y_train, ds.y_val, ds.y_test])
    pad = 0.2 * float(np.ptp(ys)) or 1.0
    y_range = (float(ys.min()) - pad, float(ys.max()) + pad)
    fig.update_yaxes(range=list(y_range))
    curve = selection.add_click_grid(fig, x_range=tuple(fig.layout.xaxis.range), y_range=y_range)
    point = selection.point_from_selection(charts.show(fig, key="data_fig", on_select="rerun"), curve)
    if point is not None and point != ss.get("data_click_last"):  # the selection survives reruns: add it once
        ss["data_click_last"] = point
        ss["dataset"] = core_data.add_training_point(ds, *point)
        st.rerun()
    added = sum("by clicking" in note for note in ds.notes)
    c1, c2 = st.columns([4, 1], vertical_alignment="center")
    c1.caption(":material/touch_app: **Click anywhere on the plot to add a training point**, then retrain and watch "
               "the epistemic band shrink there." + (f" {added} point(s) added so far." if added else ""))
    if added and c2.button("Reset", icon=":material/restart_alt:", key="data_click_reset",
                           help="Remove the clicked points: back to the generated data."):
        state.set_data(ss["data_spec"], ss["csv_bytes"])


st.title("Data")
st.caption("Choose what the ensemble learns from. Everything below updates as you change it.")
_init_widgets(st.session_state["data_spec"])
controls, view = st.columns([1.15, 2], gap="large")
with controls:
    source = _v("data.source", "data_source", st.segmented_control, "Source", list(SOURCES),
                format_func=SOURCES.get, help="Synthetic toys show the ideas best; real sets (bundled with "
                "scikit-learn) show they work on real data; or upload your own CSV.")
    source = source or "synthetic"
    csv_bytes = None
    fields = synthetic_controls() if source == "synthetic" else bundled_controls() if source == "bundled" else None
    if source == "csv":
        fields, csv_bytes = csv_controls()
    if fields is not None:
        fields |= split_controls(source)
        try:
            spec = DataSpec(**{**dataclasses.asdict(DataSpec()), **fields})
        except ConfigError as exc:
            st.error(f"**Setting not allowed** — {exc}", icon=":material/error:")
        else:
            if spec != st.session_state["data_spec"] or csv_bytes != st.session_state["csv_bytes"]:
                state.set_data(spec, csv_bytes)

ds = st.session_state["dataset"]
with view:
    st.subheader(chrome.esc(core_data.describe(st.session_state["data_spec"])))
    kind = f"{ds.n_classes}-class classification" if ds.task == "classification" else "regression"
    st.caption(f"{kind.capitalize()} · predict **{chrome.esc(ds.target_name)}** from {ds.n_features} feature(s)")
    m = st.columns(4)
    m[0].metric("Training rows", ds.n_train)
    m[1].metric("Validation rows", len(ds.x_val))
    m[2].metric("Test rows", len(ds.x_test))
    m[3].metric("Features", ds.n_features)
    if ds.task == "regression" and ds.n_features == 1:
        click_to_add(ds)
    elif ds.n_features <= 2:
        charts.show(charts.figure("data_figure", ds), key="data_fig")
    else:
        charts.show(charts.figure("feature_histograms", ds), key="data_hist")
    cached = st.session_state.get("data_csv_cache")
    if st.session_state["data_spec"].source == "csv" and cached and cached[1] is not None:
        with st.expander("The uploaded file (first 20 rows, as read)", icon=":material/description:"):
            st.dataframe(cached[1].frame.head(20), hide_index=True)
    with st.expander("Training rows (first 200)", icon=":material/table:", expanded=ds.n_features > 2):
        table = pd.DataFrame(ds.x_train[:200], columns=ds.feature_names)
        y = ds.y_train[:200]
        table[ds.target_name] = np.asarray(ds.class_names, dtype=object)[y] if ds.class_names else y
        st.dataframe(table, hide_index=True, height=260)
    summary = ds.summary
    if ds.notes or summary is not None:
        with st.container(border=True):
            st.markdown("**What was done to the data, and why**")
            if summary is not None:
                if summary.encoding:
                    sep = {"\t": "tab", ",": "comma", ";": "semicolon", "|": "bar"}.get(summary.delimiter, "?")
                    st.markdown(f"- Read as {chrome.esc(summary.encoding)} text, {sep}-separated, decimal mark "
                                f"“{chrome.esc(summary.decimal)}”, {'with' if summary.has_header else 'without'} a header row")
                for col, reason in summary.columns_dropped.items():
                    st.markdown(f"- column **{chrome.esc(col)}** not used: {chrome.esc(reason)}")
            for note in ds.notes:
                st.markdown(f"- {chrome.esc(note)}")
    chrome.link("pages/train.py", "Train an ensemble on these data", ":material/arrow_forward:")
