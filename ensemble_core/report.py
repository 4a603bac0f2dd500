"""Reports for stakeholders: a standalone HTML file, plus figure-composition helpers.

:func:`html_report` writes one self-contained HTML page for a run: the
plain-language summary (:func:`summary_facts`), the test metrics of every member
against the ensemble, the interactive figures and the configuration.  plotly.js
is **inlined** once, so the file opens offline in any browser: no
``<script src=...>``, no stylesheet links, no web fonts.  (plotly.js itself
contains URL strings in its code, e.g. for its optional map tiles; they are
never fetched for these charts.  Tests therefore check tags and attributes,
not the raw text.)

Also here, because the Lessons and Compare pages need it and it is pure
Plotly: :func:`side_by_side` (panels on shared axes).
"""

from __future__ import annotations

import datetime as _dt
import html
from collections.abc import Sequence
from typing import Any

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from .config import RunConfig

__all__ = [
    "side_by_side",
    "bands_side_by_side",
    "class_maps_of",
    "regions",
    "summary_facts",
    "mean_size_curve",
    "report_figures",
    "html_report",
]


# ------------------------------------------------------------ figure helpers
def side_by_side(figures: Sequence[go.Figure], titles: Sequence[str], *, height: int = 480,
                 y_range: tuple[float, float] | None = None, x_range: tuple[float, float] | None = None) -> go.Figure:
    """Put several single-axis figures next to each other on the **same axes**.

    Traces are copied into subplot columns; the legend shows each trace name
    once (from the first panel that has it), so a legend click toggles that
    curve in every panel.  Shapes (e.g. no-data shading) are copied too.

    Args:
        figures: figures with one x and one y axis each (e.g. ``viz.bands_figure``).
        titles: one panel title per figure.
        height: figure height in pixels.
        y_range, x_range: fix the shared ranges (default: Plotly's autorange over all panels).

    Returns:
        One figure with ``len(figures)`` columns, ``shared_yaxes=True``.
    """
    if len(figures) != len(titles) or not figures:
        raise ValueError(f"need one title per figure; got {len(figures)} figures and {len(titles)} titles")
    n = len(figures)
    out = make_subplots(rows=1, cols=n, shared_yaxes=True, subplot_titles=list(titles),
                        horizontal_spacing=0.02 if n > 2 else 0.04)
    seen: set[str] = set()
    for col, fig in enumerate(figures, start=1):
        for trace in fig.data:
            t = go.Figure(trace).data[0]  # a copy
            name = t.name or ""
            group = t.legendgroup or name
            show = t.showlegend is not False and group not in seen
            if t.showlegend is not False:
                seen.add(group)
            t.update(legendgroup=group, showlegend=show)
            out.add_trace(t, row=1, col=col)
        for shape in fig.layout.shapes or ():
            s = go.layout.Shape(shape)
            xref = "x" if col == 1 else f"x{col}"
            s.update(xref=xref if s.xref in (None, "x") else s.xref,
                     yref=(f"y{'' if col == 1 else col} domain" if s.yref and "domain" in s.yref
                           else (f"y{'' if col == 1 else col}" if s.yref in (None, "y") else s.yref)))
            out.add_shape(s)
    first = figures[0].layout
    out.update_layout(template=first.template, height=height, hovermode=first.hovermode or "x unified",
                      margin=dict(l=60, r=20, t=110, b=60),
                      legend=dict(orientation="h", x=0.0, y=1.13, yanchor="bottom"))
    if first.xaxis and first.xaxis.title and first.xaxis.title.text:
        out.update_xaxes(title_text=first.xaxis.title.text)
    if first.yaxis and first.yaxis.title and first.yaxis.title.text:
        out.update_yaxes(title_text=first.yaxis.title.text, row=1, col=1)
    if y_range is not None:
        out.update_yaxes(range=list(y_range))
    if x_range is not None:
        out.update_xaxes(range=list(x_range))
    return out


def bands_side_by_side(runs: Sequence[Any], dataset: Any, titles: Sequence[str], *,
                       members: Sequence[Sequence[int] | None] | None = None, height: int = 520,
                       sigmas: float = 2.0, show_truth: bool = False) -> go.Figure:
    """1-D regression: each run's bands (``viz.bands_figure``) as one panel, all on the same axes.

    Args:
        runs: trained runs on ``dataset`` (1 feature, regression).
        dataset: their data.
        titles: one panel title per run.
        members: optional member subset per panel (e.g. ``[[0], None]``: one member vs all).
        height: figure height.
        sigmas: band half-width in standard deviations (the paper's Figure 1 plots ±3).
        show_truth: widen the shared y-range so the true function stays in frame over the whole
            x-range (the question is whether the bands contain it beyond the data).
    """
    from . import viz
    from .predict import predict

    grid = viz.input_grid(dataset, 300)
    subsets = list(members) if members is not None else [None] * len(runs)
    figs = [viz.bands_figure(dataset, grid, predict(run, np.asarray(grid), sub), sigmas=sigmas)
            for run, sub in zip(runs, subsets)]
    lo = min(f.layout.yaxis.range[0] for f in figs)
    hi = max(f.layout.yaxis.range[1] for f in figs)
    if show_truth and getattr(dataset, "true_fn", None) is not None:
        t = np.asarray(dataset.true_fn(np.asarray(grid, dtype=np.float64)[:, 0]), dtype=np.float64)
        pad = 0.06 * float(t.max() - t.min())
        lo, hi = min(lo, float(t.min()) - pad), max(hi, float(t.max()) + pad)
    x0, x1 = figs[0].layout.xaxis.range
    return side_by_side(figs, titles, height=height, y_range=(lo, hi), x_range=(x0, x1))


def class_maps_of(run: Any, dataset: Any, *, members: Sequence[int] | None = None, n: int = 80) -> go.Figure:
    """2-D classification: ``viz.class_maps`` (class, entropy, mutual information) of one run."""
    from . import viz
    from .predict import predict

    grid = viz.input_grid(dataset, n)
    return viz.class_maps(dataset, grid, predict(run, np.asarray(grid), members), height=430)


# ------------------------------------------------------------ the numbers
def regions(dataset: Any, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Masks of inputs ``x [N, d]`` that are *near* / *far from* the training data.

    1-D: near = inside the training range and outside any ``dataset.gaps``;
    far = the rest.  More features: distance to the nearest training input in
    standardised units; near < 0.3, far > 1.0 (in between is neither).
    """
    x = np.asarray(x, dtype=np.float64).reshape(len(x), -1)
    xt = np.asarray(dataset.x_train, dtype=np.float64)
    if x.shape[1] == 1:
        v = x[:, 0]
        near = (v >= xt[:, 0].min()) & (v <= xt[:, 0].max())
        for lo, hi in getattr(dataset, "gaps", []) or []:
            near &= ~((v > lo) & (v < hi))
        return near, ~near
    zx, zt = dataset.scale_x(x), dataset.scale_x(xt)
    dmin = np.full(len(zx), np.inf)
    for i in range(0, len(zt), 256):
        d = np.sqrt(((zx[:, None, :] - zt[None, i:i + 256, :]) ** 2).sum(-1)).min(1)
        dmin = np.minimum(dmin, d)
    return dmin < 0.3, dmin > 1.0


def _ratio_text(far: float, near: float, what: str) -> str:
    """How much larger ``what`` is far from the data than near it: a measurement, not a verdict.

    Whether the uncertainty is *enough* far from the data is a separate, measured
    sentence (:func:`_far_verdict`); a ratio above 1 alone never claims it.
    """
    if near <= 0 or not np.isfinite(far / near):
        return f"{what} is {far:.3g} far from the training data and {near:.3g} near it."
    r = far / near
    if r >= 1.15:
        return f"{what} is {r:.1f}× larger far from the training data than near it."
    if r <= 1 / 1.15:
        return f"{what} is {1 / r:.1f}× *smaller* far from the training data than near it: this model does not flag unfamiliar inputs."
    return f"{what} is about the same near and far from the training data ({r:.2f}×): this model does not flag unfamiliar inputs."


def _far_verdict(share: float, what: str, where: str, n: int) -> str:
    """A sentence on how often the uncertainty band holds ``what`` far from the data, and what that means.

    ``share`` is the measured fraction (0-1) of ``n`` far-from-the-data inputs whose
    truth lies inside the ensemble's ±2σ band.  At least 90 %: the uncertainty
    flags where the model has not seen data; 50-90 %: only partly; below 50 %: it is
    overconfident there.
    """
    pct = f"**{share * 100:.0f}%**"
    head = f"Far from the training data its ±2σ band contains {what} on {pct} of {where} ({n})"
    if share >= 0.9:
        return f"{head}: there, its uncertainty is wide enough to flag where it has not seen data."
    if share >= 0.5:
        return (f"{head}: it flags unfamiliar inputs only partly - the rest of the time it is confidently wrong "
                "there.")
    return f"{head}: it is overconfident away from the data, even if its uncertainty grows there."


def _far_coverage(run: Any, dataset: Any, grid: np.ndarray, far: np.ndarray) -> str | None:
    """The measured far-from-the-data verdict for a regression run, or ``None`` if nothing can be measured.

    1-D synthetic data: the true function on the far part of the plotting grid.
    Otherwise: the test (else validation) targets of the inputs far from the training data.
    """
    from .predict import predict

    if run.task != "regression":
        return None
    if dataset.n_features == 1 and getattr(dataset, "true_fn", None) is not None and far.any():
        xg = grid[far]
        p = predict(run, xg)
        truth = np.asarray(dataset.true_fn(xg[:, 0]), dtype=np.float64)
        inside = np.abs(p.mean - truth) <= 2 * np.sqrt(np.maximum(p.total, 0))
        return _far_verdict(float(inside.mean()), "the true function", "the plotted inputs with no training data nearby",
                            int(far.sum()))
    x, y, split = _score_xy(dataset)
    if split == "training" or not len(y):
        return None
    _, far_x = regions(dataset, x)
    if far_x.sum() < 5:
        return None
    p = predict(run, x[far_x])
    inside = np.abs(p.mean - np.asarray(y, dtype=np.float64)[far_x]) <= 2 * np.sqrt(np.maximum(p.total, 0))
    return _far_verdict(float(inside.mean()), "the observed target", f"the {split} points far from it",
                        int(far_x.sum()))


def _score_xy(dataset: Any) -> tuple[np.ndarray, np.ndarray, str]:
    if len(dataset.y_test):
        return dataset.x_test, dataset.y_test, "test"
    if len(dataset.y_val):
        return dataset.x_val, dataset.y_val, "validation"
    return dataset.x_train, dataset.y_train, "training"


def summary_facts(run: Any, dataset: Any) -> list[str]:
    """Plain-language sentences, generated from the numbers, about what the uncertainty shows.

    Covers: epistemic uncertainty far from vs near the data (1-D and 2-D
    inputs, or the test set otherwise), the ensemble's score against its
    average single member, and calibration (interval coverage or ECE).

    Returns:
        A list of short Markdown sentences.
    """
    from .predict import member_metrics, predict

    facts: list[str] = []
    m = len(run.healthy)
    facts.append(f"The ensemble has **{m} member{'s' if m != 1 else ''}**, trained for {run.epochs_done} epochs "
                 f"in {run.seconds:.1f} s{' (stopped early)' if run.stopped else ''}.")
    d = dataset.n_features
    if d <= 2:
        from .viz import input_grid

        grid = np.asarray(input_grid(dataset, 200 if d == 1 else 60))
    else:
        grid = _score_xy(dataset)[0]
    near, far = regions(dataset, grid)
    pred = predict(run, grid)
    epi = np.sqrt(np.maximum(pred.epistemic, 0)) if run.task == "regression" else pred.epistemic
    label = ("Epistemic uncertainty (the members' disagreement, as a standard deviation)" if run.task == "regression"
             else "Epistemic uncertainty (mutual information between the prediction and the member)")
    if m < 2:
        facts.append("With a single member there is no disagreement to measure: epistemic uncertainty is zero "
                     "everywhere, so this model cannot tell familiar from unfamiliar inputs.")
    elif near.any() and far.any():
        facts.append(_ratio_text(float(epi[far].mean()), float(epi[near].mean()), label))
    verdict = _far_coverage(run, dataset, grid, far) if far.any() else None
    if verdict is not None:
        facts.append(verdict)
    if run.task == "regression" and run.config.loss.kind != "mse" and near.any():
        ale = float(np.sqrt(pred.aleatoric[near]).mean())
        facts.append(f"Near the data the predicted noise (aleatoric standard deviation) averages **{ale:.3g}** "
                     f"(in units of {dataset.target_name}).")
    x, y, split = _score_xy(dataset)
    rows = member_metrics(run, x, y)
    ens = rows[-1]
    singles = [r["nll"] for r in rows[:-1] if np.isfinite(r["nll"])]
    if len(singles) > 1:
        avg = float(np.mean(singles))
        better = "better" if ens["nll"] < avg else "worse"
        facts.append(f"On the {split} set the ensemble's NLL is **{ens['nll']:.3g}** against {avg:.3g} for an "
                     f"average single member ({better}; lower is better).")
    if run.task == "regression":
        cov = ens["coverage_95"] * 100
        verdict = ("well calibrated" if abs(cov - 95) <= 3 else
                   "over-confident (intervals too narrow)" if cov < 95 else "under-confident (intervals too wide)")
        facts.append(f"Its 95% intervals contain **{cov:.0f}%** of the {split} points: {verdict}.")
    else:
        facts.append(f"It classifies **{ens['accuracy'] * 100:.1f}%** of the {split} points correctly, with an "
                     f"expected calibration error (ECE) of {ens['ece']:.3f} (0 = confidence matches accuracy).")
    return facts


def mean_size_curve(run: Any, x: np.ndarray, y: np.ndarray, *, n_orders: int = 20, seed: int = 0) -> list[float]:
    """Test NLL of an ensemble of ``M`` members for ``M = 1..N``, averaged over random member orders.

    "The first ``M`` members" depends on which members happen to come first;
    averaging over ``n_orders`` random orders (fixed ``seed``: reproducible)
    gives the expected NLL of a random ``M``-member ensemble.
    """
    from .predict import ensemble_size_curve

    rng = np.random.default_rng(seed)
    orders = [[int(i) for i in rng.permutation(run.healthy)] for _ in range(n_orders)]
    curves = np.array([[v for _, v in ensemble_size_curve(run, x, y, "nll", members=o)] for o in orders])
    return curves.mean(axis=0).tolist()


# ------------------------------------------------------------ the report
def report_figures(run: Any, dataset: Any) -> list[tuple[str, go.Figure]]:
    """The report's figures, titled: predictions, training loss, calibration, ensemble size."""
    from . import metrics, viz
    from .predict import member_metrics, predict

    figs: list[tuple[str, go.Figure]] = []
    d = dataset.n_features
    if d <= 2 and (run.task == "regression") == (d == 1):
        grid = viz.input_grid(dataset, 300 if d == 1 else 80)
        pred = predict(run, np.asarray(grid))
        if d == 1:
            figs.append(("Prediction with aleatoric and epistemic bands", viz.bands_figure(dataset, grid, pred)))
        else:
            figs.append(("Predicted class, entropy and mutual information", viz.class_maps(dataset, grid, pred)))
    x, y, split = _score_xy(dataset)
    pred = predict(run, x)
    if run.task == "regression" and d > 1:
        figs.append((f"Predicted vs actual ({split} set)", viz.pred_vs_actual(y, pred, target_name=dataset.target_name)))
    n_ep = max(run.epochs_done, 1)
    figs.append(("Training loss of every member", viz.loss_figure(run.history, n_ep, n_members=run.config.strategy.members)))
    if run.task == "classification":
        b = metrics.reliability_bins(y, pred.probs)
        figs.append((f"Reliability diagram ({split} set)",
                     viz.reliability_figure(b.confidence, b.accuracy, b.count, metrics.ece(y, pred.probs),
                                            bin_edges=np.append(b.lower, b.upper[-1]))))
    else:
        e, o = metrics.calibration_curve(y, pred.mean, np.maximum(pred.total, 1e-12))
        area = metrics.miscalibration_area(y, pred.mean, np.maximum(pred.total, 1e-12))
        figs.append((f"Calibration curve ({split} set)", viz.calibration_figure(e, o, area)))
    if len(run.healthy) > 1:
        curve = mean_size_curve(run, x, y)
        singles = [r["nll"] for r in member_metrics(run, x, y)[:-1]]
        fig = viz.size_curve_figure(list(range(1, len(curve) + 1)), curve, member_values=singles)
        fig.update_traces(selector=dict(name="Ensemble of first M"), name="Ensemble of M members (mean of 20 orders)")
        figs.append((f"{split.capitalize()} NLL against the number of members", fig))
    return figs


_CSS = """
body{font-family:-apple-system,'Segoe UI',Helvetica,Arial,sans-serif;color:#1B2430;margin:0;background:#F2F5F9}
main{max-width:1100px;margin:0 auto;padding:32px 28px 60px;background:#fff}
h1{font-size:2rem;margin:0 0 4px}h2{font-size:1.35rem;margin:36px 0 10px;border-bottom:2px solid #0072B2;padding-bottom:4px}
.sub{color:#5B6675;margin:0 0 18px}.facts{background:#EAF3FA;border-left:5px solid #0072B2;padding:12px 20px;border-radius:4px}
.facts li{margin:6px 0;line-height:1.45}table{border-collapse:collapse;font-size:.92rem;margin:8px 0}
th,td{padding:5px 10px;border-bottom:1px solid #E3E7ED;text-align:right}th:first-child,td:first-child{text-align:left}
tr.ens td{font-weight:700;background:#DCEBF7}pre{background:#F6F8FA;padding:12px;overflow:auto;font-size:.85rem}
.fig{margin:14px 0 24px}.fig h3{font-size:1.05rem;margin:0 0 2px;color:#333}footer{color:#8C96A3;font-size:.8rem;margin-top:40px}
"""


def _md_bold(text: str) -> str:
    """Escape, then turn ``**x**`` into ``<b>x</b>`` and ``*x*`` into ``<i>x</i>``."""
    out = html.escape(text)
    parts = out.split("**")
    out = "".join(f"<b>{p}</b>" if i % 2 else p for i, p in enumerate(parts))
    parts = out.split("*")
    return "".join(f"<i>{p}</i>" if i % 2 else p for i, p in enumerate(parts))


def _metrics_table(rows: list[dict[str, Any]]) -> str:
    keys = [k for k in rows[0] if k not in ("member", "index")]
    head = "".join(f"<th>{html.escape(k.replace('_', ' '))}</th>" for k in keys)
    body = []
    for r in rows:
        cls = ' class="ens"' if r["member"] == "ensemble" else ""
        cells = "".join(f"<td>{float(r[k]):.4g}</td>" for k in keys)
        body.append(f"<tr{cls}><td>{html.escape(str(r['member']))}</td>{cells}</tr>")
    return f"<table><thead><tr><th>model</th>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def _config_table(config: RunConfig) -> str:
    flat = config.to_query(only_changed=False)
    rows = "".join(f"<tr><td>{html.escape(k)}</td><td>{html.escape(v)}</td></tr>" for k, v in flat.items())
    return f"<table><tbody>{rows}</tbody></table>"


def html_report(run: Any, dataset: Any, *, title: str | None = None) -> str:
    """A standalone, single-file HTML report of ``run`` on ``dataset`` (opens offline).

    Args:
        run: a trained :class:`~ensemble_core.run.Run`.
        dataset: the :class:`~ensemble_core.data.Dataset` it was trained on.
        title: page title (default: "Deep ensemble report: <data name>").

    Returns:
        The HTML text: summary, metrics table (every member vs the ensemble),
        interactive figures (plotly.js inlined once), configuration (table + JSON).
    """
    from .predict import member_metrics

    title = title or f"Deep ensemble report: {dataset.name}"
    facts = summary_facts(run, dataset)
    x, y, split = _score_xy(dataset)
    rows = member_metrics(run, x, y)
    fig_html = []
    for i, (caption, fig) in enumerate(report_figures(run, dataset)):
        div = fig.to_html(include_plotlyjs=(i == 0), full_html=False, default_width="100%",
                          config={"displaylogo": False, "responsive": True,
                                  "toImageButtonOptions": {"format": "png", "scale": 2}})
        fig_html.append(f'<div class="fig"><h3>{html.escape(caption)}</h3>{div}</div>')
    s = run.config.strategy
    when = _dt.datetime.now().strftime("%Y-%m-%d %H:%M")
    sub = (f"{html.escape(dataset.name)} · {run.task} · {s.kind} strategy, {len(run.healthy)} members · "
           f"{run.config.model.hidden_layers}×{run.config.model.width} {run.config.model.activation} MLP · {when}")
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{html.escape(title)}</title><style>{_CSS}</style></head>
<body><main>
<h1>{html.escape(title)}</h1><p class="sub">{sub}</p>
<h2>What the uncertainty shows</h2>
<ul class="facts">{''.join(f'<li>{_md_bold(f)}</li>' for f in facts)}</ul>
<h2>Metrics on the {split} set</h2>
<p class="sub">Every member alone, then the ensemble (bold). NLL: lower is better.</p>
{_metrics_table(rows)}
<h2>Figures</h2>
<p class="sub">Interactive: hover for values, drag to zoom, double-click to reset, click legend entries to hide them.</p>
{''.join(fig_html)}
<h2>Configuration</h2>
{_config_table(run.config)}
<details><summary>As JSON (load it in Deep Ensemble Lab to repeat the run)</summary>
<pre>{html.escape(run.config.to_json())}</pre></details>
<footer>Made with Deep Ensemble Lab. Deep ensembles: Lakshminarayanan, Pritzel &amp; Blundell (2017).
This file is self-contained and works offline.</footer>
</main></body></html>
"""

