"""Bad input through the real UI (issue 5 §1-2): each bad CSV uploaded on the Data page gets a
specific human message, never a traceback or Streamlit's generic error; user text is shown escaped;
a diverging learning rate on the Train page is reported as diverged members."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest

from ensemble_core.config import DataSpec
from ensemble_core.data import DataError, load_csv, parse_csv

from .harness import AppServer, browser_page, page_state, run_async, wait_idle

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

TIMEOUT = 120
GENERIC = "This app has encountered an error"


def _rows(header: str, rows: list[str]) -> bytes:
    return ("\n".join([header, *rows]) + "\n").encode()


BAD_FILES = {
    "random.csv": np.random.default_rng(5).integers(0, 256, 3000, dtype=np.uint8).tobytes(),
    "empty.csv": b"",
    "header_only.csv": b"a,b,c\n",
    "one_column.csv": _rows("x", [str(i) for i in range(30)]),
    "constant_target.csv": _rows("x,y", [f"{i},5" for i in range(30)]),
}


def _core_message(blob: bytes) -> str:
    """What the core says about ``blob`` (the UI must show this text)."""
    try:
        parse_csv(blob)
        load_csv(blob, DataSpec(source="csv", name="f.csv"))
    except DataError as exc:
        return str(exc)
    raise AssertionError("this file should be refused by the core")


async def _upload(page, name: str, blob: bytes, mime: str = "text/csv", expect_alert: bool = True) -> dict:
    """Choose ``blob`` as the file; wait until the uploader lists it and the rerun it causes is over."""
    await page.locator("[data-testid='stFileUploaderDropzoneInput']").set_input_files(
        files=[{"name": name, "mimeType": mime, "buffer": blob}], timeout=TIMEOUT * 1000)
    await page.locator("[data-testid='stFileUploader']").filter(has_text=name).wait_for(timeout=TIMEOUT * 1000)
    deadline = asyncio.get_running_loop().time() + 30
    while True:  # bounded: the error box (or a traceback) appears once the rerun is done
        await asyncio.sleep(0.5)
        await wait_idle(page, TIMEOUT)
        st = await page_state(page)
        if not expect_alert or st["errors"] or st["exceptions"] or asyncio.get_running_loop().time() > deadline:
            return st


async def _choose_csv_source(page) -> None:
    await page.locator("button[data-variant='segmented_control']").filter(has_text="CSV").first.click(timeout=TIMEOUT * 1000)
    await asyncio.sleep(0.3)
    await wait_idle(page, TIMEOUT)


async def _bad_uploads(url: str) -> dict:
    out: dict = {}
    async with browser_page(url, "data", TIMEOUT) as page:  # one session uploads one file after another
        await _choose_csv_source(page)
        for name, blob in BAD_FILES.items():
            out[name] = await _upload(page, name, blob)
        big = b"x,y\n" + b"1,2\n" * (21 * 1024 * 1024 // 4)  # 21 MiB > maxUploadSize 20
        out["big.csv"] = await _upload(page, "big.csv", big, expect_alert=False)
        out["big.csv"]["uploader"] = await page.locator("[data-testid='stFileUploader']").inner_text()
    return out


@pytest.mark.timeout(400)
def test_bad_csv_uploads_get_specific_messages_never_a_traceback(server: AppServer) -> None:
    seen = run_async(_bad_uploads(server.url))
    for name, blob in BAD_FILES.items():
        st = seen[name]
        assert st["exceptions"] == 0, f"{name}: a traceback is shown"
        assert GENERIC not in st["main"], f"{name}: Streamlit's generic error is shown"
        want = _core_message(blob)
        shown = " ".join(st["errors"])
        assert want in shown, f"{name}: expected the message {want!r}, the page shows {shown!r}"
        assert "This file cannot be read:" in shown or "These data cannot be used:" in shown, shown
    big = seen["big.csv"]
    assert big["exceptions"] == 0 and GENERIC not in big["main"]
    assert "File must be 20.0MB or smaller" in big["uploader"], big["uploader"]


async def _html_columns(url: str) -> dict:
    dialogs: list[str] = []
    async with browser_page(url, "data", TIMEOUT) as page:
        await _choose_csv_source(page)
        page.on("dialog", lambda d: (dialogs.append(d.message), asyncio.ensure_future(d.dismiss())))
        blob = _rows("<b>x</b>,<img src=x onerror=alert(1)>,<script>alert(2)</script>",
                     [f"{i},{(i * 3) % 7},{(i * 5) % 11}.5" for i in range(40)])
        st = await _upload(page, "html.csv", blob, expect_alert=False)
        st["bold"] = await page.evaluate(
            "() => [...document.querySelectorAll(\"[data-testid='stMain'] b, [data-testid='stSidebar'] b\")]"
            ".map(e => e.innerText)")
        st["injected"] = await page.evaluate(
            "() => document.querySelectorAll(\"[data-testid='stMain'] script, img[src='x']\").length")
        st["dialogs"] = dialogs
    return st


@pytest.mark.timeout(200)
def test_column_names_with_html_are_shown_escaped(server: AppServer) -> None:
    st = run_async(_html_columns(server.url))
    assert st["exceptions"] == 0 and GENERIC not in st["main"]
    assert st["errors"] == [], st["errors"]
    assert "x" not in st["bold"], "a column name was rendered as bold HTML"
    assert st["injected"] == 0 and st["dialogs"] == []
    assert "<script>alert(2)</script>" in st["main"], "the target's name must be shown literally"


async def _diverging_lr(url: str) -> dict:
    from .harness import SessionResult, configure, nudge_slider, train_and_wait

    async with browser_page(url, "train", TIMEOUT) as page:
        await configure(page, epochs=40, timeout_s=TIMEOUT)  # leaves the Optimiser tab open
        await page.locator("[data-testid='stSelectbox']").filter(has_text="Optimiser").click()
        await page.get_by_role("option", name="SGD").click()
        await asyncio.sleep(0.3)
        await wait_idle(page, TIMEOUT)
        await nudge_slider(page, "Learning rate", 20, TIMEOUT)  # to the largest, 10
        result = SessionResult("lr10", 0)
        await train_and_wait(page, result, TIMEOUT)
        await asyncio.sleep(1.0)
        await wait_idle(page, TIMEOUT)
        st = await page_state(page)
        st["result"] = result
    return st


@pytest.mark.timeout(300)
def test_learning_rate_10_tells_the_user_members_diverged(server: AppServer) -> None:
    st = run_async(_diverging_lr(server.url))
    assert st["exceptions"] == 0 and GENERIC not in st["main"]
    assert "Learning rate\n\n10.0" in st["main"] or "10.0" in st["main"]
    assert not any("internal error" in e for e in st["errors"]), st["errors"]
    assert any("member(s) diverged and are excluded from the ensemble" in w for w in st["warnings"]), st["warnings"]
