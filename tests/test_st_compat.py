"""dashboard/st_compat/: every Streamlit internal the dashboard uses, one test each.

Each use is checked on the installed Streamlit (the internal is still there and does its job) and
outside the supported range (it falls back to public behaviour).  The first two tests fail loudly when
the installed or pinned Streamlit leaves ``st_compat.SUPPORTED``: re-verify each internal, then widen it.
"""

from __future__ import annotations

import pytest
import streamlit
from packaging.version import Version
from streamlit.proto.ForwardMsg_pb2 import ForwardMsg
from streamlit.runtime import forward_msg_queue
from streamlit.runtime.forward_msg_cache import populate_hash_if_needed
from streamlit.runtime.scriptrunner_utils import script_run_context

import dashboard.st_compat as compat
from dashboard.st_compat import push, routing, session, startup
from dashboard.st_compat import queue_fix as streamlit_fixes


@pytest.fixture
def unsupported(monkeypatch):
    """Pretend the installed Streamlit is outside the supported range."""
    monkeypatch.setattr(compat, "INSTALLED", Version("99.0.0"))


def test_the_installed_streamlit_is_in_the_supported_range() -> None:
    assert compat.INSTALLED in compat.SUPPORTED, (
        f"Streamlit {streamlit.__version__} is outside st_compat.SUPPORTED ({compat.SUPPORTED}): every internal "
        "in dashboard/st_compat/ now falls back to public behaviour. Re-verify each, then widen the range.")


def test_the_pinned_streamlit_is_in_the_supported_range() -> None:
    pinned = compat.pinned_streamlit()
    assert pinned is not None, "requirements.txt must pin streamlit with =="
    assert pinned in compat.SUPPORTED and pinned == compat.INSTALLED


def test_routing_leaves_the_pages_directory_mode_once(monkeypatch) -> None:
    from streamlit.runtime.pages_manager import PagesManager

    monkeypatch.setattr(PagesManager, "uses_pages_directory", True)
    assert routing.in_pages_directory_mode()
    assert routing.leave_pages_directory_mode() is True and PagesManager.uses_pages_directory is False
    assert routing.leave_pages_directory_mode() is False  # already left: no rerun needed


def test_routing_outside_the_range_leaves_streamlit_alone(monkeypatch, unsupported) -> None:
    from streamlit.runtime.pages_manager import PagesManager

    monkeypatch.setattr(PagesManager, "uses_pages_directory", True)
    assert routing.leave_pages_directory_mode() is False and PagesManager.uses_pages_directory is True


def _session_script() -> None:
    import streamlit as st

    from dashboard.st_compat import session

    ctx, fragment = session.script_run()
    st.session_state["sid"], st.session_state["fragment"] = session.session_id(), fragment


def test_session_knows_its_script_run_and_says_unknown_without_a_server() -> None:
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_function(_session_script).run()
    assert isinstance(at.session_state["sid"], str) and at.session_state["sid"]
    assert at.session_state["fragment"] is None  # a full run, not a fragment's
    assert session.script_run() == (None, None)  # outside a script thread
    assert session.is_connected("s1") is None  # no server runtime: unknown, not "gone"


def test_session_outside_the_range_knows_nothing(unsupported) -> None:
    assert session.script_run() == (None, None) and session.is_connected("s") is None
    assert session.connected_checker() is None


def test_push_outside_the_range_sends_nothing(unsupported) -> None:
    assert push.retime_fragment(2.0) is False and push.push_rerun("s1") is False


def test_startup_marks_the_repl_check_done(monkeypatch) -> None:
    import streamlit.delta_generator as dg

    monkeypatch.setattr(dg, "_use_warning_has_been_displayed", False)
    assert startup.skip_repl_check() is True and dg._use_warning_has_been_displayed is True


def test_startup_outside_the_range_changes_nothing(monkeypatch, unsupported) -> None:
    import streamlit.delta_generator as dg

    monkeypatch.setattr(dg, "_use_warning_has_been_displayed", False)
    assert startup.skip_repl_check() is False and dg._use_warning_has_been_displayed is False


# ------------------------------------------------------------------ queue_fix, on the queue itself
def _delta(path: list[int], fragment: str, body: str) -> ForwardMsg:
    """A new-element delta big enough for Streamlit to cache it (>= 10 kB), as the script sends it."""
    msg = ForwardMsg()
    msg.delta.new_element.markdown.body = body * 12_000
    if fragment:
        msg.delta.fragment_id = fragment
    msg.metadata.delta_path[:] = path
    populate_hash_if_needed(msg)
    assert msg.metadata.cacheable
    return msg


def _queue_of_a_busy_server() -> tuple[forward_msg_queue.ForwardMsgQueue, dict[str, ForwardMsg]]:
    """A full run's messages not yet sent when a fragment run starts: deltas and references, in and out of fragments."""
    assert streamlit_fixes.install(), f"the queue fix does not install on Streamlit {streamlit.__version__}"
    msgs = {
        "outside": script_run_context.create_reference_msg(_delta([0, 0], "", "a")),
        "live_block": _delta([0, 1], "live", "b"),
        "live_ref": script_run_context.create_reference_msg(_delta([0, 3], "live", "c")),
        "other_ref": script_run_context.create_reference_msg(_delta([1, 4], "sidebar", "d")),
    }
    finished = ForwardMsg()
    finished.script_finished = ForwardMsg.FINISHED_SUCCESSFULLY
    msgs["finished"] = finished
    queue = forward_msg_queue.ForwardMsgQueue()
    for msg in msgs.values():
        queue.enqueue(msg)
    assert [m.WhichOneof("type") for m in (msgs["outside"], msgs["live_ref"], msgs["other_ref"])] == ["ref_hash"] * 3
    return queue, msgs


def _left(queue: forward_msg_queue.ForwardMsgQueue, msgs: dict[str, ForwardMsg]) -> list[str]:
    return [name for name, msg in msgs.items() if any(m is msg for m in queue._queue)]


def test_streamlit_keeps_a_fragments_reference_message_when_that_fragment_reruns() -> None:
    """The bug itself, with Streamlit's own clear: the fragment's delta is dropped, its reference kept.

    If this fails, Streamlit fixed it: drop dashboard/st_compat/queue_fix.py.
    """
    queue, msgs = _queue_of_a_busy_server()
    streamlit_fixes.originals["clear"](queue, retain_lifecycle_msgs=True, fragment_ids_this_run=["live"])
    assert _left(queue, msgs) == ["outside", "live_ref", "other_ref", "finished"]


def test_a_fragment_run_drops_that_fragments_reference_messages_too() -> None:
    queue, msgs = _queue_of_a_busy_server()
    queue.clear(retain_lifecycle_msgs=True, fragment_ids_this_run=["live"])
    assert _left(queue, msgs) == ["outside", "other_ref", "finished"]  # other fragments and the page: kept


def test_a_full_run_still_drops_every_unsent_delta() -> None:
    queue, msgs = _queue_of_a_busy_server()
    queue.clear(retain_lifecycle_msgs=True)
    assert _left(queue, msgs) == ["finished"]


def test_install_is_idempotent_and_keeps_streamlits_reference_messages() -> None:
    assert streamlit_fixes.install() and streamlit_fixes.install()
    msg = _delta([0, 2], "live", "e")
    ref = script_run_context.create_reference_msg(msg)
    assert ref.ref_hash == msg.hash and list(ref.metadata.delta_path) == [0, 2]
    assert streamlit_fixes.fragment_of_reference(ref) == "live"
    assert streamlit_fixes.fragment_of_reference(msg) is None  # not a reference
