"""AppTest for app.py: the router registers every page, the chrome is on every page, defaults load."""

from __future__ import annotations

import pytest
from apphelpers import ROOT, open_page, sidebar_text

MY_PAGES = ["home", "data", "train"]


def test_defaults_give_every_page_data(app):
    ss = app.session_state
    assert ss["settings"].config.data.name == "cubic" and ss["settings"].config.data.n == 20
    assert ss["dataset"].task == "regression" and ss["dataset"].n_train == 20
    assert ss["dataset_spec"] == ss["settings"].config.data  # the data on screen are the settings' data
    assert ss["csv_bytes"] is None and ss["run"] is None and ss["job_id"] is None


@pytest.mark.parametrize("page", MY_PAGES + ["uncertainty"])
def test_every_page_opens_with_the_sidebar(app, page):
    if not (ROOT / "pages" / f"{page}.py").exists():
        pytest.skip(f"pages/{page}.py does not exist yet")
    open_page(app, page)
    text = sidebar_text(app)
    assert "Cubic toy · 20 points" in text
    assert "Idle" in text
    assert not app.error


def test_every_page_is_registered_and_pages_holds_only_page_scripts(app):
    registered = {str(info.get("script_path", "")).rsplit("/", 1)[-1] for info in app._registered_pages.values()}
    scripts = {p.name for p in (ROOT / "pages").glob("*.py")}
    assert registered == scripts == {f"{n}.py" for n in ("home", "data", "train", "uncertainty", "lessons", "compare", "runs", "sweep")}


def test_sidebar_follows_the_data(app):
    open_page(app, "data")
    app.selectbox(key="data_synth").set_value("moons").run()
    assert "Two moons" in sidebar_text(app)
    assert app.sidebar.caption and any("classification" in c.value for c in app.sidebar.caption)


def test_the_owner_table_forgets_sessions_that_are_gone():
    from dashboard.pool import prune_sessions

    table = {"alice": {"s1"}, "bob": {"s2"}, "carol": {"s3"}}  # browser -> its tabs' sessions
    assert prune_sessions(lambda sid: sid != "s2", table) == 1
    assert table == {"alice": {"s1"}, "carol": {"s3"}}
    assert prune_sessions(lambda sid: True, table) == 0 and len(table) == 2
    assert prune_sessions(lambda sid: False, table) == 2 and table == {}
