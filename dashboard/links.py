"""Shareable and classroom links: restoring a link's setup, keeping the URL in sync, the Share box."""

from __future__ import annotations

import streamlit as st

from dashboard.chrome import esc
from dashboard.settings import CONTROL_RANGES
from dashboard.st_compat import history
from dashboard.state import bind, load_data, settings
from ensemble_core import share
from ensemble_core.data import DataError

#: What the Share box offers to hide: whole sections, then single controls (those with a widget).
HIDEABLE = tuple(share.SECTIONS) + tuple(share.CONTROLS)


#: Settings whose control offers less than the config allows: ``path: (lo, hi, what, unit format)``.  A link
#: may carry any valid config value; one outside its visible control's range is brought to the nearest value
#: the control offers, and the link's warning says so (the control could not show it otherwise).


def _fmt(value: float) -> str:
    return f"{value:,}" if isinstance(value, int) else f"{value:g}"


def _fit_controls(link: share.ShareState) -> tuple[share.ShareState, list[str]]:
    """The link with values outside their visible control's range brought into it, and a sentence for each."""
    changes, said = {}, []
    for path, (rng, what) in CONTROL_RANGES.items():
        lo, hi = rng.lo, rng.hi
        if not share.visible(path, link):
            continue  # a hidden control is not drawn: the link's value is used as it is
        value = link.config
        for part in path.split("."):
            value = getattr(value, part)
        if lo <= value <= hi:
            continue
        used = type(value)(hi if value > hi else lo)
        bound = "at most" if value > hi else "at least"
        if path == "data.n":
            said.append(f"this link asks for {_fmt(value)} {what}; {bound} {_fmt(used)} are allowed here — "
                        f"{_fmt(used)} were used")
        else:
            said.append(f"this link asks for {what} {_fmt(value)}; {bound} {_fmt(used)} is allowed here — "
                        f"{_fmt(used)} was used")
        changes[path] = used
    if not changes:
        return link, said
    return link.replace(config=link.config.replace(**changes)), said


_SECTION_LABELS = {"data": "data", "model": "network", "loss": "loss", "strategy": "ensemble strategy",
                   "optim": "optimiser"}


def _our_params() -> dict[str, str]:
    """The URL's query parameters that a link sets (others' parameters are left alone)."""
    ours = set(share.CONTROLS) | {"page", "hide", "present", "lesson", "pace"}
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


#: Query parameter of a shared sweep's read-only link (``?sweep=<token>``, see ``dashboard/sweep_view.py``).
SWEEP_PARAM = "sweep"
#: Longest ``?sweep=`` value kept (a token is 32 characters; anything longer is refused by the Sweep page).
SWEEP_PARAM_MAX = 100


def open_sweep_link() -> None:
    """A URL with ``?sweep=<token>`` opens the Sweep page's read-only view of that shared sweep (once per token).

    Only the token (cut to :data:`SWEEP_PARAM_MAX` characters) goes into ``ui_sweep_shared``; the Sweep
    page checks its shape and asks the run store, and says what is wrong with a bad or revoked link.
    """
    ss = st.session_state
    token = st.query_params.get(SWEEP_PARAM)
    if not token or ss.get("ui_sweep_link_seen") == token:
        return
    ss["ui_sweep_link_seen"] = token
    ss["ui_sweep_shared"] = str(token)[:SWEEP_PARAM_MAX]
    ss["ui_share_goto"] = "sweep"  # a link to the bare address opens the Sweep page


def open_link() -> None:
    """Restore the link's setup (:func:`_open_link`), then open a shared sweep's link (:func:`open_sweep_link`)."""
    _open_link()
    open_sweep_link()


def _open_link() -> None:
    """Restore the setup that the URL's query parameters describe: on a session's first run, and again
    whenever the URL holds parameters this session never wrote (a link opened in place).

    The link's options (hidden controls, presentation mode, lesson) go into the settings; a link with
    config keys makes its config and its data current.  A bad link keeps the current settings and
    leaves a message in ``ui_share_msg`` (shown by :func:`link_warning`).  A URL without our
    parameters (the router drops them between pages) changes nothing.
    """
    ss = st.session_state
    params = _our_params()
    own = not params or _key(params) in ss.get("ui_share_history", ())
    if "ui_share_opened" in ss and own and not (params and history.restoring()):
        # A URL this session wrote itself.  A rerun that a widget sent before the browser had
        # received the newest URL still carries an older one of ours: applying it would undo
        # the user's latest edits, so only URLs that came from outside are applied, and those
        # the browser's Back and Forward buttons return to (that page's setup comes back).
        return
    ss["ui_share_opened"] = True
    _remember(params)  # applied: the rerun that loading data may cause must not apply it again
    link, msg = share.apply_query(st.query_params)
    ss["ui_share_msg"] = msg
    ss["ui_share_goto"] = link.page  # the router opens the link's path; the page key covers a bare address
    s = settings()
    if msg is not None:
        return
    with_config = any(k in share.CONTROLS for k in st.query_params)
    said: list[str] = []
    if with_config:
        link, said = _fit_controls(link)
    if with_config and link.config.data.source == "csv":  # a link cannot carry the file: keep the current data
        said.append("this link was made with an uploaded CSV file, which a link cannot carry; the training "
                    "settings were restored. Upload the file on the Data page")
        link = link.replace(config=link.config.replace(data=s.config.data))
    if said:
        text = "; ".join(said)
        ss["ui_share_msg"] = text[0].upper() + text[1:] + "."
    old = s.config.data
    s.open_link(link, with_config=with_config)
    if s.config.data != old:
        try:
            load_data(s.config.data)
        except DataError:
            s.config = s.config.replace(data=old)
            s.remembered[old.source], s.data_view = old, old.source
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
    """This session's link options (hidden controls, presentation) as a :class:`~ensemble_core.share.ShareState`."""
    s = settings()
    return share.ShareState(hidden=s.hidden, presentation=s.presentation)


def visible(control: str) -> bool:
    """Whether a control (``"optim.lr"``) is shown: a classroom link may hide it (it keeps the link's value)."""
    return settings().visible(control)


def presenting() -> bool:
    """Presentation mode: larger type, the configuration tucked away."""
    return settings().presentation


def current_link_state(page: str) -> share.ShareState | None:
    """The state a link to ``page`` (url path) should carry now; ``None`` for a page links do not know."""
    page = page or "home"
    if page not in share.PAGES:
        return None
    s = settings()
    lesson = None
    if page == "lessons":
        from ensemble_core.lessons import lesson_ids  # only then: it imports the race module and pandas

        lesson = s.lesson or lesson_ids()[0]
    return s.share_state(page, lesson)


def sync_link(page: str) -> None:
    """Keep the browser's URL equal to the current setup (reload or copy the address bar: same setup).

    Not before the browser has the history guard (:func:`~dashboard.st_compat.history.ready`; until
    then the URL is the link just opened), or each write would add a browser-history entry.
    """
    state = current_link_state(page)
    if state is not None and history.ready():
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


def share_box(page: str) -> None:
    """The sidebar's Share popover: the link to this exact setup, optionally a classroom link.

    Choosing controls to hide changes only the link (this session keeps them);
    the presentation toggle applies here at once and goes into the link.
    """
    link = current_link_state(page)
    if link is None:
        return
    s = settings()
    with st.sidebar.popover("Share this setup", icon=":material/share:", width="stretch"):
        st.markdown("**A link that opens exactly this setup** (data, every training setting, this page).")
        hide = sorted(link.hidden)
        if not link.classroom:  # students of a classroom link share it as they got it
            hide = list(bind(st.multiselect, "share_hide", "Hide these controls (classroom link)", HIDEABLE,
                             format_func=_hide_label, key="ui_share_hide", convert=tuple, to_widget=list,
                             help="Students who open the link see only the other controls; hidden ones keep "
                                  "the values they have now. Pick a section to hide all of its controls."))
        bind(st.toggle, "presentation", "Presentation mode", key="ui_share_present",
             help="Larger type and the settings tucked away, for a projector. Applies here too.")
        st.code(share.make_link(st.context.url or "", link.replace(hidden=_compact(hide),
                                                                   presentation=s.presentation)),
                language=None, wrap_lines=True)
        st.caption("Copy it with the button at the top right of the box." +
                   (f" Students will not see {len(hide)} hidden item(s)." if hide else ""))
        bind(st.segmented_control, "img_fmt", "Chart downloads", ["png", "svg"], format_func=str.upper,
             key="ui_img_fmt", convert=lambda v: v or s.img_fmt,
             help="The camera icon above each chart saves it in this format.")


def finish_page() -> None:
    """The chrome drawn after the page: URL sync and the Share box (pages that end early call :func:`stop`)."""
    page = st.session_state.get("ui_page", "home")
    sync_link(page)
    share_box(page)


def stop() -> None:
    """``st.stop()`` for pages, drawing the chrome that follows the page first."""
    finish_page()
    st.stop()
