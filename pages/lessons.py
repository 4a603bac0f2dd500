"""Lessons: guided experiments; each sets up data + config in one click, trains, shows, then asks."""

from __future__ import annotations

import logging

import streamlit as st

from dashboard import charts, chrome, live, pool, routing, saved, sequences, state
from ensemble_core.claims import ClaimResult, check_lesson
from ensemble_core.data import DataError, describe
from ensemble_core.lessons import LESSONS, Lesson, get_lesson, lesson_figures, lesson_ids
from ensemble_core.race import RunSequence, describe_budget, losses_figure, race_table
from ensemble_core.report import html_report

routing.route_through_app()  # a deep link on a fresh server goes through app.py

log = logging.getLogger(__name__)
ss = st.session_state
SEQ, LID = "lessons_seq", "lessons_seq_id"  # the lesson run in progress / last finished, and its lesson id
KIND = "lesson"  # its kind in the browser's registry of live sequences (dashboard/sequences.py)
NUMBER = {lid: i + 1 for i, lid in enumerate(lesson_ids())}


def owner() -> str:
    """Lesson runs use their own pool owner, so they do not take the Train page's slot."""
    return pool.owner("lessons")


def pick() -> Lesson:
    """The lesson picker, a view of ``settings().lesson`` (a link may set it)."""
    s, ids = state.settings(), lesson_ids()
    if s.lesson not in ids:
        s.lesson = ids[0]
    state.bind(st.selectbox, "lesson", "Lesson", ids, key="lessons_pick",
               format_func=lambda i: f"{NUMBER[i]}. {get_lesson(i).title}", label_visibility="collapsed")
    return get_lesson(s.lesson)


def start(lesson: Lesson) -> bool:
    """One click: make the lesson's data and main config current, then train every panel in turn.

    Returns whether it started (``False``: the lesson's data could not be made, an error says why).
    """
    s = state.settings()
    try:
        dataset = state.load_data(lesson.data_spec)
    except DataError as exc:
        st.error(f"The lesson's data could not be made: {chrome.esc(exc)}", icon=":material/error:")
        return False
    s.config = lesson.panels[-1].config.replace(data=lesson.data_spec)
    configs = lesson.configs(0.25 if s.lessons_quick else 1.0)
    old = ss.get(SEQ)
    if old is not None and not old.done:
        old.stop(pool.pool(), owner())
    seq = RunSequence(configs, dataset, lesson.labels)
    seq.submit_options = {"pace": s.effective_pace}  # the pace control below "Run this lesson"
    ss[SEQ], ss[LID] = seq, lesson.id
    # every tab and reload of this browser follows it (a lesson started in another tab is stopped)
    sequences.start(KIND, seq, lambda other: other.stop(pool.pool(), owner()), lesson=lesson.id,
                    data=dataset.name)
    seq.step(pool.pool(), owner())
    return True


def reattach() -> None:
    """Take this browser's registered lesson (a reload, another tab, a newer one started elsewhere).

    A running lesson also becomes the picked one, so its live view shows at once; a finished one
    shows when its lesson is picked (as in the tab that ran it).
    """
    entry = sequences.adopt(KIND)
    if entry is None:
        return
    ss[SEQ], ss[LID] = entry.seq, entry.meta["lesson"]
    ss.pop("lessons_claims", None)
    if not entry.seq.done and entry.meta["lesson"] in NUMBER:
        state.settings().lesson = entry.meta["lesson"]


def progress(seq: RunSequence) -> None:
    sequences.current(KIND)  # seen: a lesson some tab still watches is kept re-attachable
    i, n = seq.index, len(seq.configs)
    job = seq.job(pool.pool(), owner())
    p = job.progress() if job is not None else None
    inner = p.fraction if p is not None else 0.0
    text = f"Training {i + 1} of {n}: **{seq.labels[min(i, n - 1)]}**"
    if job is not None:
        text += f" · {chrome.epoch_text(job)}"
    st.progress(min(1.0, (i + inner) / n), text=text)
    charts.show_in_place(losses_figure(seq.events(pool.pool(), owner()), seq.configs, seq.labels), "lessons_live")


def claim_results(lesson: Lesson, seq: RunSequence | None) -> list[ClaimResult | None] | None:
    """The lesson's claims checked on the finished run (once per run), or ``None`` before one."""
    if seq is None or ss.get(LID) != lesson.id or not seq.done or not seq.complete:
        return None
    cached = ss.get("lessons_claims")
    if cached is None or cached[0] != id(seq):
        try:
            cached = (id(seq), check_lesson(lesson, seq.runs, seq.dataset))
        except Exception:  # noqa: BLE001 - the lines are still shown, unchecked
            log.exception("lesson %s claims failed", lesson.id)
            cached = (id(seq), None)
        ss["lessons_claims"] = cached
    return cached[1]


def look_for(lesson: Lesson, checked: list[ClaimResult | None] | None) -> None:
    """The "what to look for" lines; after a run, each with ✓ / ✗ and its number from this run."""
    st.markdown("##### What to look for")
    if checked is None:
        st.markdown("\n".join(f"{i}. {item}" for i, item in enumerate(lesson.look_for, 1)))
        st.caption("After the run, each line is checked against your run's own numbers: ✓ holds, ✗ does not.")
        return
    lines = []
    for i, (item, res) in enumerate(zip(lesson.look_for, checked), 1):
        if res is None:
            lines.append(f"{i}. {item}")
        else:
            mark = ":green[**✓**]" if res.holds else ":red[**✗**]"
            number = res.text.replace("[", "(").replace("]", ")")  # a bracket would end the colour markup
            lines.append(f"{i}. {mark} {item}  \n   :gray[{number}]")
    st.markdown("\n".join(lines))
    done = [r for r in checked if r is not None]
    ok = sum(r.holds for r in done)
    if done:
        tail = ("" if ok == len(done) else " A ✗ means this run does not show what the line says - a quick run "
                "trains less; a full run at the lesson's settings is checked for seeds 0-2 in the tests.")
        st.caption(f"Checked on your run: {ok} of {len(done)} statements hold.{tail}")


def results(lesson: Lesson, seq: RunSequence) -> None:
    saved.save_sequence(seq, "lesson")  # once per entry: every panel goes to the Runs page
    for label, run, err in zip(seq.labels, seq.runs, seq.errors):
        if run is None and err:
            st.warning(f"**{label}:** {chrome.esc(err)}", icon=":material/warning:")
    if not seq.complete:
        st.info("Some panels did not train, so the lesson's figures cannot be drawn. Press **Run** again.",
                icon=":material/info:")
        return
    if ss.get("lessons_published") != id(seq):  # the main panel's run becomes the app's latest run
        ss["run"], ss["run_dataset"], ss["lessons_published"] = seq.runs[-1], seq.dataset, id(seq)
    try:
        figures = lesson_figures(lesson, seq.runs, seq.dataset)
        table = race_table(seq.runs, seq.dataset, seq.labels)
    except Exception:  # noqa: BLE001 - a lesson must never show a traceback
        log.exception("lesson %s figures failed", lesson.id)
        st.error("The figures for this lesson could not be drawn. Press **Run** to train again.",
                 icon=":material/error:")
        return
    for key, caption, fig in figures:
        st.markdown(f"**{caption}**")
        charts.show(fig, f"lessons_{key}")
    with st.expander("Training curves"):
        charts.show(losses_figure(seq.events(pool.pool(), owner()), seq.configs, seq.labels), "lessons_losses")
    st.markdown("**Scores on the test set** (NLL: lower is better)")
    chrome.results_table(table)
    st.download_button("HTML report of the main run", data=lambda: html_report(seq.runs[-1], seq.dataset),
                       file_name=f"lesson-{lesson.id}-report.html", mime="text/html", icon=":material/download:",
                       key="lessons_report", on_click="ignore", help="One self-contained file (interactive charts) that opens offline.")


state.init_state()  # idempotent; covers a first visit that lands here before the router has run
st.title("Lessons")
st.caption(f"{len(LESSONS)} guided experiments. Each sets up the data and the ensemble in one click, trains it, tells you what "
           "to look for and ends with a question.")
reattach()
lesson = pick()
st.header(f"{NUMBER[lesson.id]}. {lesson.title}", divider="blue")
st.markdown(lesson.goal)
left, right = st.columns([3, 2], gap="large")
with left:
    look_for(lesson, claim_results(lesson, ss.get(SEQ)))
with right, st.container(border=True):
    st.markdown(f"##### The setup\n:material/dataset: {chrome.esc(describe(lesson.data_spec))}")
    st.markdown("\n".join(f"- **{p.label}** · {describe_budget(p.config)}" for p in lesson.panels))
    if lesson.source:
        st.caption(f"From: {lesson.source}")
    running = ss.get(SEQ) is not None and not ss[SEQ].done
    here = running and ss.get(LID) == lesson.id  # a second click would restart it: Stop it first
    clicked = st.button("Run this lesson", type="primary", icon=":material/play_arrow:", key="lessons_run",
                        width="stretch", disabled=here,
                        help="It is running: Stop it below to run it again." if here else
                        "Starts this lesson and stops the lesson that is running." if running else None)
    state.bind(st.toggle, "lessons_quick", "Quick run", key="lessons_quick",
               help="A quarter of the epochs: rougher, but 4× faster.")
    live.pace_control("lessons_pace")
if clicked and start(lesson):
    st.rerun()  # the page again, as it is while the lesson runs: its button disabled, its live view below

seq = ss.get(SEQ)
if seq is None or ss.get(LID) != lesson.id:
    st.info("Press **Run this lesson** to train it. Training happens on the server; you can watch it live.",
            icon=":material/school:")
elif not seq.done:
    sequences.reattached_caption(KIND, "lesson")
    live.live_sequence(SEQ, owner(), progress, "Stop", "lessons_stop")
else:
    sequences.reattached_caption(KIND, "lesson")
    results(lesson, seq)

st.subheader(":material/help: Question")
st.markdown(f"**{lesson.question}**")
with st.expander("Reveal the explanation"):
    st.markdown(lesson.answer)
if seq is not None and ss.get(LID) == lesson.id and seq.done:
    nxt = lesson_ids()[NUMBER[lesson.id] % len(LESSONS)]
    st.caption(f"Next: lesson {NUMBER[nxt]}, *{get_lesson(nxt).title}* (pick it above). "
               "The main run is now the app's latest run:")
    chrome.link("pages/uncertainty.py", "Explore it on the Uncertainty page", ":material/ssid_chart:")
