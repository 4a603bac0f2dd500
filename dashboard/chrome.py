"""Sidebar, run-status wording, messages and links: the chrome every page shares."""

from __future__ import annotations

import logging
import re
from typing import Any

import streamlit as st

from dashboard.live import SIDEBAR_POLL_S, live_every
from dashboard.pool import pool, sync_job
from dashboard.state import settings
from ensemble_core.data import describe
from ensemble_core.jobs import Job

log = logging.getLogger(__name__)


#: What a table shows in a cell with no value (a trial not scored yet, a metric a run has not).
MISSING = "–"

_MD_SPECIAL = re.compile(r"([\\`*_{}\[\]()#+\-.!|~<>$:&])")


def esc(text: object) -> str:
    """Escape user text (e.g. CSV column names) so Markdown shows it literally, never as markup."""
    return _MD_SPECIAL.sub(r"\\\1", str(text).replace("\n", " "))


def link(page: str, label: str, icon: str | None = None) -> None:
    """A link to another page (``page``: its script, e.g. ``"pages/train.py"``)."""
    st.page_link(page, label=label, icon=icon)


def results_table(table: Any, first_number: int = 3) -> None:
    """A results table whose columns from ``first_number`` on are numbers, shown to 3 significant digits.

    In presentation mode it is drawn as a static table (``st.table``), whose text the projector's larger
    type reaches; ``st.dataframe`` draws on a canvas at a fixed size.
    """
    numbers = list(table.columns[first_number:])
    if settings().presentation:
        st.table(table.style.format("{:.3g}", subset=numbers, na_rep=MISSING).hide(axis="index"))
        return
    st.dataframe(table, hide_index=True, width="stretch", placeholder=MISSING,
                 column_config={c: st.column_config.NumberColumn(format="%.3g") for c in numbers})


def empty_state(message: str, page: str, label: str, icon: str = ":material/arrow_forward:") -> None:
    """A friendly 'nothing here yet' box with a link to where to go next."""
    with st.container(border=True):
        st.markdown(message)
        link(page, label, icon)


def duration(seconds: float) -> str:
    """Seconds for people: ``1.23 s``, ``12.3 s``, ``123 s`` (three significant digits, no exponent)."""
    return f"{seconds:.2f} s" if seconds < 10 else f"{seconds:.1f} s" if seconds < 100 else f"{seconds:.0f} s"


#: A run still at epoch 0 after this many seconds is waiting for its worker to start.
SLOW_START_S = 1.0


def epoch_text(job: Job) -> str:
    """Where a job is, in words: its queue place, "starting", or "epoch k of n".

    The first run after the server starts waits a few seconds for its worker
    process to load the training engine; the page says so instead of showing
    "epoch 0" without a reason.
    """
    if job.status == "queued":
        return f"waiting for a free slot (number {job.queue_position or 1} in the queue)"
    p = job.progress()
    if job.status == "running" and p.epoch == 0:
        if p.elapsed >= SLOW_START_S:
            return "starting — the training engine is loading (the first run after the server starts)"
        return "starting"
    return f"epoch {p.epoch} of {p.n_epochs}"


def run_state(job: Job | None) -> tuple[str, str]:
    """``(icon, text)`` describing a job: idle, queued (position k), training epoch k of n, ..."""
    if job is None:
        return ":material/radio_button_unchecked:", "Idle — no run yet"
    if job.status == "queued":
        return ":material/hourglass_top:", f"Queued (position {job.queue_position or 1})"
    p = job.progress()
    if job.status == "running":
        return ":material/model_training:", f"Training — {epoch_text(job)}"
    if job.status == "done":
        seconds = job.result.seconds if job.result is not None else p.elapsed  # the Train page's figure
        return ":material/check_circle:", f"Done — {p.epoch} epochs in {duration(seconds)}"
    if job.status == "stopped":
        done = job.result.epochs_done if job.result is not None else 0
        return ":material/stop_circle:", f"Stopped after {done} of {p.n_epochs} epochs"
    return ":material/error:", "Failed — see the Train page"


def _status_body(was_active: bool) -> None:
    job = sync_job()
    icon, text = run_state(job)
    st.markdown(f"{icon} {text}")
    if was_active and (job is None or not job.active):
        st.rerun()  # the run ended: a full rerun shows the results and stops this polling


def _status_live() -> None:
    _status_body(True)


def sidebar() -> None:
    """The chrome on every page: the current data set and the state of the current run."""
    job = sync_job()
    with st.sidebar:
        st.caption("CURRENT DATA")
        ds = st.session_state["dataset"]
        st.markdown(f":material/dataset: {esc(describe(settings().config.data))}")
        st.caption(f"{ds.task} · {ds.n_features} feature{'s' if ds.n_features > 1 else ''} · "
                   f"{ds.n_train} training rows")
        st.caption("CURRENT RUN")
        st.session_state["ui_sidebar_active"] = job is not None and job.active  # see train.py
        st.session_state["ui_sidebar_job"] = None if job is None else job.id
        if job is not None and job.active and st.session_state.get("ui_page") == "train":
            # the Train page shows the live progress in its main area; one poller per page is enough
            # (one wording for queued and training: only the page's live view reruns when the run starts)
            st.markdown(":material/model_training: Run in progress — follow it on this page")
        elif job is not None and job.active:
            st.fragment(run_every=live_every(SIDEBAR_POLL_S))(_status_live)()
        else:
            _status_body(False)


def _summary(job: Job) -> dict[str, float]:
    """Test (else validation) metrics of a finished job's ensemble, computed once per job."""
    cached = st.session_state.get("ui_summary")
    if cached and cached[0] == job.id:
        return cached[1]
    from ensemble_core.metrics import evaluate
    from ensemble_core.predict import predict

    ds, scores = job.dataset, {}
    x, y = (ds.x_test, ds.y_test) if len(ds.x_test) else (ds.x_val, ds.y_val)
    if len(x) and job.result is not None and job.result.healthy:
        try:
            scores = evaluate(predict(job.result, x), y)
        except Exception:  # noqa: BLE001 - a summary must not take the page down
            log.exception("summary of job %s failed", job.id)
    st.session_state["ui_summary"] = (job.id, scores)
    return scores


def job_status(job: Job) -> None:
    """The job's state: queue position, progress bar, failure, or the summary of the finished run."""
    p = job.progress()
    if job.status == "queued":
        stats = pool().stats()
        wait = pool().expected_wait(job)
        eta = f" Expected start in about {wait:.0f} s." if wait is not None and wait >= 1 else ""
        st.info(f"**Waiting for a free slot — you are number {job.queue_position or 1} in the queue.** "
                f"{stats['running']} run(s) are training on this server (at most {stats['max_running']} at once).{eta}",
                icon=":material/hourglass_top:")
    elif job.status == "running":
        eta = f" · about {p.eta:.0f} s left" if p.eta is not None else ""
        st.progress(p.fraction, text=f"{epoch_text(job).capitalize()} · {p.elapsed:.1f} s{eta}")
    elif job.status == "failed":
        st.error(f"**Training failed:** {esc(job.error)}", icon=":material/error:")
    elif job.result is not None:
        run = job.result
        word = "Stopped early" if job.status == "stopped" else "Done"
        waited = job.queue_seconds or 0.0
        queue = f" (waited {duration(waited)} in the queue)" if waited >= 1 else ""  # a class sees why it took longer
        st.success(f"**{word}:** {len(run.healthy)} member(s) after {run.epochs_done} of {p.n_epochs} epochs "
                   f"in {duration(run.seconds)}{queue}. The run is kept — explore it on the Uncertainty page.",
                   icon=":material/check_circle:")
        scores = _summary(job)
        if scores:
            cols = st.columns(3, vertical_alignment="center")
            cols[0].metric("Test NLL", f"{scores['nll']:.3f}", help="Negative log-likelihood (lower is better).")
            if "rmse" in scores:
                cols[1].metric("Test RMSE", f"{scores['rmse']:.3g}", help="In the target's units.")
            else:
                cols[1].metric("Test accuracy", f"{scores['accuracy']:.1%}")
            with cols[2]:
                link("pages/uncertainty.py", "See the uncertainty", ":material/ssid_chart:")
    diverged = [e for e in job.events_since(0) if e.kind == "diverged"]
    if diverged:
        lines = "\n".join(f"- Member {e.trajectory + 1} at epoch {e.epoch}: {esc(e.reason)}" for e in diverged)
        st.warning(f"**{len(diverged)} member(s) diverged and are excluded from the ensemble** (dashed lines). "
                   f"A smaller learning rate usually helps.\n{lines}", icon=":material/warning:")
