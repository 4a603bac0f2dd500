"""Shared UI pieces of the dashboard: session defaults, the job pool, the sidebar, charts.

Session-state contract (other pages rely on it):

``data_spec``   the current :class:`DataSpec`
``csv_bytes``   the uploaded CSV's bytes, or ``None``
``dataset``     the current :class:`Dataset`
``config``      the current :class:`RunConfig` (``config.data == data_spec``)
``job_id``      id of this session's latest training job
``run``         the latest finished or stopped run; ``run_dataset`` its data

Keys private to this module start with ``ui_``.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import plotly.graph_objects as go
import streamlit as st

from ensemble_core import share
from ensemble_core.config import DataSpec, RunConfig
from ensemble_core.data import DataError, Dataset, describe, load_dataset
from ensemble_core.jobs import Job, JobPool
from pages import live_plot

log = logging.getLogger(__name__)

#: The app's root folder (page paths are relative to it).
ROOT = Path(__file__).resolve().parent.parent

#: Seconds between redraws of the live views while a job is active (on an idle server).
POLL_S = 0.5
#: Seconds between redraws of the live charts (building Plotly figures is the costly part).
CHART_S = 1.0
#: Seconds between refreshes of the sidebar's run status while a job is active.
SIDEBAR_POLL_S = 1.0
#: The slowest any live view refreshes, however busy the server is.
SLOWEST_S = 5.0
#: The fastest a running run's page redraws while other runs wait in the queue: each redraw costs the
#: server a script run and the browser a render, CPU that the queue's runs are waiting for.
WAITING_S = 2.0
#: The slowest a queued run's page refreshes its place in the line (its run's start and end are pushed).
QUEUED_SLOWEST_S = 15.0
#: Key of the container that holds a live view (the Train page's run, a lesson, a race).
LIVE_KEY = "live_view"
#: Live views redraw a few times a second.  Streamlit eases its progress bar over 0.5 s and fades
#: elements that are being redrawn (after a 0.5 s delay); restarted on every refresh, those
#: transitions kept the browser compositing frames at 60 fps for the whole run, which a
#: software-rendered browser pays for on the CPU the training needs (a third of the browser's CPU
#: on a 2-core machine).  The bar now steps, and a live view's elements never fade.
LIVE_CSS = ("<style>[data-testid='stProgressBarTrack'] div { transition: none !important; } "
            f".st-key-{LIVE_KEY} [data-stale='true'] {{ opacity: 1 !important; transition: none !important; }}</style>")
#: Plotly options: no logo, a small toolbar, PNG export for slides.
PLOTLY_CONFIG = {"displaylogo": False, "modeBarButtonsToRemove": ["lasso2d", "select2d"]}


def route_through_app() -> None:
    """Make the router in ``app.py`` handle the very first script runs of the process too.

    Because the pages live in ``pages/``, Streamlit starts in its legacy
    multipage mode (every file of ``pages/`` routed directly, ``app.py``
    bypassed on a deep link such as ``/data``) until ``st.navigation`` runs
    once.  Each page calls this first.  Outside the router, the first visitor
    leaves that mode and reruns through ``app.py``; a visitor racing with them
    (the mode already left), or a page run on its own (AppTest), gets the shared
    state filled in so the page still works.  It must not run at import time: a
    rerun raised mid-import leaves ``pages.ui`` half-imported for others.
    """
    from streamlit.runtime.pages_manager import PagesManager

    if getattr(_ROUTED, "active", False):
        return
    if PagesManager.uses_pages_directory:
        PagesManager.uses_pages_directory = False
        st.rerun()
    init_state()


class _Routed(threading.local):
    """Per script thread: is ``app.py``'s router running the current page?"""

    active = False


_ROUTED = _Routed()


def run_page(page: Any) -> None:
    """Run the page ``st.navigation`` picked, marked as routed (see :func:`route_through_app`)."""
    _ROUTED.active = True
    try:
        page.run()
    finally:
        _ROUTED.active = False


#: owner -> Streamlit session id, so the pool can ask whether a user's browser is still connected.
_SESSIONS: dict[str, str] = {}
#: Past this many entries, a new session first drops the entries of sessions that are gone.
SESSIONS_PRUNE_AT = 256


def prune_sessions(is_active: Callable[[str], bool], table: dict[str, str] | None = None) -> int:
    """Drop the owners whose Streamlit session ``is_active`` no longer reports; returns how many.

    A session that reconnects registers again on its next script run (:func:`owner`), and the
    pool falls back to its heartbeat for an owner it cannot look up, so dropping is always safe.
    """
    table = _SESSIONS if table is None else table
    gone = [key for key, sid in list(table.items()) if not is_active(sid)]
    for key in gone:
        table.pop(key, None)
    return len(gone)


def _connected(owner_key: str) -> bool | None:
    """Whether the browser session of ``owner_key`` is connected (``None``: unknown, use the heartbeat)."""
    from streamlit import runtime

    session_id = _SESSIONS.get(owner_key.split(":", 1)[0])
    if session_id is None or not runtime.exists():
        return None
    return runtime.get_instance().is_active_session(session_id)


@st.cache_resource(show_spinner=False)
def pool() -> JobPool:
    """The process-wide training pool, shared by every browser session.

    Its reaper frees the jobs of sessions that disconnected (a closed tab) a
    minute ago; a connected session keeps its jobs even when its polling is
    starved by a busy server.
    """
    return JobPool(alive=_connected)


_PREWARM = threading.Event()


def prewarm() -> None:
    """Create the job pool (and so start its worker processes) in the background, once per server.

    Called after the first page has been sent, so a server's first visitor does
    not wait for it, and the first **Train** click finds warm workers instead of
    paying for their start (a few seconds of importing torch).  The live
    charts' gzipped Plotly library is prepared then too.
    """
    if _PREWARM.is_set():
        return
    _PREWARM.set()

    def work() -> None:
        time.sleep(1.0)  # let the first page reach the browser first
        try:
            pool()
            from ensemble_core import metrics, predict, viz  # noqa: F401 - the first run's charts and scores
            live_plot.ensure_assets()
        except Exception:  # noqa: BLE001 - only an optimisation: the first run creates it otherwise
            log.exception("pre-warming the job pool failed")

    threading.Thread(target=work, name="jobpool-prewarm", daemon=True).start()


def live_every(base: float, slowest: float = SLOWEST_S) -> float:
    """Refresh interval of a live view: ``base`` seconds, slower when the server is busy.

    Every refresh of every open browser costs the shared server (a script run)
    and the browser (a redraw).  With up to two active runs per core the views
    refresh at ``base``; beyond that the interval grows with the load (a class
    of 20 on 2 cores: 5 x), never beyond ``slowest``.  A fragment declared with
    it keeps the interval of its last full run; the Train page's live view
    asks again on every refresh (:func:`poll_every`).
    """
    stats = pool().stats()
    per_core = (stats["running"] + stats["queued"]) / max(1, stats["max_running"])
    return round(min(max(base, slowest), base * max(1.0, per_core / 2)), 2)


def poll_every(job: Job) -> float:
    """Seconds until the Train page's live view of ``job`` should refresh next.

    :func:`live_every` of :data:`POLL_S`; for a running job, no faster than
    :data:`WAITING_S` while other runs wait in the queue; for a queued job,
    half its expected wait (at most :data:`QUEUED_SLOWEST_S`): a class waiting
    in line has nothing to animate, and its polls would take CPU from the runs
    in front of it.  The polls only move the page's place in the line: the
    run's start and end reach the page at once (:class:`pages.live_push.SessionWaker`).  The
    live view asks again on every refresh
    (:func:`pages.live_push.retime_fragment`), so the polls quicken as the start
    nears and follow the server's load.
    """
    every = live_every(POLL_S)
    if job.status != "queued":
        return max(every, WAITING_S) if pool().stats()["queued"] else every
    wait = pool().expected_wait(job)
    return round(min(QUEUED_SLOWEST_S, max(every, (wait or 0.0) / 2)), 2)


def live_sequence(seq_key: str, owner_key: str, body: Callable[[Any], None], stop_label: str, stop_key: str) -> None:
    """The live view of a :class:`~ensemble_core.race.RunSequence` (a lesson, a race).

    Each refresh advances the sequence in ``st.session_state[seq_key]`` (for
    ``owner_key``), draws ``body(seq)`` and a Stop button; when the sequence is
    done, one full rerun shows its results.
    """
    @st.fragment(run_every=live_every(CHART_S))
    def live() -> None:
        seq = st.session_state[seq_key]
        seq.step(pool(), owner_key)
        if seq.done:
            st.rerun()
        with st.container(key=LIVE_KEY):
            body(seq)
            if st.button(stop_label, icon=":material/stop:", key=stop_key):
                seq.stop(pool(), owner_key)
                st.rerun()

    live()


def owner() -> str:
    """A random id for this browser session (the pool's owner key)."""
    from streamlit.runtime.scriptrunner import get_script_run_ctx

    if "ui_owner" not in st.session_state:
        st.session_state["ui_owner"] = uuid.uuid4().hex
    key = st.session_state["ui_owner"]
    ctx = get_script_run_ctx()
    if ctx is not None and _SESSIONS.get(key) != ctx.session_id:
        if len(_SESSIONS) >= SESSIONS_PRUNE_AT:  # a long-lived server: forget the tabs closed long ago
            from streamlit import runtime

            if runtime.exists():
                prune_sessions(runtime.get_instance().is_active_session)
        _SESSIONS[key] = ctx.session_id
    return key


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


def current_job() -> Job | None:
    """This session's latest job (``None`` if none, or forgotten by the pool)."""
    job_id = st.session_state.get("job_id")
    return pool().get(job_id, owner()) if job_id else None  # no pool (nor torch) before the first run


def sync_job() -> Job | None:
    """Heartbeat the pool and, once this session's job has ended, publish its run.

    Sets ``run`` and ``run_dataset`` exactly once per finished or stopped job.
    """
    job = current_job()
    if job is not None:
        pool().touch(owner())
    if job is not None and not job.active and job.result is not None \
            and st.session_state.get("ui_collected") != job.id:
        st.session_state["run"], st.session_state["run_dataset"] = job.result, job.dataset
        st.session_state["ui_collected"] = job.id
    return job


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
        st.markdown(f":material/dataset: {esc(describe(st.session_state['data_spec']))}")
        st.caption(f"{ds.task} · {ds.n_features} feature{'s' if ds.n_features > 1 else ''} · "
                   f"{ds.n_train} training rows")
        st.caption("CURRENT RUN")
        st.session_state["ui_sidebar_active"] = job is not None and job.active  # see train.py
        if job is not None and job.active and st.session_state.get("ui_page") == "train":
            # the Train page shows the live progress in its main area; one poller per page is enough
            # (one wording for queued and training: only the page's live view reruns when the run starts)
            st.markdown(":material/model_training: Run in progress — follow it on this page")
        elif job is not None and job.active:
            st.fragment(run_every=live_every(SIDEBAR_POLL_S))(_status_live)()
        else:
            _status_body(False)


_MD_SPECIAL = re.compile(r"([\\`*_{}\[\]()#+\-.!|~<>$:&])")


def esc(text: object) -> str:
    """Escape user text (e.g. CSV column names) so Markdown shows it literally, never as markup."""
    return _MD_SPECIAL.sub(r"\\\1", str(text).replace("\n", " "))


def figure(name: str, *args: Any, **kwargs: Any) -> go.Figure | None:
    """Build a figure with ``ensemble_core.viz.<name>``; ``None`` (logged) if that fails.

    Figures must never take a page down: a failing builder is logged and the
    page shows a short note instead.
    """
    try:
        from ensemble_core import viz

        builder: Callable[..., go.Figure] | None = getattr(viz, name, None)
    except ImportError:
        builder = None
    if builder is None:
        return _placeholder(name)
    try:
        return builder(*args, **kwargs)
    except Exception:  # noqa: BLE001 - a chart problem must not become a traceback
        log.exception("figure %s failed", name)
        return None


def _placeholder(name: str) -> go.Figure:
    fig = go.Figure()
    fig.add_annotation(text=f"{name.replace('_', ' ')}: coming soon", showarrow=False)
    fig.update_layout(height=260, xaxis_visible=False, yaxis_visible=False)
    return fig


def plotly_config(key: str) -> dict[str, Any]:
    """Plotly options for a chart: its camera button downloads it as PNG or SVG (the Share box's choice)."""
    from ensemble_core.report import image_config

    return image_config(st.session_state.get("ui_img_fmt") or "png", f"deep-ensemble-lab-{key}")


def show(fig: go.Figure | dict | None, key: str, *, height: int | None = None, on_select: str | None = None,
         live: bool = False) -> Any:
    """Draw a Plotly figure with a stable key and a PNG/SVG download button.

    With ``on_select="rerun"`` a click selects a point and the selection event is returned.
    ``live=True`` (the live views) draws it with :func:`pages.live_plot.live_chart`:
    a new figure for the same key updates the chart in place, keeping the
    viewer's zoom; ``fig`` may then also be a figure's plain JSON data.
    """
    if fig is None:
        st.caption(":material/info: This chart could not be drawn for the current data.")
        return None
    if live:
        spec = fig if isinstance(fig, dict) else live_plot.to_spec(fig)
        if height:
            spec = {**spec, "layout": {**spec.get("layout", {}), "height": height}}
        live_plot.live_chart(spec, key, plotly_config(key))
        return None
    if height:
        fig.update_layout(height=height)
    select = {"on_select": on_select, "selection_mode": "points"} if on_select else {}
    return st.plotly_chart(fig, key=key, config=plotly_config(key), width="stretch", **select)


def show_in_place(fig: go.Figure | None, key: str) -> None:
    """A live view's chart ``key``, updated in place on each refresh (the viewer's zoom stays); nothing if ``None``."""
    if fig is not None:
        show(fig.update_layout(uirevision=key), key=key, live=True)


def link(page: str, label: str, icon: str | None = None) -> None:
    """``st.page_link`` that degrades to a caption when the page does not exist yet."""
    if (ROOT / page).exists():
        st.page_link(page, label=label, icon=icon)
    else:
        st.caption(f"{label} (coming soon)")


def empty_state(message: str, page: str, label: str, icon: str = ":material/arrow_forward:") -> None:
    """A friendly 'nothing here yet' box with a link to where to go next."""
    with st.container(border=True):
        st.markdown(message)
        link(page, label, icon)


# ------------------------------------------------------------------ the job poller
def preview_grid(dataset: Dataset) -> Any | None:
    """The inputs of the live preview: 1-D regression or 2-D classification, else ``None``."""
    if (dataset.task, dataset.n_features) not in (("regression", 1), ("classification", 2)):
        return None
    from ensemble_core import viz

    return viz.input_grid(dataset, n=200 if dataset.n_features == 1 else 50)


def lr_figure(cfg: RunConfig, n_train: int, steps_done: int | None = None) -> go.Figure | None:
    """The run's learning rate per step with its snapshot points, and a 'now' marker once steps were taken."""
    from ensemble_core import schedules

    return figure("lr_figure", schedules.lr_schedule(cfg, n_train),
                  steps_per_epoch=schedules.steps_per_epoch(cfg.optim.batch_size, n_train),
                  snapshot_steps=[s - 1 for s in schedules.snapshot_steps(cfg, n_train)],
                  now_step=steps_done - 1 if steps_done else None, height=260)


def lr_plan(cfg: RunConfig, n_train: int) -> dict | None:
    """The Train page's learning-rate chart before a run, as plain JSON data (``None`` if it failed).

    Every change of a setting reruns the page, and building the figure (Plotly
    validates it in pure Python, ~35 ms holding the GIL) was about half of such
    a rerun's server time.  The schedule depends on the settings and the number
    of training rows, not on the seed, so one spec serves every session of the
    server with those settings (read-only), as the live charts' bases do.
    """
    return _shared_plan(_settings_key(cfg, n_train), cfg, n_train)


def _plan_spec(cfg: RunConfig, n_train: int) -> dict | None:
    """The schedule chart before a run, built (what :func:`lr_plan` shares)."""
    fig = lr_figure(cfg, n_train)
    return None if fig is None else live_plot.to_spec(fig)


@st.cache_resource(max_entries=64, show_spinner=False)
def _shared_plan(key: str, _cfg: RunConfig, _n_train: int) -> dict | None:
    """:func:`lr_plan` for the settings ``key`` (the arguments with a leading ``_`` are not hashed)."""
    return _plan_spec(_cfg, _n_train)


def _settings_key(cfg: RunConfig, *extra: Any) -> str:
    """A cache key of ``cfg`` without its seed (and of ``extra``): what sessions with these settings share."""
    return json.dumps([cfg.replace(seed=0).to_json(indent=None), *extra])


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


def duration(seconds: float) -> str:
    """Seconds for people: ``1.23 s``, ``12.3 s``, ``123 s`` (three significant digits, no exponent)."""
    return f"{seconds:.2f} s" if seconds < 10 else f"{seconds:.1f} s" if seconds < 100 else f"{seconds:.0f} s"


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


def show_live(key: str, signature: tuple, build: Callable[[], dict | None]) -> None:
    """The live chart ``key`` (see :func:`show`), built by ``build`` only when ``signature`` changed.

    A live view polls more often than its charts' data refresh, and each poll
    must draw every chart again; with the same ``signature`` (the data the
    charts were drawn from) the chart's encoded payload from the previous poll
    is sent again, without building or encoding the figure.
    """
    memo = st.session_state.setdefault("ui_live_payloads", {})
    config = plotly_config(key)  # the download format can change between polls (Share box)
    signature = (signature, json.dumps(config, sort_keys=True))
    hit = memo.get(key)
    if hit is not None and hit[0] == signature:
        live_plot.live_chart_bytes(hit[1], key)
        return
    spec = build()
    if spec is None:
        memo.pop(key, None)
        show(None, key)
        return
    data = live_plot.payload(spec, config)
    memo[key] = (signature, data)
    live_plot.live_chart_bytes(data, key)


def _budgeted(slot: str, signature: tuple, build: Callable[[], go.Figure | None], *, force: bool) -> dict | None:
    """The figure for ``slot`` (as plain JSON data), rebuilt when its inputs changed, but at most ~10% of the time.

    A rebuild that took ``b`` seconds is not repeated for ``10 b`` seconds (the
    old figure is shown meanwhile) unless ``force`` (the run has ended).
    """
    cache = st.session_state.setdefault("ui_figs", {})
    hit = cache.get(slot)
    now = time.monotonic()
    if hit is not None and hit[0] == signature:
        return hit[1]
    if hit is not None and not force and hit[0][0] == signature[0] and now - hit[2] < max(CHART_S, 10 * hit[3]):
        return hit[1]
    fig = build()
    spec = None if fig is None else live_plot.to_spec(fig.update_layout(uirevision=slot))
    cache[slot] = (signature, spec, now, time.monotonic() - now)
    return spec


def live_bases(cfg: RunConfig, ds: Dataset) -> dict[str, dict]:
    """Specs (plain JSON data) of the live charts built once, before a job starts (their data are filled in live).

    Plotly validates every property of a ``go.Figure`` in pure Python (tens of
    milliseconds a chart, holding the GIL); the live charts patch the data of
    these specs instead.  The bases depend on the settings but not the seed,
    so they are shared by every session of the server (read-only): a class
    that trains the same settings builds them once, not once per student.
    """
    return _shared_bases(_settings_key(cfg, ds.task, ds.n_train), cfg, ds)


@st.cache_resource(max_entries=32, show_spinner=False)
def _shared_bases(key: str, _cfg: RunConfig, _ds: Dataset) -> dict[str, dict]:
    """:func:`live_bases` for the settings ``key`` (the arguments with a leading ``_`` are not hashed)."""
    n, out = _cfg.optim.epochs, {}
    for slot, name, kwargs in (("train_loss_fig", "loss_figure", {"metric": "loss", "height": 340}),
                               ("train_acc_fig", "loss_figure", {"metric": "accuracy", "height": 300}),
                               ("train_val_fig", "val_figure", {"height": 280})):
        if slot == "train_acc_fig" and _ds.task != "classification":
            continue
        args = ([], n, _ds.task) if name == "val_figure" else ([], n)
        extra = {} if name == "val_figure" else {"n_members": _cfg.strategy.members}
        fig = figure(name, *args, **kwargs, **extra)
        if fig is not None:
            out[slot] = live_plot.to_spec(fig.update_layout(uirevision=slot))
    fig = lr_figure(_cfg, _ds.n_train, 1)  # with a "now" line, which the live chart moves (any schedule)
    if fig is not None:
        out["train_lr_live"] = live_plot.to_spec(fig.update_layout(uirevision="train_lr_live"))
    return out


def _finite(v: Any) -> float | None:
    return float(v) if v is not None and np.isfinite(v) else None


#: Most points per trace of a live curve (longer histories are thinned evenly, the last epoch kept):
#: redrawing many thousands of points a second would cost the viewer's browser more than the run costs
#: the server.  (1000: a curve keeps visibly growing point by point for the first 1000 epochs.)
LIVE_POINTS = 1000


def _series_spec(base: dict, rows: list, values: Callable[[Any], list], most: int | None = LIVE_POINTS) -> dict | None:
    """``base`` with trace ``j``'s ``x`` = epochs and ``y`` = ``values(row)[j]`` (None when missing).

    At most ``most`` points per trace (``None``: every row, for a finished run).
    """
    if most is not None and len(rows) > most:
        rows = [rows[i] for i in np.unique(np.linspace(0, len(rows) - 1, most).astype(int))]
    data = [dict(t) for t in base["data"]]
    x = [int(e.epoch) for e in rows]
    for j, trace in enumerate(data):
        trace["x"] = x
        trace["y"] = [_finite(v[j]) if v is not None and j < len(v) else None for v in map(values, rows)]
    layout = dict(base["layout"])
    if rows:  # the base's "Waiting for the first epoch…" note stays until there is data
        layout["annotations"] = [a for a in layout.get("annotations", ()) if "Waiting" not in str(a.get("text", ""))]
    return {"data": data, "layout": layout}


def _lr_spec(base: dict, cfg: RunConfig, n_train: int, steps: int) -> dict | None:
    """``base`` (built with a 'now' line) with the line moved to ``steps`` and the snapshots split."""
    from ensemble_core import schedules

    spe = schedules.steps_per_epoch(cfg.optim.batch_size, n_train)
    lrs = schedules.lr_schedule(cfg, n_train)
    snaps = np.asarray([s - 1 for s in schedules.snapshot_steps(cfg, n_train)], dtype=int)
    layout = dict(base["layout"])
    shapes, notes = [dict(x) for x in layout.get("shapes", ())], [dict(x) for x in layout.get("annotations", ())]
    now = [a for a in notes if a.get("text") == "now"]
    if len(shapes) != 1 or len(now) != 1:
        return None
    xn = (min(steps, len(lrs)) or 1) / spe
    shapes[0]["x0"] = shapes[0]["x1"] = now[0]["x"] = xn
    layout["shapes"], layout["annotations"] = shapes, notes
    data = [dict(t) for t in base["data"]]
    for trace in data:
        name = trace.get("name", "")
        if name.startswith("Snapshot"):
            sel = snaps[(snaps <= steps - 1) == (name == "Snapshot taken")]
            trace["x"], trace["y"] = ((sel + 1) / spe).tolist(), lrs[sel].tolist()
    return {"data": data, "layout": layout}


def job_charts(job: Job) -> None:
    """The live charts of a job, drawn from its event history.

    Loss, accuracy, validation and LR charts patch the data into specs built
    before the job started (:func:`live_bases`); the live prediction and any
    chart without a base are rebuilt by ``viz`` within a time budget.
    """
    events, cfg, ds = job.events, job.config, job.dataset
    shown = st.session_state.get("ui_chart_upto")  # (job id, events shown, when)
    now = time.monotonic()
    if shown is None or shown[0] != job.id or not job.active or now - shown[2] >= live_every(CHART_S):
        shown = st.session_state["ui_chart_upto"] = (job.id, len(events), now)
    events = events[:shown[1]]  # between refreshes the charts get the same data again (no redraw)
    shown_sig = (job.id, shown[1], job.active)  # what every chart below is drawn from
    epochs = [e for e in events if e.kind == "epoch"]
    diverged = any(e.kind == "diverged" for e in events)
    sig, force = (job.id, len(epochs), diverged), not job.active
    most = LIVE_POINTS if job.active else None  # live curves are thinned; a finished run shows every epoch
    n, task, members = cfg.optim.epochs, ds.task, cfg.strategy.members
    saved = st.session_state.get("ui_live")
    bases = saved[1] if saved and saved[0] == job.id else {}
    steps = sum(len(e.lrs) for e in epochs)

    def chart(slot: str, fast: Callable[[dict], dict | None], slow: Callable[[], go.Figure | None]) -> None:
        def build() -> dict | None:
            spec = fast(bases[slot]) if slot in bases and not diverged else None
            return spec if spec is not None else _budgeted(slot, sig, slow, force=force)
        show_live(slot, shown_sig, build)

    preview = next((e for e in reversed(events) if e.kind == "preview"), None)
    grid = preview_grid(ds)
    top = st.columns([3, 2] if grid is not None else [1])
    with top[0]:
        chart("train_loss_fig", lambda b: _series_spec(b, epochs, lambda e: e.train_loss, most),
              lambda: figure("loss_figure", events, n, metric="loss", n_members=members, height=340))
    if grid is not None:
        with top[1]:
            if preview is None:
                st.caption("The live prediction appears after the first few epochs.")
            else:
                builder = "bands_figure" if task == "regression" else "class_maps"
                show_live("train_preview", shown_sig, lambda: _budgeted(
                    "train_preview", (job.id, preview.epoch),
                    lambda: figure(builder, ds, grid, preview.prediction, compact=True), force=force))
                st.caption("Live prediction of the ensemble so far." if job.active
                           else f"The ensemble's prediction after epoch {preview.epoch}.")
    if task == "classification":
        chart("train_acc_fig", lambda b: _series_spec(b, epochs, lambda e: e.train_acc, most),
              lambda: figure("loss_figure", events, n, metric="accuracy", n_members=members, height=300))
    second = "rmse" if task == "regression" else "accuracy"
    chart("train_val_fig", lambda b: _series_spec(b, epochs, lambda e: [e.val.get("nll"), e.val.get(second)], most)
          if all(e.val for e in epochs) else None, lambda: figure("val_figure", events, n, task, height=280))
    chart("train_lr_live", lambda b: _lr_spec(b, cfg, ds.n_train, steps) if steps else None,
          lambda: lr_figure(cfg, ds.n_train, steps))


# ------------------------------------------------------------------ shareable and classroom links
#: What the Share box offers to hide: whole sections, then single controls (those with a widget).
HIDEABLE = tuple(share.SECTIONS) + tuple(share.CONTROLS)
_SECTION_LABELS = {"data": "data", "model": "network", "loss": "loss", "strategy": "ensemble strategy",
                   "optim": "optimiser"}


def _our_params() -> dict[str, str]:
    """The URL's query parameters that a link sets (others' parameters are left alone)."""
    ours = set(share.CONTROLS) | {"page", "hide", "present", "lesson"}
    return {k: str(v) for k, v in st.query_params.items() if k in ours}


def _key(params: dict[str, str]) -> frozenset[tuple[str, str]]:
    return frozenset(params.items())


def _remember(params: dict[str, str], keep: int = 200) -> None:
    """Record a URL state this session wrote (bounded), so a stale copy of it is never re-applied."""
    ss = st.session_state
    history: list = ss.setdefault("ui_share_history", [])
    key = _key(params)
    if key in history:
        history.remove(key)
    history.append(key)
    del history[:-keep]
    ss["ui_share_written"] = params


def open_link() -> None:
    """Restore the setup that the URL's query parameters describe: on a session's first run, and again
    whenever the URL holds parameters this session never wrote (a link opened in place).

    The link's :class:`~ensemble_core.share.ShareState` (hidden controls,
    presentation mode) is kept in ``ui_share``.  A link with config keys makes
    its config and its data current.  A bad link keeps the defaults and leaves
    a message in ``ui_share_msg`` (shown by :func:`link_warning`).  A URL
    without our parameters (the router drops them between pages) changes nothing.
    """
    ss = st.session_state
    params = _our_params()
    if "ui_share" in ss and (not params or _key(params) in ss.get("ui_share_history", ())):
        # A URL this session wrote itself.  A rerun that a widget sent before the browser had
        # received the newest URL still carries an older one of ours: applying it would undo
        # the user's latest edits, so only URLs that came from outside are applied.
        return
    _remember(params)  # applied: the rerun that loading data may cause must not apply it again
    state, msg = share.apply_query(st.query_params)
    ss["ui_share"], ss["ui_share_msg"], ss["ui_share_present"] = state, msg, state.presentation
    ss["ui_share_goto"] = state.page  # the router opens the link's path; the page key covers a bare address
    if msg is not None or not any(k in share.CONTROLS for k in st.query_params):
        return
    spec = state.config.data
    if spec.source == "csv":  # a link cannot carry the file: keep the current data, restore the rest
        ss["ui_share_msg"] = ("This link was made with an uploaded CSV file, which a link cannot carry; the "
                              "training settings were restored. Upload the file on the Data page.")
        ss["config"] = state.config.replace(data=ss["data_spec"])
        return
    ss["config"] = state.config
    for key in [k for k in ss if k.startswith(("train_", "data_")) and k not in ("data_spec", "data_click_last")]:
        del ss[key]  # the pages' widgets start again from the link's config, not from what they showed before
    if spec != ss["data_spec"]:
        set_data(spec)  # reruns once the link's data are loaded; returns only on a data problem
        ss["config"] = state.config.replace(data=ss["data_spec"])
        ss["ui_share_msg"] = "The data this link describes could not be made; the current data were kept."


def link_warning() -> None:
    """Show why a link could not be fully restored (until dismissed)."""
    msg = st.session_state.get("ui_share_msg")
    if msg:
        st.warning(esc(msg), icon=":material/link_off:")
        if st.button("Dismiss", key="ui_share_dismiss", type="tertiary"):
            st.session_state["ui_share_msg"] = None
            st.rerun()


def link_state() -> share.ShareState:
    """This session's link options (hidden controls, presentation), as opened from its link."""
    return st.session_state.get("ui_share") or share.ShareState()


def visible(control: str) -> bool:
    """Whether a control (``"optim.lr"``) is shown: a classroom link may hide it (it keeps the link's value)."""
    return share.visible(control, link_state())


def presenting() -> bool:
    """Presentation mode: larger type, the configuration tucked away."""
    return link_state().presentation


def current_link_state(page: str) -> share.ShareState | None:
    """The state a link to ``page`` (url path) should carry now; ``None`` for a page links do not know."""
    page = page or "home"
    if page not in share.PAGES or "config" not in st.session_state:  # e.g. a page script run on its own
        return None
    ss, state = st.session_state, link_state()
    lesson = ss.get("lessons_pick", st.query_params.get("lesson", state.lesson)) if page == "lessons" else None
    try:
        return state.replace(config=ss["config"], page=page, lesson=lesson)
    except Exception:  # noqa: BLE001 - e.g. a malformed lesson id: leave it out
        return state.replace(config=ss["config"], page=page, lesson=None)


def sync_link(page: str) -> None:
    """Keep the browser's URL equal to the current setup (reload or copy the address bar: same setup)."""
    state = current_link_state(page)
    if state is not None:
        share.sync_query_params(st.query_params, state)
        _remember(_our_params())


def _compact(hidden: frozenset[str] | list[str]) -> frozenset[str]:
    """The same hidden controls, a whole section named once when all of its controls are hidden (shorter links)."""
    out = set(hidden)
    for sec in share.SECTIONS:
        members = {c for c in share.CONTROLS if c.startswith(sec + ".")}
        if sec in out or members <= out:
            out = (out - members) | {sec}
    return frozenset(out)


def _hide_label(name: str) -> str:
    return f"All {_SECTION_LABELS[name]} settings" if name in _SECTION_LABELS else name


def _toggle_presentation() -> None:
    ss = st.session_state
    ss["ui_share"] = link_state().replace(presentation=bool(ss["ui_share_present"]))


def share_box(page: str) -> None:
    """The sidebar's Share popover: the link to this exact setup, optionally a classroom link.

    Choosing controls to hide changes only the link (this session keeps them);
    the presentation toggle applies here at once and goes into the link.
    """
    state = current_link_state(page)
    if state is None:
        return
    with st.sidebar.popover("Share this setup", icon=":material/share:", width="stretch"):
        st.markdown("**A link that opens exactly this setup** (data, every training setting, this page).")
        hide = sorted(state.hidden)
        if not state.classroom:  # students of a classroom link share it as they got it
            hide = st.multiselect("Hide these controls (classroom link)", HIDEABLE, format_func=_hide_label,
                                  key="ui_share_hide", help="Students who open the link see only the other "
                                  "controls; hidden ones keep the values they have now. Pick a section to hide "
                                  "all of its controls.")
        st.toggle("Presentation mode", key="ui_share_present", on_change=_toggle_presentation,
                  help="Larger type and the settings tucked away, for a projector. Applies here too.")
        st.code(share.make_link(st.context.url or "", state.replace(hidden=_compact(hide))), language=None,
                wrap_lines=True)
        st.caption("Copy it with the button at the top right of the box." +
                   (f" Students will not see {len(hide)} hidden item(s)." if hide else ""))
        st.segmented_control("Chart downloads", ["png", "svg"], format_func=str.upper, key="ui_img_fmt",
                             default="png", help="The camera icon above each chart saves it in this format.")


def finish_page() -> None:
    """The chrome drawn after the page: URL sync and the Share box (pages that end early call :func:`stop`)."""
    page = st.session_state.get("ui_page", "home")
    sync_link(page)
    share_box(page)


def stop() -> None:
    """``st.stop()`` for pages, drawing the chrome that follows the page first."""
    finish_page()
    st.stop()


# ------------------------------------------------------------------ exports and imports of runs
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
