"""Deep Ensemble Lab: the dashboard's entry point (router + shared chrome).

Run with ``streamlit run app.py``.  Each page is a short script in ``pages/``;
the shared pieces live in the ``dashboard`` package.  To add a page, add a row to ``PAGES``.
"""

from pathlib import Path

import streamlit as st

from dashboard import chrome, identity, links, live, pool, routing, saved, state, theme
from dashboard.st_compat import history, queue_fix, startup

startup.skip_repl_check()  # once per process: see dashboard/st_compat/startup.py
queue_fix.install()  # once per server: see dashboard/st_compat/queue_fix.py (pages froze under a classroom's load)

ROOT = Path(__file__).parent

#: (script, title, icon, url path) of every page, in menu order; the first is the home page.
PAGES = [
    ("pages/home.py", "Home", ":material/home:", "home"),
    ("pages/data.py", "Data", ":material/dataset:", "data"),
    ("pages/train.py", "Train", ":material/model_training:", "train"),
    ("pages/uncertainty.py", "Uncertainty", ":material/ssid_chart:", "uncertainty"),
    ("pages/lessons.py", "Lessons", ":material/school:", "lessons"),
    ("pages/compare.py", "Compare", ":material/compare_arrows:", "compare"),
    ("pages/runs.py", "Runs", ":material/history:", "runs"),
    ("pages/sweep.py", "Sweep", ":material/tune:", "sweep"),
]

state.init_state()
links.open_link()  # once per session: a shared link restores its setup (and a classroom link hides controls)
saved.open_result_link()  # ?result=<token>: a shared trained run, read-only, becomes the current run
# The tab's icon is a file in the repo: a ":material/...:" icon is fetched from fonts.gstatic.com, which
# an offline classroom cannot reach (and which would tell Google about every visit).
# The menu starts open on a laptop and closed on a phone ("auto"), where it would cover the page; a
# projector gets the page alone.
st.set_page_config(page_title="Deep Ensemble Lab", page_icon=str(ROOT / "dashboard" / "assets" / "icon.png"), layout="wide",
                   initial_sidebar_state="collapsed" if links.presenting() else "auto")
history.install([url for *_, url in PAGES])  # one browser-history entry per page visit (before the URL is written)
theme.apply(links.presenting())
st.html(live.LIVE_CSS)
identity.keep()  # a browser that came without its identity cookie gets it
page = st.navigation([
    st.Page(script, title=title, icon=icon, url_path=url, default=(i == 0))
    for i, (script, title, icon, url) in enumerate(PAGES)
])
st.session_state["ui_page"] = page.url_path or "home"
goto = st.session_state.pop("ui_share_goto", None)
if goto not in (None, "home") and st.session_state["ui_page"] == "home":  # a link whose path was dropped
    st.switch_page(next(script for script, _, _, url in PAGES if url == goto))
chrome.sidebar()
links.link_warning()
links.sync_link(st.session_state["ui_page"])  # the URL follows page switches at once
routing.run_page(page)
links.finish_page()  # after the page, so the URL and the Share box carry what the page just set
pool.prewarm()  # once per server, in the background: warm training workers before the first Train click
