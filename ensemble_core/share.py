"""Shareable state: the whole dashboard setup in URL query parameters.

A :class:`ShareState` is everything a link must restore: the :class:`RunConfig`
(dataset spec and every training control), the page, the controls a teacher
hid for a *classroom link*, presentation mode and an open lesson.  It
round-trips through flat ``str -> str`` query parameters built on
:meth:`RunConfig.to_query` / :meth:`RunConfig.from_query`, with four extra keys:

``page``      the page's url path (``"train"``, ``"lessons"``, ...)
``hide``      comma-separated control names, e.g. ``"optim.lr,model.width"``
              (a whole section such as ``"optim"`` hides all of its controls)
``present``   ``"1"`` for presentation mode
``lesson``    a lesson id (see :mod:`ensemble_core.lessons`)
``pace``      ``"fast"`` or ``"watchable"`` (how runs are shown; absent: watchable for
              presentation mode and classroom links, else fast)

The module also holds the small, Streamlit-free helper the dashboard uses to
keep the URL in step: syncing ``st.query_params`` (passed in as a mapping).
How presentation mode looks is the dashboard's business (``dashboard/theme.py``).

No Streamlit import here: pages pass ``st.query_params`` in.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping, MutableMapping
from dataclasses import dataclass, field, fields
from typing import Any
from urllib.parse import urlencode

from .config import ConfigError, RunConfig

__all__ = [
    "PAGES",
    "CONTROLS",
    "SECTIONS",
    "ShareState",
    "to_query",
    "from_query",
    "apply_query",
    "MAX_PARAM_CHARS",
    "MAX_QUERY_CHARS",
    "make_link",
    "visible",
    "sync_query_params",
]

#: Url paths of the dashboard's pages (``""`` is the home page).
PAGES: tuple[str, ...] = ("home", "data", "train", "uncertainty", "lessons", "compare")

#: The five config sections; naming one in ``hide`` hides all of its controls.
SECTIONS: tuple[str, ...] = ("data", "model", "loss", "strategy", "optim")


def _control_names() -> tuple[str, ...]:
    cfg = RunConfig()
    names = [f"{sec}.{f.name}" for sec in SECTIONS for f in fields(getattr(cfg, sec))]
    return tuple(names) + ("seed", "device")


#: Every control a classroom link can hide: the dotted RunConfig field names.
CONTROLS: tuple[str, ...] = _control_names()

_EXTRA_KEYS = ("page", "hide", "present", "lesson", "pace")
#: The paces a link may ask for (:data:`ensemble_core.run.PACES`).
PACES: tuple[str, ...] = ("fast", "watchable")
_LESSON_RE = re.compile(r"^[a-z0-9_\-]{1,40}$")


@dataclass(frozen=True)
class ShareState:
    """Everything a shared link restores.

    Attributes:
        config: the full run configuration (data spec + every training control).
        page: url path of the page the link opens (one of :data:`PAGES`).
        hidden: control names (see :data:`CONTROLS`) or whole sections
            (:data:`SECTIONS`) the UI must not show: a *classroom link*.
        presentation: larger fonts and the configuration tucked away.
        lesson: id of the lesson to open, or ``None``.
        pace: ``"fast"`` or ``"watchable"``, or ``None`` (the default of :meth:`default_pace`).
    """

    config: RunConfig = field(default_factory=RunConfig)
    page: str = "home"
    hidden: frozenset[str] = frozenset()
    presentation: bool = False
    lesson: str | None = None
    pace: str | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.config, RunConfig):
            raise ConfigError("config: must be a RunConfig")
        if self.page not in PAGES:
            raise ConfigError(f"page: must be one of {', '.join(map(repr, PAGES))}; got {self.page!r}")
        object.__setattr__(self, "hidden", frozenset(self.hidden))
        unknown = sorted(h for h in self.hidden if h not in CONTROLS and h not in SECTIONS)
        if unknown:
            raise ConfigError(
                f"hide: unknown control(s) {', '.join(map(repr, unknown))}; "
                f"use names such as 'optim.lr' or a section ({', '.join(SECTIONS)})"
            )
        if not isinstance(self.presentation, bool):
            raise ConfigError(f"present: must be true or false, got {self.presentation!r}")
        if self.lesson is not None and not (isinstance(self.lesson, str) and _LESSON_RE.match(self.lesson)):
            raise ConfigError(f"lesson: not a lesson id: {self.lesson!r}")
        if self.pace is not None and self.pace not in PACES:
            raise ConfigError(f"pace: must be one of {', '.join(PACES)}, got {str(self.pace)[:40]!r}")

    @property
    def default_pace(self) -> str:
        """The pace when none is chosen: watchable in presentation mode and for classroom links, else fast."""
        return "watchable" if self.presentation or self.hidden else "fast"

    @property
    def classroom(self) -> bool:
        """True when the link hides at least one control (a classroom link)."""
        return bool(self.hidden)

    def replace(self, **changes: Any) -> ShareState:
        """A copy with fields replaced (validated again)."""
        return dataclasses.replace(self, **changes)


def to_query(state: ShareState, *, only_changed: bool = True) -> dict[str, str]:
    """Flat query parameters for ``state``.

    Args:
        state: the state to encode.
        only_changed: leave out config fields equal to their default (short links).

    Returns:
        ``{"optim.lr": "0.1", ..., "page": "train", "hide": "optim.lr", ...}``;
        ``hide``/``present``/``lesson`` only when set.
    """
    out = state.config.to_query(only_changed=only_changed)
    out["page"] = state.page
    if state.hidden:
        out["hide"] = ",".join(sorted(state.hidden))
    if state.presentation:
        out["present"] = "1"
    if state.lesson is not None:
        out["lesson"] = state.lesson
    if state.pace is not None:
        out["pace"] = state.pace
    return out


def _last(raw: Any) -> str:
    if isinstance(raw, (list, tuple)):
        return str(raw[-1]) if raw else ""
    return str(raw)


def from_query(params: Mapping[str, Any]) -> ShareState:
    """Rebuild a :class:`ShareState` from query parameters made by :func:`to_query`.

    Args:
        params: a mapping such as ``st.query_params`` (values may be lists: the
            last one wins).  Unknown keys are ignored so other tools' parameters
            can share the URL.

    Returns:
        The state; missing keys take their defaults.

    Raises:
        ConfigError: a value does not parse or is out of range; the message
            names the parameter and says what is allowed.
    """
    params = {str(k): _last(v) for k, v in params.items()}
    config = RunConfig.from_query({k: v for k, v in params.items() if k not in _EXTRA_KEYS})
    page = params.get("page", "home") or "home"
    hide_raw = params.get("hide", "")
    hidden = frozenset(h.strip() for h in hide_raw.split(",") if h.strip())
    present_raw = params.get("present", "0").strip().lower()
    if present_raw not in ("0", "1", "true", "false", ""):
        raise ConfigError(f"present: must be 1 or 0, got {present_raw!r}")
    lesson = params.get("lesson") or None
    pace = params.get("pace", "").strip().lower() or None
    return ShareState(config=config, page=page, hidden=hidden,
                      presentation=present_raw in ("1", "true"), lesson=lesson, pace=pace)


#: Longest value of one link parameter (a CSV's 500 feature names fit well below it).
MAX_PARAM_CHARS = 16_384
#: Most characters of all of a link's parameters together.
MAX_QUERY_CHARS = 65_536
_SHOWN = 120  # characters of a refused value quoted in the message


def _check_size(params: Mapping[str, Any]) -> None:
    """Refuse a link whose parameters are too long to be ours, before any of them is parsed."""
    total = 0
    for key, raw in params.items():
        for value in (raw if isinstance(raw, (list, tuple)) else [raw]):
            n = len(str(key)) + len(str(value))
            total += n
            if n > MAX_PARAM_CHARS:
                raise ConfigError(f"{str(key)[:40]}: the value is {n:,} characters long; at most "
                                  f"{MAX_PARAM_CHARS:,} are allowed")
    if total > MAX_QUERY_CHARS:
        raise ConfigError(f"the link is {total:,} characters long; at most {MAX_QUERY_CHARS:,} are allowed")


def apply_query(params: Mapping[str, Any]) -> tuple[ShareState, str | None]:
    """Like :func:`from_query`, but never raises: for a page opening a link.

    Any failure is caught, not only :class:`ConfigError`: JSON nested thousands deep
    (``RecursionError``), absurd sizes (``MemoryError``, ``OverflowError``), a value
    of the wrong type.  Parameters longer than :data:`MAX_PARAM_CHARS` (or all of them
    together longer than :data:`MAX_QUERY_CHARS`) are refused before parsing.

    Returns:
        ``(state, None)`` when the link is valid, else ``(default state, message)``
        where the message explains what was wrong, ready for ``st.warning`` (escape it:
        it quotes the link's text).
    """
    try:
        _check_size(params)
        return from_query(params), None
    except ConfigError as exc:
        why = str(exc)
        why = why if len(why) <= 2 * _SHOWN else why[:2 * _SHOWN] + "…"
    except RecursionError:
        why = "a value is nested too deeply to be read"
    except MemoryError:
        why = "a value is too large to be read"
    except Exception as exc:  # noqa: BLE001 - a link comes from anyone: it must never break the page
        why = f"a value could not be read ({type(exc).__name__})"
    return ShareState(), f"This link has a setting that could not be used ({why}); defaults were loaded instead."


def make_link(base_url: str, state: ShareState, *, only_changed: bool = True) -> str:
    """The full shareable URL: ``{base_url}/{page}?{query}``.

    The page goes in the path (so Streamlit's router opens it) *and* in the
    query (so the link survives a router that drops the path).

    Args:
        base_url: the app's address, e.g. ``"http://localhost:8501"`` (a trailing
            slash or page path is removed).
        state: what the link restores.
        only_changed: leave default config values out (shorter links).
    """
    base = base_url.split("?", 1)[0].rstrip("/")
    for page in PAGES:
        if base.endswith("/" + page):
            base = base[: -len(page) - 1]
            break
    path = "" if state.page == "home" else "/" + state.page
    return f"{base}{path}?{urlencode(to_query(state, only_changed=only_changed))}"


def visible(control_name: str, state: ShareState | None) -> bool:
    """Whether the UI should show ``control_name`` (e.g. ``"optim.lr"``) under ``state``.

    A control is hidden when its own name or its section is in ``state.hidden``.
    With ``state=None`` everything is visible.
    """
    if state is None or not state.hidden:
        return True
    section = control_name.split(".", 1)[0]
    return control_name not in state.hidden and section not in state.hidden


def sync_query_params(query_params: MutableMapping[str, Any], state: ShareState) -> bool:
    """Make ``query_params`` (pass ``st.query_params``) encode exactly ``state``.

    Only writes when something changed, so calling it on every rerun is cheap
    and does not add browser-history entries.  Parameters that are not ours
    are kept.

    Returns:
        True when the parameters were changed.
    """
    wanted = to_query(state)
    ours = set(CONTROLS) | set(_EXTRA_KEYS)
    current = {k: _last(v) for k, v in query_params.items()}
    stale = [k for k in current if k in ours and k not in wanted]
    changed = [k for k, v in wanted.items() if current.get(k) != v]
    for k in stale:
        del query_params[k]
    for k in changed:
        query_params[k] = wanted[k]
    return bool(stale or changed)
