"""The session's settings and data, and widgets bound to them.

``st.session_state["settings"]`` holds this session's :class:`~dashboard.settings.Settings`
(the one source of truth).  Besides it the session keeps its data and runs:

``csv_bytes``   the uploaded CSV's bytes, or ``None``
``dataset``     the :class:`Dataset` of ``settings().config.data`` (``dataset_spec``: the spec it was made from)
``job_id``      id of this session's latest training job
``run``         the latest finished or stopped run; ``run_dataset`` its data

:func:`bind` draws a widget as a view of one setting.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import streamlit as st

from dashboard.settings import Range, SettingError, Settings, default_config
from ensemble_core import share
from ensemble_core.config import DataSpec
from ensemble_core.data import DataError, Dataset, load_dataset

__all__ = ["settings", "config", "bind", "note", "show_notes", "init_state", "set_data", "load_data",
           "default_config", "Range"]


def settings() -> Settings:
    """This session's settings (created with the defaults on first use)."""
    ss = st.session_state
    if "settings" not in ss:
        ss["settings"] = Settings()
    return ss["settings"]


def config() -> Any:
    """This session's :class:`RunConfig` (the one that trains)."""
    return settings().config


def init_state() -> None:
    """Fill in the shared session state so that every page works on the first visit."""
    ss = st.session_state
    s = settings()
    ss.setdefault("csv_bytes", None)
    if "dataset" not in ss:
        ss["dataset"], ss["dataset_spec"] = load_dataset(s.config.data, ss["csv_bytes"]), s.config.data
    ss.setdefault("job_id", None)
    ss.setdefault("run", None)
    ss.setdefault("run_dataset", None)


def load_data(spec: DataSpec, csv_bytes: bytes | None = None) -> Dataset:
    """Load ``spec`` and make it the current data (settings, dataset and CSV together).

    Raises:
        DataError: the data cannot be used; nothing changed.
    """
    dataset = load_dataset(spec, csv_bytes)
    ss = st.session_state
    settings().set_data(spec)
    ss["csv_bytes"], ss["dataset"], ss["dataset_spec"] = csv_bytes, dataset, spec
    return dataset


def set_data(spec: DataSpec, csv_bytes: bytes | None = None) -> Dataset | None:
    """:func:`load_data` from a page's script run, then rerun so every view (the sidebar too) shows it.

    On a data problem the error is shown, the old data are kept and ``None`` is returned.
    """
    try:
        dataset = load_data(spec, csv_bytes)
    except DataError as exc:
        from dashboard.chrome import esc  # chrome imports this module

        st.error(f"**These data cannot be used:** {esc(exc)}", icon=":material/error:")
        return None
    st.rerun()
    return dataset


def note(key: str, message: str, kind: str = "error") -> None:
    """Show ``message`` next to the control ``key`` when it is next drawn (``kind``: error, info)."""
    settings().notes[key] = (kind, message)


def show_notes(key: str) -> None:
    """Draw (once) the message left for the control ``key``, right where the control is."""
    kind, message = settings().notes.pop(key, (None, None))
    if message is None:
        return
    from dashboard.chrome import esc

    if kind == "info":
        st.info(esc(message), icon=":material/info:")
    else:
        st.error(esc(message), icon=":material/block:")


def _commit(key: str, path: str, rng: Range | None, label: str, convert: Callable[[Any], Any] | None,
            after: Callable[[], None] | None) -> None:
    """A bound widget's ``on_change``: validate its new value into the settings, or refuse it with a note."""
    s, value = settings(), st.session_state.get(key)
    try:
        if convert is not None:
            value = convert(value)
        if rng is not None:
            value = rng.check(label, value)
        adjusted = s.set(path, value)
    except SettingError as exc:
        why = str(exc)
        if why.startswith(path + ": "):  # the config names the field; the page names the control
            why = f"{label}: {why[len(path) + 2:]}"
        note(key, f"{why.rstrip('.')}. Kept {_shown(s.get(path))}.")
        return
    if adjusted:
        changed = " and ".join(f"{_LABELS.get(p, p)} to {_shown(s.get(p))}" for p in adjusted)
        note(key, f"To keep the settings valid, this also set {changed}.", "info")
    if after is not None:
        after()


#: Names of the settings that a change can adjust (see :meth:`Settings.set`), as the page labels them.
_LABELS = {"optim.schedule": "the schedule", "optim.epochs": "the epochs", "data.features": "the feature columns"}


def _shown(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, tuple):
        return ", ".join(map(str, value)) or "none"
    return str(value)


def bind(widget: Callable[..., Any], path: str, label: str, *args: Any, key: str, rng: Range | None = None,
         convert: Callable[[Any], Any] | None = None, after: Callable[[], None] | None = None,
         to_widget: Callable[[Any], Any] | None = None, note_here: bool = True, **kwargs: Any) -> Any:
    """Draw ``widget(label, *args, **kwargs)`` as a view of the setting ``path``; returns the setting's value.

    The widget shows the model's value on every run (so a widget that was not drawn, and whose state
    Streamlit dropped, shows it again), and a change goes through :meth:`Settings.set` (after
    ``convert`` and the ``rng`` check): a refused value leaves the setting as it was and a message
    under the control (``note_here=False``: the caller shows it with :func:`show_notes`, e.g. below a
    row of narrow columns); ``after`` runs after an accepted change.  A control that a classroom link
    hides is not drawn and keeps its value.  Do not pass ``value``/``index``/``default``.
    """
    s = settings()
    if path in share.CONTROLS and not s.visible(path):
        return s.get(path)
    current = s.get(path)
    st.session_state[key] = to_widget(current) if to_widget is not None else current
    widget(label, *args, key=key, on_change=_commit, args=(key, path, rng, label, convert, after), **kwargs)
    if note_here:
        show_notes(key)
    return s.get(path)
