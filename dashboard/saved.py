"""The run store from the dashboard: saving ended runs, the current run's record, result links.

Every Train job is saved when it ends, in the pool's thread (:class:`OnEnd`), so a run is kept even
when its browser closed; :func:`dashboard.pool.sync_job` saves again as a fallback (saving is
idempotent per job).  Lessons and races save their runs when the page collects them
(:func:`save_sequence`).  When the store cannot be written, nothing fails: the run simply is not
kept and the Runs page says why (:func:`why_not_kept`).
"""

from __future__ import annotations

import logging
import threading
import time
import weakref
from collections import OrderedDict
from typing import Any

import streamlit as st

from dashboard import identity
from dashboard.chrome import esc

log = logging.getLogger(__name__)

#: job id -> the store's run id (``None``: not kept), most recent :data:`_SAVED_MAX` jobs.
_SAVED: OrderedDict[str, str | None] = OrderedDict()
_SAVED_MAX = 4096
_SAVE_LOCK = threading.Lock()
#: id(run object) -> (weak reference to it, the store's run id): which stored run a run in memory is.
_RUN_IDS: dict[int, tuple[weakref.ref, str]] = {}
#: Query parameter of a result link.
RESULT_PARAM = "result"


def store() -> Any | None:
    """The process-wide :class:`~ensemble_core.store.RunStore`, or ``None`` when it cannot be made at all."""
    try:
        from ensemble_core.store import RunStore
    except ImportError:
        return None
    try:
        return RunStore.default()
    except Exception:  # noqa: BLE001 - training must work without a store
        log.exception("the run store could not be opened")
        return None


def why_not_kept() -> str | None:
    """Why runs are not being kept (``None``: they are)."""
    s = store()
    if s is None:
        return "the run store could not be opened on this server"
    return None if s.available else (s.why or "the data directory cannot be written")


def save_job(job: Any, source: str, csv_bytes: bytes | None = None) -> str | None:
    """Save an ended job's run (or its failure) once; returns the store's run id (``None``: not kept).

    Any thread.  Never raises: a store problem is logged and the run is just not kept.
    """
    if job.active:
        return None
    with _SAVE_LOCK:
        if job.id in _SAVED:
            return _SAVED[job.id]
        _SAVED[job.id] = None  # claimed: a second caller gets None rather than a second copy
        while len(_SAVED) > _SAVED_MAX:
            _SAVED.popitem(last=False)
    run_id = _save(job.result, job.dataset, job.config, job.owner.split(":", 1)[0], source, csv_bytes,
                   job.error if job.status == "failed" else None)
    with _SAVE_LOCK:
        _SAVED[job.id] = run_id
    return run_id


def _save(run: Any, dataset: Any, config: Any, owner: str, source: str, csv_bytes: bytes | None,
          error: str | None) -> str | None:
    s = store()
    if s is None or not s.available:
        return None
    try:
        if run is not None:
            run_id = s.save(run, dataset, owner=owner, source=source, csv_bytes=csv_bytes).run_id
            note_saved(run_id, run)
            return run_id
        if error:
            return s.save_failed(config, owner=owner, source=source, error=error,
                                 dataset_name=getattr(dataset, "name", "")).run_id
    except Exception:  # noqa: BLE001 - StoreUnavailable and anything else: the run is just not kept
        log.exception("saving a %s run failed", source)
    return None


class OnEnd:
    """A job's ``on_change``: when it ends, save its run, then tell the page (``waker``, may be ``None``)."""

    def __init__(self, waker: Any, source: str, csv_bytes: bytes | None) -> None:
        self.waker, self.source, self.csv_bytes = waker, source, csv_bytes

    def __call__(self, job: Any) -> None:
        if not job.active:
            save_job(job, self.source, self.csv_bytes)
        if self.waker is not None:
            self.waker(job)


def on_end(waker: Any, source: str = "train") -> OnEnd:
    """The ``on_change`` for a job submitted from this session: saves it when it ends (with this session's CSV)."""
    return OnEnd(waker, source, st.session_state.get("csv_bytes"))


def follow(job: Any, waker: Any) -> None:
    """Send ``job``'s start/end pushes to ``waker`` (this session) from now on: a reload re-attached."""
    if isinstance(job.on_change, OnEnd):
        job.on_change.waker = waker
    elif waker is not None:
        job.on_change = waker


def note_saved(run_id: str | None, run: Any) -> None:
    """Remember that the run object ``run`` is the stored run ``run_id`` (for the Share box); any thread."""
    if run_id is None or run is None:
        return
    with _SAVE_LOCK:
        _RUN_IDS[id(run)] = (weakref.ref(run), run_id)
        for key in [k for k, (ref, _) in _RUN_IDS.items() if ref() is None]:
            del _RUN_IDS[key]


def run_id_of(run: Any) -> str | None:
    """The store's id of the run object ``run`` (``None``: not stored by this server process)."""
    entry = _RUN_IDS.get(id(run)) if run is not None else None
    return entry[1] if entry is not None and entry[0]() is run else None


def current_run_id() -> str | None:
    """The store's id of the session's current run (``None``: not stored)."""
    return run_id_of(st.session_state.get("run"))


def save_sequence(seq: Any, source: str) -> None:
    """Save every ended entry of a lesson or race (``RunSequence``) once; call when the page collects it.

    Once even when several tabs of the browser collect the same sequence at once (the entries are
    claimed under a lock before saving).
    """
    owner = identity.browser_id()
    csv = st.session_state.get("csv_bytes") if getattr(seq.dataset, "name", None) else None
    with _SAVE_LOCK:
        done: set[int] = seq.__dict__.setdefault("_saved", set())
        todo = [i for i, (run, error) in enumerate(zip(seq.runs, seq.errors))
                if i not in done and (run is not None or error)]
        done.update(todo)
    for i in todo:
        run, error = seq.runs[i], seq.errors[i]
        _save(run, seq.dataset, seq.configs[i], owner, source, csv, None if run is not None else error)


def when(created: float) -> str:
    """A run's time for people: ``2024-05-01 14:03``."""
    return time.strftime("%Y-%m-%d %H:%M", time.localtime(created))


# ------------------------------------------------------------------ result links
def open_result_link() -> None:
    """A URL with ``?result=<token>`` opens that shared run read-only as the current run (once per token).

    The Uncertainty page then shows it, its report and zip; a revoked or unknown token gets a message.
    """
    ss = st.session_state
    token = st.query_params.get(RESULT_PARAM)
    if not token or ss.get("ui_result_opened") == token:
        return
    ss["ui_result_opened"] = token
    s = store()
    if s is None or not isinstance(token, str) or len(token) > 64:
        ss["ui_result_msg"] = "This result link cannot be opened on this server."
        return
    try:
        record, run, dataset = s.open_shared(token)
    except Exception as exc:  # noqa: BLE001 - StoreError (revoked, unknown, damaged) and the rest
        ss["ui_result_msg"] = f"This result link cannot be opened: {exc}"
        return
    if dataset is None:
        ss["ui_result_msg"] = "This shared result's data could not be rebuilt, so it cannot be shown."
        return
    ss["run"], ss["run_dataset"], ss["ui_shared"] = run, dataset, (id(run), record)
    ss["ui_result_msg"] = None
    ss["ui_share_goto"] = "uncertainty"


def shared_record() -> Any | None:
    """The store record of the current run when it was opened from a result link (else ``None``)."""
    mark, run = st.session_state.get("ui_shared"), st.session_state.get("run")
    return mark[1] if mark and run is not None and mark[0] == id(run) else None


def result_url(token: str) -> str:
    """The read-only link of a shared result: the app's address with ``?result=<token>``."""
    base = (st.context.url or "").split("?", 1)[0].split("#", 1)[0]
    for page in ("uncertainty", "runs", "train", "data", "lessons", "compare", "home"):
        if base.endswith("/" + page):
            base = base[: -len(page)]
    return f"{base.rstrip('/')}/uncertainty?{RESULT_PARAM}={token}"


def result_banner() -> None:
    """On the Uncertainty page: say that this is a shared result and when it was trained, or the link's problem."""
    msg = st.session_state.get("ui_result_msg")
    if msg:
        st.warning(esc(msg), icon=":material/link_off:")
    record = shared_record()
    if record is not None:
        st.info(f"**A shared result** (read-only), trained {when(record.created)} · {esc(record.dataset)} · "
                f"{record.members} members, {record.epochs} epochs. Nothing was retrained to show it.",
                icon=":material/share:")


def share_result_box() -> None:
    """On the Uncertainty page: 'Share this result' — a read-only link to this browser's stored run; revoke it."""
    run_id, s = current_run_id(), store()
    if run_id is None or s is None or shared_record() is not None:
        return
    owner = identity.browser_id()
    record = s.get(run_id, owner)
    if record is None:
        return
    with st.popover("Share this result", icon=":material/share:"):
        st.markdown("**A read-only link to this trained run.** Whoever has it sees these results, the report "
                    "and the zip, without retraining.")
        try:
            if record.shared:  # the store gives the link's token again while it is not revoked
                st.code(result_url(s.share(run_id, owner)), language=None, wrap_lines=True)
                st.caption("Anyone with the link can open it. Revoke it to close it for everyone.")
                if st.button("Revoke the link", icon=":material/link_off:", key="unc_result_revoke"):
                    s.revoke(run_id, owner)
                    st.rerun()
            elif st.button("Make a link", icon=":material/link:", key="unc_result_share", type="primary"):
                s.share(run_id, owner)
                st.rerun()
        except Exception as exc:  # noqa: BLE001 - StoreError / StoreUnavailable: say it, no traceback
            st.error(f"The link could not be changed: {esc(exc)}", icon=":material/error:")
