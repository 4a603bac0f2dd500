"""Data: choose a synthetic generator, a bundled real set or your own CSV; see it; set the split."""

from __future__ import annotations

import dataclasses
import hashlib

import numpy as np
import pandas as pd
import streamlit as st

from dashboard import charts, chrome, ood_view, routing, selection, state
from dashboard.settings import CONTROL_RANGES, Range
from ensemble_core import data as core_data
from ensemble_core.config import (
    BUNDLED_CLASSIFICATION,
    BUNDLED_REGRESSION,
    SYNTHETIC_CLASSIFICATION,
    SYNTHETIC_REGRESSION,
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


def _reload() -> None:
    """After a data setting changed: load the new data, or put the old setting back with a message."""
    ss, s = st.session_state, state.settings()
    spec = s.config.data
    try:
        state.load_data(spec, ss["csv_bytes"] if spec.source == "csv" else None)
    except DataError as exc:
        s.set_data(ss["dataset_spec"])  # back to the data on screen
        state.note("data_error", f"These data cannot be used: {exc}")


def _bind(widget, path: str, label: str, *args, key: str, **kwargs):
    """A data control: a view of ``config.data``; a change loads the data (:func:`_reload`)."""
    return state.bind(widget, path, label, *args, key=key, after=_reload, **kwargs)


def _switch_source() -> None:
    """The Source control changed: show that source, and load its last (or default) data if it has some."""
    ss, s = st.session_state, state.settings()
    source = ss.get("data_source") or s.data_view
    spec = s.spec_for_view(source)
    s.data_view = source
    if spec is None or spec == s.config.data:
        return
    if source == "csv" and ss["csv_bytes"] is None:
        return
    try:
        state.load_data(spec, ss["csv_bytes"] if source == "csv" else None)
    except DataError as exc:
        s.data_view = s.config.data.source
        state.note("data_source", f"These data cannot be used: {exc}")


def synthetic_controls() -> None:
    names = list(SYNTHETIC_REGRESSION + SYNTHETIC_CLASSIFICATION)
    spec = state.config().data
    _bind(st.selectbox, "data.name", "Generator", names, key="data_synth",
          format_func=lambda n: f"{PRETTY[n]} ({'regression' if n in SYNTHETIC_REGRESSION else 'classification'})",
          help="Regression toys: the paper's cubic y = x³ + ε, a sine whose noise grows with |x|, "
               "and a curve with a hole in the inputs. Classification toys are 2-D.")
    c1, c2 = st.columns(2)
    with c1:
        _bind(st.number_input, "data.n", "Training points", key="data_n", step=10, note_here=False,
              rng=CONTROL_RANGES["data.n"][0], help="How many points to train on (4 to 10,000). The paper's toy uses 20.")
    with c2:
        _bind(st.number_input, "data.seed", "Seed", key="data_seed", step=1, note_here=False,
              rng=Range(0, 2**31 - 1, integer=True), help="Same seed, same points.")
    state.show_notes("data_n")  # below the row: a narrow column would wrap it word by word
    state.show_notes("data_seed")
    noise = CONTROL_RANGES["data.noise"][0]
    _bind(st.slider, "data.noise", "Noise", noise.lo, noise.hi, step=0.5, key="data_noise",
          help="3 is each generator's intended look (the cubic's σ = 3); 0 is noise-free, 6 doubles it.")
    if spec.name in ("cubic", "sine"):
        _bind(st.toggle, "data.gap", "Leave a gap in the inputs", key="data_gap",
              help="Remove a band of x values from the training data, to see the ensemble become unsure "
                   "*between* data.")
    if spec.name in ("spirals", "blobs"):
        _bind(st.slider, "data.n_classes", "Classes", 2, 10, key="data_classes", help="Number of classes.")


def bundled_controls() -> None:
    names = list(BUNDLED_REGRESSION + BUNDLED_CLASSIFICATION)
    _bind(st.selectbox, "data.name", "Data set", names, key="data_bundled",
          format_func=lambda n: f"{PRETTY[n]} ({'regression' if n in BUNDLED_REGRESSION else 'classification'})",
          help="Small real data sets that ship with scikit-learn (no download).")
    _bind(st.number_input, "data.seed", "Split seed", key="data_seed", step=1, rng=Range(0, 2**31 - 1, integer=True),
          help="Seed of the shuffle before splitting.")


def _uploaded() -> None:
    """A file was uploaded: read it and, if it can be used, make it the current data."""
    ss, s = st.session_state, state.settings()
    upload = ss.get("data_upload")
    if upload is None:
        return
    csv_bytes = upload.getvalue()
    table, error = read_csv(csv_bytes)
    if table is None:
        state.note("data_upload", f"This file cannot be read: {error}")
        return
    numeric = tuple(c.name for c in table.columns if c.kind == "numeric" and c.name != table.column_names[-1])
    spec = DataSpec(**{**dataclasses.asdict(DataSpec()), "source": "csv", "name": (upload.name or "upload.csv")[:200],
                       "target": table.column_names[-1], "features": numeric, "seed": s.config.data.seed,
                       "val_fraction": s.config.data.val_fraction, "test_fraction": s.config.data.test_fraction})
    _try_csv(spec, csv_bytes, "data_upload")


def _try_csv(spec: DataSpec, csv_bytes: bytes, note_key: str) -> None:
    """Make the CSV ``spec`` the current data; if it cannot be used, keep the file pending (its columns
    can still be picked) and say why under ``note_key``'s control."""
    ss, s = st.session_state, state.settings()
    try:
        state.load_data(spec, csv_bytes)
    except DataError as exc:
        state.note(note_key, f"These data cannot be used: {exc}")
        ss["csv_pending"], s.remembered["csv"], s.data_view = csv_bytes, spec, "csv"
    else:
        ss.pop("csv_pending", None)


def _pending_changed() -> None:
    """A column choice for a file that could not be used yet: try the new choice."""
    ss = st.session_state
    spec = state.settings().remembered["csv"]
    target = ss["data_p_target"]
    features = tuple(f for f in ss["data_p_features"] if f != target)
    _try_csv(dataclasses.replace(spec, target=target, features=features, task=ss["data_p_task"]),
             ss["csv_pending"], "data_p_target")


def pending_columns(columns: list[str]) -> None:
    """The column choices of an uploaded file that cannot be used as it is (e.g. a constant last column)."""
    spec = state.settings().remembered["csv"]
    ss = st.session_state
    ss["data_p_target"] = spec.target if spec.target in columns else columns[-1]
    ss["data_p_features"] = [c for c in spec.features if c in columns and c != ss["data_p_target"]]
    ss["data_p_task"] = spec.task
    st.warning("This file is not in use yet: pick the columns so that it can be used. Until then training "
               f"uses **{chrome.esc(core_data.describe(state.config().data))}**.", icon=":material/warning:")
    st.selectbox("Target column (what to predict)", columns, key="data_p_target", on_change=_pending_changed)
    state.show_notes("data_p_target")
    st.multiselect("Feature columns (inputs)", [c for c in columns if c != ss["data_p_target"]],
                   key="data_p_features", on_change=_pending_changed)
    st.selectbox("Task", list(TASKS), format_func=TASKS.get, key="data_p_task", on_change=_pending_changed)


def csv_controls() -> None:
    ss, s = st.session_state, state.settings()
    st.file_uploader("CSV file", type=["csv", "txt", "tsv"], key="data_upload", on_change=_uploaded,
                     help="Comma, semicolon or tab separated, with a header row. The file stays in your session only.")
    state.show_notes("data_upload")
    pending = ss.get("csv_pending") if s.config.data.source != "csv" else None
    csv_bytes = ss["csv_bytes"] if s.config.data.source == "csv" else pending
    if csv_bytes is None:
        st.info("Upload a file to use your own data. Until then training uses "
                f"**{chrome.esc(core_data.describe(s.config.data))}**.", icon=":material/upload_file:")
        return
    table, error = read_csv(csv_bytes)
    if table is None:
        st.error(f"**This file cannot be read:** {chrome.esc(error)}", icon=":material/error:")
        return
    columns = table.column_names
    if pending is not None:
        pending_columns(columns)
        return
    _bind(st.selectbox, "data.target", "Target column (what to predict)", columns, key="data_target",
          help="The column the ensemble learns to predict.")
    target = s.config.data.target
    _bind(st.multiselect, "data.features", "Feature columns (inputs)", [c for c in columns if c != target],
          key="data_features", convert=tuple, to_widget=lambda v: [c for c in v if c in columns and c != target],
          help="Only numeric columns can be inputs; text columns are left out by default.")
    _bind(st.selectbox, "data.task", "Task", list(TASKS), format_func=TASKS.get, key="data_task",
          help="Inferred: a target with a few whole-number or text values is a class label.")


def split_controls(source: str) -> None:
    with st.expander("Train / validation / test split", icon=":material/splitscreen:"):
        if source == "synthetic":
            st.caption("Synthetic sets draw fresh validation and test points; 0 switches a set off.")
        _bind(st.slider, "data.val_fraction", "Validation fraction", 0.0, 0.5, step=0.05, key="data_val",
              help="Held out to track the ensemble's validation metric while training.")
        _bind(st.slider, "data.test_fraction", "Test fraction", 0.0, 0.5, step=0.05, key="data_test",
              help="Held out to score the final ensemble (never used for training). Validation + test ≤ 0.8.")


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
        state.set_data(state.config().data, ss["csv_bytes"])


st.title("Data")
st.caption("Choose what the ensemble learns from. Everything below updates as you change it.")
s = state.settings()
controls, view = st.columns([1.15, 2], gap="large")
with controls:
    if s.visible("data.source"):
        st.session_state["data_source"] = s.data_view
        st.segmented_control("Source", list(SOURCES), format_func=SOURCES.get, key="data_source",
                             on_change=_switch_source, help="Synthetic toys show the ideas best; real sets (bundled "
                             "with scikit-learn) show they work on real data; or upload your own CSV.")
        state.show_notes("data_source")
    source = s.data_view
    if source == "synthetic":
        synthetic_controls()
    elif source == "bundled":
        bundled_controls()
    else:
        csv_controls()
    if s.config.data.source == source:
        split_controls(source)
        ood_view.held_out_control(_bind, st.session_state["dataset"])  # known unknowns (classification)
    state.show_notes("data_error")

ds = st.session_state["dataset"]
with view:
    st.subheader(chrome.esc(core_data.describe(state.config().data)))
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
    if state.config().data.source == "csv" and cached and cached[1] is not None:
        with st.expander("The uploaded file (first 20 rows, as read)", icon=":material/description:"):
            # escaped as every CSV the app produces (the table's own "Download as CSV" writes what it shows)
            st.dataframe(core_data.csv_safe(cached[1].frame.head(20)), hide_index=True)
    with st.expander("Training rows (first 200)", icon=":material/table:", expanded=ds.n_features > 2):
        table = pd.DataFrame(ds.x_train[:200], columns=ds.feature_names)
        y = ds.y_train[:200]
        table[ds.target_name] = np.asarray(ds.class_names, dtype=object)[y] if ds.class_names else y
        st.dataframe(core_data.csv_safe(table), hide_index=True, height=260)
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
