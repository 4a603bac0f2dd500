"""The Runs page's pieces: its view state (filters, sort, page), the table's rows, and the side-by-side comparison.

Data in, tables and figures out; the page (``pages/runs.py``) draws them.  No store writes here.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, fields
from typing import Any

import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from dashboard.saved import when

#: Rows of the table drawn at once (the rest are on other pages of it): 1,000 stored runs stay quick.
PAGE_ROWS = 50
#: Most runs compared side by side.
COMPARE_MAX = 4
#: The table's sort keys: label -> (record attribute, missing values sort last).
SORTS = {"When": "created", "Test NLL": "test_nll", "RMSE": "test_rmse", "Accuracy": "test_accuracy",
         "Seconds": "seconds", "Members": "members", "Epochs": "epochs", "Label": "label", "Data": "dataset",
         "Strategy": "strategy"}
STATUS = {"done": "finished", "stopped": "stopped", "failed": "failed"}


@dataclass
class RunsView:
    """The Runs page's own state (a view setting, not part of any run's config or link).

    Attributes:
        search: text to find in labels, data names and strategies.
        dataset, strategy: show only these (``""``: all).
        sort: a key of :data:`SORTS`; ``descending`` its direction.
        page: 1-based page of the table.
    """

    search: str = ""
    dataset: str = ""
    strategy: str = ""
    sort: str = "When"
    descending: bool = True
    page: int = 1


def view() -> RunsView:
    """This session's :class:`RunsView` (created on first use)."""
    ss = st.session_state
    if not isinstance(ss.get("runs_view"), RunsView):
        ss["runs_view"] = RunsView()
    return ss["runs_view"]


def _commit(key: str, field: str) -> None:
    v = view()
    setattr(v, field, st.session_state.get(key))
    if field != "page":
        v.page = 1  # a new filter or sort starts at the first page


def control(widget: Any, field: str, label: str, *args: Any, key: str, **kwargs: Any) -> Any:
    """Draw ``widget`` as a view of the :class:`RunsView` field ``field`` (its value is the model's on every run)."""
    assert field in {f.name for f in fields(RunsView)}
    st.session_state[key] = getattr(view(), field)
    widget(label, *args, key=key, on_change=_commit, args=(key, field), **kwargs)
    return getattr(view(), field)


def sort_records(records: Sequence[Any], sort: str, descending: bool) -> list[Any]:
    """``records`` sorted by the :data:`SORTS` key ``sort``; runs without that value (``None``) always last."""
    attr = SORTS.get(sort, "created")
    have = [r for r in records if getattr(r, attr) is not None and not _nan(getattr(r, attr))]
    rest = [r for r in records if r not in have]
    key = (lambda r: str(getattr(r, attr)).lower()) if attr in ("label", "dataset", "strategy") else \
        (lambda r: getattr(r, attr))
    return sorted(have, key=key, reverse=descending) + rest


def _nan(v: Any) -> bool:
    return isinstance(v, float) and math.isnan(v)


def name(record: Any) -> str:
    """A run as people name it, unique (pickers match options by their text): label or when · strategy · size · data, and a short id."""
    star = "★ " if record.starred else ""
    what = record.label or (f"{when(record.created)} · {record.strategy} · {record.members}×{record.epochs} epochs"
                            f" · {record.dataset}")
    return f"{star}{what} · #{record.run_id[:5]}"


def short_name(record: Any, i: int) -> str:
    """A compared run's name in tables and legends: ``#1 bootstrap 3×200 (14:03)`` or its label."""
    what = record.label[:40] or f"{record.strategy} {record.members}×{record.epochs}"
    return f"#{i + 1} {what} ({when(record.created)[11:]})"


def status(record: Any) -> str:
    """The run's status as the table says it (a damaged run says so first)."""
    return "damaged" if record.damaged else STATUS.get(record.status, record.status)


def table(records: Sequence[Any]) -> pd.DataFrame:
    """The table's rows: when, data, strategy, members, epochs, test NLL, RMSE, accuracy, seconds, status, label."""
    return pd.DataFrame([{
        "★": "★" if r.starred else "", "when": when(r.created), "data": r.dataset, "strategy": r.strategy,
        "members": r.members, "epochs": r.epochs, "test NLL": r.test_nll, "RMSE": r.test_rmse,
        "accuracy": r.test_accuracy, "seconds": r.seconds, "status": status(r), "label": r.label,
    } for r in records], columns=["★", "when", "data", "strategy", "members", "epochs", "test NLL", "RMSE",
                                  "accuracy", "seconds", "status", "label"]).astype(
        {"test NLL": float, "RMSE": float, "accuracy": float, "seconds": float})


def shown_table(records: Sequence[Any]) -> pd.DataFrame:
    """:func:`table` without the metric columns that none of ``records`` has (no regression run: no RMSE)."""
    rows = table(records)
    return rows.drop(columns=[c for c in ("RMSE", "accuracy") if rows[c].isna().all()])


#: Compared columns: name -> True when lower is better.
COMPARED = {"test NLL": True, "RMSE": True, "accuracy": False, "seconds": True}


def compare_table(records: Sequence[Any], labels: Sequence[str]) -> tuple[pd.DataFrame, dict[str, str]]:
    """The comparison's metrics, one row per run, and the best run's label per column (lower NLL/RMSE/seconds,
    higher accuracy; columns no run has are left out)."""
    rows = table(records).drop(columns=["★", "status"])
    rows.insert(0, "run", list(labels))
    best: dict[str, str] = {}
    for col, lower in COMPARED.items():
        values = pd.to_numeric(rows[col], errors="coerce")
        if values.notna().sum() == 0:
            rows = rows.drop(columns=[col])
            continue
        best[col] = rows.loc[values.idxmin() if lower else values.idxmax(), "run"]
    return rows, best


def style_best(rows: pd.DataFrame) -> Any:
    """``rows`` with each compared column's best value marked (bold, green background)."""
    def mark(col: pd.Series) -> list[str]:
        values = pd.to_numeric(col, errors="coerce")
        target = values.min() if COMPARED[col.name] else values.max()
        return ["font-weight: 700; background-color: #d7f0dd" if v == target else "" for v in values]

    cols = [c for c in COMPARED if c in rows.columns]
    return rows.style.apply(mark, subset=cols).format("{:.4g}", subset=cols, na_rep="–")


def overlaid_validation(runs: Sequence[Any], labels: Sequence[str], task: str) -> go.Figure:
    """Every run's validation NLL and RMSE (regression) or accuracy per epoch, overlaid, one colour per run."""
    from ensemble_core import viz

    n = max((r.epochs_done for r in runs), default=1) or 1
    fig = viz.val_figure([], n, task, height=360)
    base = list(fig.data)
    fig.data = []
    for i, (run, label) in enumerate(zip(runs, labels)):
        color = viz.PALETTE[i % len(viz.PALETTE)]
        one = viz.val_figure(list(run.history), n, task, height=360)
        for j, trace in enumerate(one.data):
            trace.update(name=label, legendgroup=label, showlegend=j == 0, line=dict(color=color, width=2.5),
                         marker=dict(color=color, size=5), mode="lines")
            fig.add_trace(trace)
    del base
    return fig.update_layout(showlegend=True, legend=dict(orientation="h", y=-0.25))


def prediction_figures(runs: Sequence[Any], dataset: Any, labels: Sequence[str]) -> list[tuple[str, str, Any]]:
    """Bands (1-D regression) or class maps (2-D classification) of the runs on shared axes (``race_figures``)."""
    from ensemble_core.race import race_figures

    return race_figures(runs, dataset, labels)
