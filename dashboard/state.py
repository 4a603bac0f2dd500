"""The session's settings model and data: one typed source of truth that every widget is a view of."""

from __future__ import annotations

import streamlit as st

from ensemble_core.config import DataSpec, RunConfig
from ensemble_core.data import DataError, Dataset, load_dataset


def default_config(data: DataSpec | None = None) -> RunConfig:
    """The config a new session starts from: the paper's toy, 5 members, long enough to watch."""
    cfg = RunConfig().replace(**{"optim.epochs": 300})
    return cfg.replace(data=data) if data is not None else cfg


def init_state() -> None:
    """Fill in the shared session state so that every page works on the first visit."""
    ss = st.session_state
    ss.setdefault("data_spec", DataSpec())
    ss.setdefault("csv_bytes", None)
    if "dataset" not in ss:
        ss["dataset"] = load_dataset(ss["data_spec"], ss["csv_bytes"])
    ss.setdefault("config", default_config(ss["data_spec"]))
    ss.setdefault("job_id", None)
    ss.setdefault("run", None)
    ss.setdefault("run_dataset", None)


def set_data(spec: DataSpec, csv_bytes: bytes | None = None) -> Dataset | None:
    """Load ``spec`` and make it the current data, then rerun so every view (sidebar too) shows it.

    On a data problem the error is shown, the old data are kept and ``None`` is returned.
    """
    try:
        dataset = load_dataset(spec, csv_bytes)
    except DataError as exc:
        st.error(f"**These data cannot be used:** {exc}", icon=":material/error:")
        return None
    ss = st.session_state
    ss["data_spec"], ss["csv_bytes"], ss["dataset"] = spec, csv_bytes, dataset
    ss["config"] = ss["config"].replace(data=spec)
    st.rerun()
    return dataset
