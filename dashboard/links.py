"""Shareable and classroom links: restoring a link's setup, keeping the URL in sync, the Share box."""

from __future__ import annotations

import streamlit as st

from dashboard.chrome import esc
from dashboard.state import set_data
from ensemble_core import share

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
