"""Exports and imports of runs: the run zip, the HTML report, importing a zip."""

from __future__ import annotations

import hashlib
import io
import json
import re
import struct
import zipfile
from typing import Any

import streamlit as st

from dashboard import recalibration_view
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
    recal = recalibration_view.current(run)  # read now: the deferred download runs outside this session's script
    c1.download_button("Download the run (.zip)", data=lambda: with_recalibration(persistence.export_zip(run, dataset), recal),
                       file_name=f"deep-ensemble-{name}.zip", mime="application/zip", key="ui_export_zip", on_click="ignore",
                       icon=":material/folder_zip:", width="stretch",
                       help="config.json, per-epoch history.csv, test metrics.json and the weights (safetensors). "
                            "Import it here later to see the same predictions.")
    c2.download_button("HTML report", data=lambda: report.html_report(run, dataset),
                       file_name=f"deep-ensemble-{name}-report.html", mime="text/html", key="ui_export_html", on_click="ignore",
                       icon=":material/description:", width="stretch",
                       help="One file with interactive charts, the metrics, the settings and a plain-language "
                            "summary; it opens offline in any browser.")


#: The recalibration kept with a run travels next to the run's files in its zip.
RECAL_FILE = "recalibration.json"
_MAX_RECAL_BYTES = 256 * 1024


def with_recalibration(zip_bytes: bytes, recal: Any) -> bytes:
    """The run zip with ``recalibration.json`` (``recal.to_dict()``) added last; unchanged when ``recal`` is None."""
    if recal is None:
        return zip_bytes
    buf = io.BytesIO(zip_bytes)
    with zipfile.ZipFile(buf, "a") as zf:
        info = zipfile.ZipInfo(RECAL_FILE, date_time=(1980, 1, 1, 0, 0, 0))
        info.compress_type = zipfile.ZIP_DEFLATED
        zf.writestr(info, json.dumps(recal.to_dict(), indent=1, allow_nan=False))
    return buf.getvalue()


def _without_entry(data: bytes, name: str) -> bytes:
    """The zip ``data`` with ``name`` left out of its central directory (nothing is decompressed).

    The entry's bytes stay where they are, unreferenced; every other entry is listed as before, so
    the run importer's checks see exactly the run's files.  Raises ``ValueError`` on a layout it
    does not read (zip64, a split archive).
    """
    eocd = data.rfind(b"PK\x05\x06")
    if eocd < 0 or len(data) - eocd < 22:
        raise ValueError("no end of central directory")
    _, disk, cd_disk, _, n_total, cd_size, cd_off, _ = struct.unpack("<4sHHHHIIH", data[eocd:eocd + 22])
    if disk or cd_disk or cd_off + cd_size > eocd:
        raise ValueError("unsupported zip layout")
    kept, pos = [], cd_off
    for _ in range(n_total):
        if data[pos:pos + 4] != b"PK\x01\x02" or pos + 46 > cd_off + cd_size:
            raise ValueError("damaged central directory")
        n_len, x_len, c_len = struct.unpack("<HHH", data[pos + 28:pos + 34])
        end = pos + 46 + n_len + x_len + c_len
        if data[pos + 46:pos + 46 + n_len] != name.encode():
            kept.append(data[pos:end])
        pos = end
    cd = b"".join(kept)
    return data[:cd_off] + cd + struct.pack("<4sHHHHIIH", b"PK\x05\x06", 0, 0, len(kept), len(kept), len(cd), cd_off, 0)


def split_recalibration(data: bytes) -> tuple[bytes, Any, str | None]:
    """Take ``recalibration.json`` out of an uploaded run zip.

    Returns:
        ``(run_zip, recalibration or None, problem or None)``: the bytes for the run importer, the
        recalibration it carried, and why a present one was not used (the run still imports).
    """
    from ensemble_core.recalibration import Recalibration

    try:
        with zipfile.ZipFile(io.BytesIO(data)) as zf:
            info = next((i for i in zf.infolist() if i.filename == RECAL_FILE), None)
            if info is None:
                return data, None, None
            if info.file_size > _MAX_RECAL_BYTES or info.flag_bits & 0x1:
                problem, raw = f"{RECAL_FILE} is larger than {_MAX_RECAL_BYTES // 1024} KB or encrypted", None
            else:
                problem, raw = None, zf.read(info)
        run_zip = _without_entry(data, RECAL_FILE)
    except Exception:  # noqa: BLE001 - not a zip we can read: the run importer says why
        return data, None, None
    if raw is None:
        return run_zip, None, problem
    try:
        return run_zip, Recalibration.from_dict(json.loads(raw)), None
    except (ValueError, UnicodeDecodeError) as exc:
        return run_zip, None, f"{RECAL_FILE} was not used ({exc})"


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
    data, recal, recal_problem = split_recalibration(data)
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
    recalibration_view.keep(run, recal)
    if recal_problem:
        st.toast(f"Imported the run; {esc(recal_problem)}", icon=":material/warning:")
    st.rerun()
