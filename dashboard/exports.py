"""Exports and imports of runs: the run zip, the HTML report, importing a zip."""

from __future__ import annotations

import hashlib
import re
from typing import Any

import streamlit as st

from dashboard.chrome import esc
from ensemble_core.data import DataError, Dataset, load_dataset


def run_exports(run: Any, dataset: Dataset) -> None:
    """Download buttons for a run: the run as one zip, and the standalone HTML report (built on click).

    A download does not rerun the page (``on_click="ignore"``): a rerun re-registers the buttons'
    deferred files, and a second button clicked during that rerun asked for a file already dropped.
    """
    from ensemble_core import persistence, report

    name = re.sub(r"[^a-z0-9]+", "-", str(dataset.name).lower()).strip("-")[:40] or "run"
    c1, c2 = st.columns(2)
    c1.download_button("Download the run (.zip)", data=lambda: persistence.export_zip(run, dataset),
                       file_name=f"deep-ensemble-{name}.zip", mime="application/zip", key="ui_export_zip", on_click="ignore",
                       icon=":material/folder_zip:", width="stretch",
                       help="config.json, per-epoch history.csv, test metrics.json and the weights (safetensors). "
                            "Import it here later to see the same predictions.")
    c2.download_button("HTML report", data=lambda: report.html_report(run, dataset),
                       file_name=f"deep-ensemble-{name}-report.html", mime="text/html", key="ui_export_html", on_click="ignore",
                       icon=":material/description:", width="stretch",
                       help="One file with interactive charts, the metrics, the settings and a plain-language "
                            "summary; it opens offline in any browser.")


def _import_dataset(run: Any) -> tuple[Dataset | None, str | None]:
    """The data to show an imported run against: its own (regenerated from its data spec), else the current data.

    Synthetic and bundled data are remade from the run's config (same spec and seed, same rows).  A run
    trained on an uploaded CSV is shown against the current data if they have the run's columns and task.
    """
    spec = run.config.data
    if spec.source != "csv":
        try:
            dataset = load_dataset(spec)
        except DataError as exc:
            return None, f"the run's data could not be made again ({exc})"
    else:
        dataset = st.session_state["dataset"]
    if dataset.task != run.task or list(dataset.feature_names) != list(run.feature_names):
        return None, (f"this run was trained on “{spec.name}” ({run.task}, inputs "
                      f"{', '.join(map(str, run.feature_names))}). Load those data on the Data page first, "
                      "then import the file again.")
    return dataset, None


def run_import() -> None:
    """Upload a run zip exported by this lab: it becomes the latest run (safe loading, no pickles)."""
    from ensemble_core.persistence import PersistenceError, import_zip

    ss = st.session_state
    upload = st.file_uploader("Import a run (a .zip exported from this lab)", type=["zip"], key="ui_import")
    if upload is None:
        ss["ui_imported"] = None
        return
    data = upload.getvalue()
    digest = hashlib.sha256(data).hexdigest()
    if ss.get("ui_imported") == digest:
        st.caption(f":material/check_circle: Imported {esc(upload.name)}: it is the run shown on this page.")
        return  # the uploader keeps the file: import it once, so a later training is not overwritten
    try:
        run = import_zip(data)
    except PersistenceError as exc:
        st.error(f"**This file cannot be imported:** {esc(exc)}", icon=":material/error:")
        return
    dataset, problem = _import_dataset(run)
    if dataset is None:
        st.error(f"**Cannot show this run yet:** {esc(problem)}", icon=":material/error:")
        return
    ss["run"], ss["run_dataset"], ss["ui_imported"] = run, dataset, digest
    st.rerun()
