"""What each lesson says, checked on its own trained panels.

Every "what to look for" line of a :class:`~ensemble_core.lessons.Lesson` can
carry a :class:`Claim`: a computation on the lesson's trained runs (one per
panel, in panel order) and their data that returns a :class:`ClaimResult`
``(holds, number, text)``.  The Lessons page shows each line with ✓ or ✗ and
the number from the user's own run; ``tests/test_lesson_claims.py`` asserts
that every claim holds at each lesson's default settings for seeds 0, 1 and 2.

Contract for a check: pure (no training, no randomness beyond fixed seeds),
works on any run of the lesson's panels (quick or full), never raises for a
trained run: :func:`check_lesson` turns an exception into a failed claim whose
text says it could not be computed.  Thresholds are part of the lesson's words
("at least 2× wider"), never tuned to make a run pass.

Regions used on 1-D data: *on the data* = inside the training range and
outside the data's gaps; *beyond* = outside the training range.  Bands are
``mean ± k·sd`` of the ensemble's total predictive sd in the target's units.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = ["ClaimResult", "Claim", "CLAIMS", "claims_for", "check_lesson", "FIG1_FAR", "band_coverage"]

#: Figure 1's "beyond the data" region: 4 ≤ |x| ≤ 6 (the paper's plot runs to ±6; data lives in [-4, 4]).
FIG1_FAR: np.ndarray = np.concatenate([np.linspace(-6.0, -4.0, 41), np.linspace(4.0, 6.0, 41)])
#: The paper plots the predicted mean ± 3 standard deviations (Lakshminarayanan et al. 2017, Fig. 1).
FIG1_SIGMAS = 3.0


@dataclass(frozen=True)
class ClaimResult:
    """One claim evaluated on one set of trained panels.

    Attributes:
        holds: whether the lesson's statement is true for these runs.
        number: the key number of the check (units in ``text``); NaN when not computable.
        text: a short Markdown phrase with the number(s), shown next to the line.
    """

    holds: bool
    number: float
    text: str


@dataclass(frozen=True)
class Claim:
    """A checkable statement attached to one "what to look for" line.

    Attributes:
        line: index of the line in ``Lesson.look_for``.
        what: the computation in words (documentation and test messages).
        check: ``check(runs, dataset) -> ClaimResult``; ``runs`` are the lesson's
            trained panels in order.
    """

    line: int
    what: str
    check: Callable[[Sequence[Any], Any], ClaimResult]


# ------------------------------------------------------------------ helpers
def _pred(run: Any, x: np.ndarray, members: Sequence[int] | None = None) -> Any:
    from .predict import predict

    return predict(run, np.asarray(x, dtype=np.float64).reshape(len(x), -1), members)


def _sd(a: Any) -> np.ndarray:
    return np.sqrt(np.maximum(np.asarray(a, dtype=np.float64), 0.0))


def band_coverage(run: Any, x: np.ndarray, truth: np.ndarray, sigmas: float = FIG1_SIGMAS) -> np.ndarray:
    """Boolean mask: is ``truth`` inside the run's ``mean ± sigmas·sd`` (total sd) at each ``x``?"""
    p = _pred(run, x)
    return np.abs(np.asarray(p.mean, dtype=np.float64) - np.asarray(truth, dtype=np.float64)) <= sigmas * _sd(p.total)


def _expected_nll(run: Any, x: np.ndarray, dataset: Any) -> float:
    """Mean over ``x`` of E[-log N(y; mu, s²)] for y from the data's true generator (closed form)."""
    p = _pred(run, x)
    v = np.maximum(np.asarray(p.total, dtype=np.float64), 1e-12)
    f = np.asarray(dataset.true_fn(x), dtype=np.float64)
    s2 = np.asarray(dataset.noise_fn(x), dtype=np.float64) ** 2
    return float(np.mean(0.5 * np.log(2 * np.pi * v) + ((f - p.mean) ** 2 + s2) / (2 * v)))


def _grid_1d(dataset: Any, n: int = 400) -> np.ndarray:
    lo, hi = dataset.plot_range if getattr(dataset, "plot_range", None) else (
        float(np.min(dataset.x_train)) - 1.0, float(np.max(dataset.x_train)) + 1.0)
    return np.linspace(lo, hi, n)


def _on_data(dataset: Any, x: np.ndarray) -> np.ndarray:
    xt = np.asarray(dataset.x_train, dtype=np.float64)[:, 0]
    mask = (x >= xt.min()) & (x <= xt.max())
    for a, b in getattr(dataset, "gaps", []) or []:
        mask &= ~((x > a) & (x < b))
    return mask


def _in_gap(dataset: Any, x: np.ndarray) -> np.ndarray:
    mask = np.zeros(len(x), dtype=bool)
    for a, b in getattr(dataset, "gaps", []) or []:
        mask |= (x > a) & (x < b)
    return mask


def _beyond(dataset: Any, x: np.ndarray) -> np.ndarray:
    xt = np.asarray(dataset.x_train, dtype=np.float64)[:, 0]
    return (x < xt.min()) | (x > xt.max())


def _test_xy(dataset: Any) -> tuple[np.ndarray, np.ndarray]:
    if len(dataset.y_test):
        return dataset.x_test, dataset.y_test
    return dataset.x_val, dataset.y_val


def _nll(run: Any, dataset: Any, members: Sequence[int] | None = None) -> float:
    from .predict import evaluate_run

    x, y = _test_xy(dataset)
    return float(evaluate_run(run, x, y, members)["nll"])


def _pct(v: float) -> str:
    return f"{100 * v:.0f} %"


def _ratio(a: float, b: float) -> float:
    return a / b if b > 0 else (math.inf if a > 0 else math.nan)


def _fmt_ratio(r: float) -> str:
    return "∞" if math.isinf(r) else f"{r:.1f}×"


# ------------------------------------------------------------------ figure 1
# panels: 0 MSE ensemble, 1 single NLL, 2 single NLL + adversarial, 3 NLL ensemble + adversarial
def _fig1_data_range(runs: Sequence[Any], ds: Any) -> ClaimResult:
    m = float(np.max(np.abs(ds.x_train)))
    return ClaimResult(m <= 4.0, m, f"training inputs reach |x| = {m:.2f}")


def _fig1_mse_thin(runs: Sequence[Any], ds: Any) -> ClaimResult:
    x = np.linspace(-4, 4, 161)
    sd = float(np.mean(_sd(_pred(runs[0], x).total)))
    noise = float(np.mean(ds.noise_fn(x)))
    return ClaimResult(sd < noise, sd, f"its sd on the data averages **{sd:.2f}**, the true noise sd is {noise:.0f}")


def _fig1_single_no_epistemic(runs: Sequence[Any], ds: Any) -> ClaimResult:
    epi = float(np.max(_sd(_pred(runs[1], FIG1_FAR).epistemic)))
    cov = float(band_coverage(runs[1], FIG1_FAR, ds.true_fn(FIG1_FAR)).mean())
    return ClaimResult(epi == 0.0 and cov < 0.8, cov,
                       f"epistemic sd {epi:.0f}; its ±3σ band holds the true curve on only **{_pct(cov)}** "
                       "of 4 ≤ |x| ≤ 6")


def _fig1_adv_still_one(runs: Sequence[Any], ds: Any) -> ClaimResult:
    epi = float(np.max(_sd(_pred(runs[2], FIG1_FAR).epistemic)))
    cov = float(band_coverage(runs[2], FIG1_FAR, ds.true_fn(FIG1_FAR)).mean())
    return ClaimResult(epi == 0.0 and cov < 0.8, cov,
                       f"epistemic sd {epi:.0f}; true curve inside its ±3σ band on **{_pct(cov)}** of 4 ≤ |x| ≤ 6")


def _fig1_ensemble_covers(runs: Sequence[Any], ds: Any) -> ClaimResult:
    truth = ds.true_fn(FIG1_FAR)
    covs = [float(band_coverage(r, FIG1_FAR, truth).mean()) for r in runs]
    at = bool(band_coverage(runs[3], np.array([5.5]), ds.true_fn(np.array([5.5])))[0])
    best_other = max(covs[:3])
    holds = covs[3] > best_other
    return ClaimResult(holds, covs[3],
                       f"true curve inside its ±3σ band on **{_pct(covs[3])}** of 4 ≤ |x| ≤ 6 "
                       f"({'including' if at else 'but not'} x = 5.5); best other panel {_pct(best_other)}")


def _fig1_epistemic_grows(runs: Sequence[Any], ds: Any) -> ClaimResult:
    near = float(np.mean(_sd(_pred(runs[3], np.linspace(-4, 4, 161)).epistemic)))
    far = float(np.mean(_sd(_pred(runs[3], FIG1_FAR).epistemic)))
    r = _ratio(far, near)
    return ClaimResult(r > 1.0, r, f"the members' disagreement (epistemic sd) is **{_fmt_ratio(r)}** larger on "
                       f"4 ≤ |x| ≤ 6 ({far:.1f}) than on the data ({near:.1f})")


def _fig1_far_nll(runs: Sequence[Any], ds: Any) -> ClaimResult:
    nll = [_expected_nll(r, FIG1_FAR, ds) for r in runs]
    best_other = min(nll[:3])
    return ClaimResult(nll[3] < best_other, nll[3],
                       f"expected NLL on 4 ≤ |x| ≤ 6: NLL ensemble **{nll[3]:.1f}**, best other panel {best_other:.1f}")


def _fig1_mse_worst(runs: Sequence[Any], ds: Any) -> ClaimResult:
    nll = [_nll(r, ds) for r in runs]
    worst_other = max(nll[1:])
    return ClaimResult(nll[0] > 2 * worst_other, nll[0],
                       f"test NLL: MSE ensemble **{nll[0]:.1f}**, the NLL panels {min(nll[1:]):.2f}–{worst_other:.2f}")


# ------------------------------------------------------------------ aleatoric vs epistemic
def _ae_parts(runs: Sequence[Any], ds: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    x = _grid_1d(ds)
    p = _pred(runs[0], x)
    return x, _sd(p.aleatoric), _sd(p.epistemic)


def _ae_aleatoric_widens(runs: Sequence[Any], ds: Any) -> ClaimResult:
    x, ale, _ = _ae_parts(runs, ds)
    on = _on_data(ds, x)
    r = _ratio(float(ale[on & (np.abs(x) >= 4)].mean()), float(ale[on & (np.abs(x) <= 0.75)].mean()))
    return ClaimResult(r >= 2.0, r, f"aleatoric sd is **{_fmt_ratio(r)}** larger at 4 ≤ |x| ≤ 5 than at |x| ≤ 0.75")


def _ae_epistemic_thin(runs: Sequence[Any], ds: Any) -> ClaimResult:
    x, ale, epi = _ae_parts(runs, ds)
    on = _on_data(ds, x)
    r = _ratio(float(epi[on].mean()), float(ale[on].mean()))
    return ClaimResult(r <= 0.5, r, f"on the data the epistemic sd is **{r:.2f}×** the aleatoric sd")


def _ae_gap_bulge(runs: Sequence[Any], ds: Any) -> ClaimResult:
    x, _, epi = _ae_parts(runs, ds)
    r = _ratio(float(epi[_in_gap(ds, x)].mean()), float(epi[_on_data(ds, x)].mean()))
    return ClaimResult(r >= 2.0, r, f"epistemic sd is **{_fmt_ratio(r)}** wider in the gap than on the data")


def _ae_aleatoric_beyond(runs: Sequence[Any], ds: Any) -> ClaimResult:
    x, ale, _ = _ae_parts(runs, ds)
    edge = _on_data(ds, x) & (np.abs(x) >= 4)
    r = _ratio(float(ale[_beyond(ds, x)].mean()), float(ale[edge].mean()))
    return ClaimResult(r > 1.0, r, f"aleatoric sd beyond the data is **{_fmt_ratio(r)}** its value at 4 ≤ |x| ≤ 5")


def _ae_fan_out(runs: Sequence[Any], ds: Any) -> ClaimResult:
    x, _, epi = _ae_parts(runs, ds)
    r = _ratio(float(epi[_beyond(ds, x)].mean()), float(epi[_on_data(ds, x)].mean()))
    return ClaimResult(r >= 2.0, r, f"the members' means spread **{_fmt_ratio(r)}** more beyond the data than on it")


# ------------------------------------------------------------------ snapshot (0 independent, 1 snapshot)
def _snap_lr(runs: Sequence[Any], ds: Any) -> ClaimResult:
    run = runs[1]
    lrs = np.asarray(run.lr_trace, dtype=np.float64)
    snaps = [e.step - 1 for e in run.history if getattr(e, "kind", None) == "snapshot"]
    restarts = int(np.sum(np.diff(lrs) > 0.5 * lrs.max()))
    low = float(max(lrs[s] for s in snaps) / lrs.max()) if snaps else math.inf
    want = run.config.strategy.snapshots
    holds = len(snaps) == want and restarts == want - 1 and low <= 0.05
    return ClaimResult(holds, low, f"{len(snaps)} snapshots, {restarts} restarts; learning rate at a snapshot "
                       f"≤ **{_pct(low)}** of its peak")


def _snap_budget(runs: Sequence[Any], ds: Any) -> ClaimResult:
    from .race import budget_of

    b = [budget_of(r.config) for r in runs]
    return ClaimResult(len(set(b)) == 1, float(b[0]), f"member-epochs: {' vs '.join(str(v) for v in b)}")


def _spread(run: Any, ds: Any) -> float:
    x = _grid_1d(ds)
    return float(_sd(_pred(run, x).epistemic).mean())


def _snap_spread(runs: Sequence[Any], ds: Any) -> ClaimResult:
    r = _ratio(_spread(runs[1], ds), _spread(runs[0], ds))
    return ClaimResult(r > 1.0, r, f"snapshots' spread (mean epistemic sd over the plot) is **{r:.2f}×** the "
                       "independent members'")


def _snap_nll(runs: Sequence[Any], ds: Any) -> ClaimResult:
    ind, snap = _nll(runs[0], ds), _nll(runs[1], ds)
    return ClaimResult(snap <= ind + 0.1, snap - ind,
                       f"test NLL: snapshots **{snap:.3f}**, independent {ind:.3f}")


# ------------------------------------------------------------------ bootstrap (0 seeds, 1 bootstrap)
def _boot_distinct(runs: Sequence[Any], ds: Any) -> ClaimResult:
    from .strategies import bootstrap_indices, trajectory_seeds

    n = len(ds.y_train)
    f = float(np.mean([len(np.unique(bootstrap_indices(s, n))) / n for s in trajectory_seeds(runs[1].config)]))
    return ClaimResult(abs(f - 0.632) <= 0.08, f, f"the bootstrap members see **{_pct(f)}** of the distinct points "
                       "on average")


def _boot_wiggle(runs: Sequence[Any], ds: Any) -> ClaimResult:
    x = _grid_1d(ds)
    on = _on_data(ds, x)
    ind = float(_sd(_pred(runs[0], x).epistemic)[on].mean())
    boot = float(_sd(_pred(runs[1], x).epistemic)[on].mean())
    r = _ratio(boot, ind)
    return ClaimResult(r > 1.0, r, f"on the data the bootstrap members' means spread **{_fmt_ratio(r)}** as much")


def _boot_nll(runs: Sequence[Any], ds: Any) -> ClaimResult:
    ind, boot = _nll(runs[0], ds), _nll(runs[1], ds)
    return ClaimResult(boot > ind, boot - ind, f"test NLL: bootstrap **{boot:.2f}**, random seeds {ind:.2f}")


# ------------------------------------------------------------------ how many members
def _curve(runs: Sequence[Any], ds: Any) -> list[float]:
    from .report import mean_size_curve

    x, y = _test_xy(ds)
    return mean_size_curve(runs[0], x, y)


def _many_fast(runs: Sequence[Any], ds: Any) -> ClaimResult:
    c = _curve(runs, ds)
    share = _ratio(c[0] - c[4], c[0] - c[-1]) if c[0] > c[-1] else 0.0
    return ClaimResult(share >= 0.7, share, f"NLL {c[0]:.2f} → {c[4]:.2f} at 5 members → {c[-1]:.2f} at "
                       f"{len(c)}: **{_pct(share)}** of the gain comes from the first 5")


def _many_flat(runs: Sequence[Any], ds: Any) -> ClaimResult:
    c = _curve(runs, ds)
    early = (c[0] - c[4]) / 4
    late = (c[4] - c[-1]) / (len(c) - 5)
    r = _ratio(late, early) if early > 0 else math.inf
    return ClaimResult(early > 0 and r < 0.5, r, f"gain per extra member: {early:.3f} up to 5, **{late:.3f}** after")


def _many_gap(runs: Sequence[Any], ds: Any) -> ClaimResult:
    run = runs[0]
    one, all_ = _nll(run, ds, run.healthy[:1]), _nll(run, ds)
    return ClaimResult(all_ < one, one - all_, f"test NLL: 1 member {one:.2f}, {len(run.healthy)} members "
                       f"**{all_:.2f}**")


# ------------------------------------------------------------------ classification maps
def _knn_mixed(ds: Any, x: np.ndarray, k: int = 10) -> np.ndarray:
    """Points whose ``k`` nearest training points carry both labels (the classes overlap there)."""
    xt, yt = np.asarray(ds.x_train, dtype=np.float64), np.asarray(ds.y_train)
    d = ((x[:, None, :] - xt[None, :, :]) ** 2).sum(-1)
    nn = np.argsort(d, axis=1)[:, :k]
    labels = yt[nn]
    return (labels != labels[:, :1]).any(axis=1)


def _cls_agree(runs: Sequence[Any], ds: Any) -> ClaimResult:
    p = _pred(runs[0], ds.x_train)
    votes = np.asarray(p.member_probs).argmax(-1)
    agree = float((votes == votes[:1]).all(axis=0).mean())
    return ClaimResult(agree >= 0.9, agree, f"all members vote the same class on **{_pct(agree)}** of the "
                       "training points")


def _cls_entropy_boundary(runs: Sequence[Any], ds: Any) -> ClaimResult:
    x, _ = _test_xy(ds)
    mixed = _knn_mixed(ds, np.asarray(x, dtype=np.float64))
    h = np.asarray(_pred(runs[0], x).total)
    r = _ratio(float(h[mixed].mean()), float(h[~mixed].mean())) if mixed.any() and (~mixed).any() else math.nan
    return ClaimResult(bool(r >= 2.0), r, f"entropy is **{_fmt_ratio(r)}** higher where the classes overlap")


def _cls_mi_low(runs: Sequence[Any], ds: Any) -> ClaimResult:
    x, _ = _test_xy(ds)
    mixed = _knn_mixed(ds, np.asarray(x, dtype=np.float64))
    p = _pred(runs[0], x)
    share = float(np.mean(np.asarray(p.epistemic)[mixed]) / max(np.mean(np.asarray(p.total)[mixed]), 1e-12)) \
        if mixed.any() else math.nan
    return ClaimResult(bool(share <= 0.25), share, f"where the classes overlap, mutual information is **{_pct(share)}**"
                       " of the entropy")


def _cls_mi_far(runs: Sequence[Any], ds: Any) -> ClaimResult:
    from .report import regions
    from .viz import input_grid

    grid = np.asarray(input_grid(ds, 60))
    near, far = regions(ds, grid)
    mi = np.asarray(_pred(runs[0], grid).epistemic)
    r = _ratio(float(mi[far].mean()), float(mi[near].mean())) if near.any() and far.any() else math.nan
    return ClaimResult(bool(r >= 2.0), r, f"mutual information is **{_fmt_ratio(r)}** higher far from the data "
                       "than near it")


# ------------------------------------------------------------------ known unknowns (digits)
def _ku(runs: Sequence[Any], ds: Any) -> Any:
    from .lesson_unknowns import unknowns_numbers

    return unknowns_numbers(runs[0], ds)


def _ku_right(runs: Sequence[Any], ds: Any) -> ClaimResult:
    k = _ku(runs, ds)
    h, seen = np.asarray(k.entropy_ensemble), np.asarray(k.seen, dtype=bool)
    med_unseen, q75_seen = float(np.median(h[~seen])), float(np.quantile(h[seen], 0.75))
    return ClaimResult(med_unseen > q75_seen, med_unseen,
                       f"median entropy **{med_unseen:.2f}** nats on unseen digits, above the 75th percentile on "
                       f"seen ones ({q75_seen:.3f})")


def _ku_auroc(runs: Sequence[Any], ds: Any) -> ClaimResult:
    k = _ku(runs, ds)
    ens, one = float(k.auroc_entropy_ensemble), float(k.auroc_entropy_single)
    return ClaimResult(ens > one, ens - one, f"AUROC: ensemble **{ens:.3f}**, one network {one:.3f}")


def _ku_mi(runs: Sequence[Any], ds: Any) -> ClaimResult:
    k = _ku(runs, ds)
    mi, seen = np.asarray(k.mi_ensemble), np.asarray(k.seen, dtype=bool)
    on_seen, on_unseen = float(mi[seen].mean()), float(mi[~seen].mean())
    r = _ratio(on_seen, on_unseen)
    return ClaimResult(bool(r <= 0.2), r, f"mean mutual information **{on_seen:.3f}** nats on seen digits, "
                       f"{on_unseen:.3f} on unseen ({_pct(r)} of it)")


def _ku_abstain(runs: Sequence[Any], ds: Any) -> ClaimResult:
    a = _ku(runs, ds).abstain_ensemble
    acc0, acc1 = float(a["accuracy"][0]), float(a["accuracy"][-1])
    unseen1, t1 = float(a["answered_unseen"][-1]), float(a["thresholds"][-1])
    return ClaimResult(bool(acc1 >= acc0 + 0.2 and unseen1 <= 0.5), acc1 - acc0,
                       f"at threshold {t1:.2f}: accuracy **{_pct(acc0)} → {_pct(acc1)}**, unseen digits still "
                       f"answered **{_pct(unseen1)}**")


# ------------------------------------------------------------------ ensembles vs MC dropout (0 ensemble, 1 MC)
def _mc_parts(run: Any, ds: Any) -> dict[str, float]:
    """Mean epistemic sd on the data, in the gap and beyond the data (1-D grid over the plot)."""
    x = _grid_1d(ds)
    epi = _sd(_pred(run, x).epistemic)
    return {"on": float(epi[_on_data(ds, x)].mean()), "gap": float(epi[_in_gap(ds, x)].mean()),
            "beyond": float(epi[_beyond(ds, x)].mean())}


def _mc_cost(runs: Sequence[Any], ds: Any) -> ClaimResult:
    from .race import budget_of

    b = [budget_of(r.config) for r in runs]
    t, m = runs[1].config.strategy.passes, runs[0].config.strategy.members
    return ClaimResult(len(set(b)) == 1 and t > m, float(t), f"member-epochs {b[0]} vs {b[1]}; prediction: "
                       f"**{t}** passes vs {m} networks")


def _mc_disagree_on_data(runs: Sequence[Any], ds: Any) -> ClaimResult:
    ens, mc = _mc_parts(runs[0], ds)["on"], _mc_parts(runs[1], ds)["on"]
    r = _ratio(mc, ens)
    return ClaimResult(bool(r >= 2.0), r, f"on the data MC dropout's epistemic sd is **{mc:.2f}**, "
                       f"{_fmt_ratio(r)} the ensemble's {ens:.2f}")


def _mc_gap(runs: Sequence[Any], ds: Any) -> ClaimResult:
    ens, mc = _mc_parts(runs[0], ds), _mc_parts(runs[1], ds)
    re, rm = _ratio(ens["gap"], ens["on"]), _ratio(mc["gap"], mc["on"])
    return ClaimResult(bool(re >= 2.0 and rm < 1.5), re, f"epistemic sd in the gap vs on the data: ensemble "
                       f"**{_fmt_ratio(re)}**, MC dropout {_fmt_ratio(rm)}")


def _mc_beyond(runs: Sequence[Any], ds: Any) -> ClaimResult:
    ens, mc = _mc_parts(runs[0], ds), _mc_parts(runs[1], ds)
    re, rm = _ratio(ens["beyond"], ens["on"]), _ratio(mc["beyond"], mc["on"])
    return ClaimResult(bool(min(re, rm) >= 2.0), min(re, rm), f"epistemic sd beyond the data vs on it: ensemble "
                       f"**{_fmt_ratio(re)}**, MC dropout **{_fmt_ratio(rm)}**")


def _mc_nll(runs: Sequence[Any], ds: Any) -> ClaimResult:
    ens, mc = _nll(runs[0], ds), _nll(runs[1], ds)
    return ClaimResult(ens <= mc + 0.02, mc - ens, f"test NLL: ensemble **{ens:.3f}**, MC dropout {mc:.3f}")


#: Claims per lesson id; ``line`` indexes the lesson's ``look_for``.
CLAIMS: dict[str, tuple[Claim, ...]] = {
    "figure1": (
        Claim(0, "every training input lies in [-4, 4]", _fig1_data_range),
        Claim(1, "MSE ensemble: mean predictive sd on [-4, 4] below the true noise sd", _fig1_mse_thin),
        Claim(2, "single NLL net: zero epistemic sd; ±3σ covers the truth on < 80 % of 4 ≤ |x| ≤ 6",
              _fig1_single_no_epistemic),
        Claim(3, "single NLL + adversarial: zero epistemic sd; ±3σ covers < 80 % of 4 ≤ |x| ≤ 6", _fig1_adv_still_one),
        Claim(4, "NLL ensemble: mean epistemic sd larger on 4 ≤ |x| ≤ 6 than on [-4, 4]", _fig1_epistemic_grows),
        Claim(5, "NLL ensemble: ±3σ covers more of 4 ≤ |x| ≤ 6 than every other panel (x = 5.5 reported)",
              _fig1_ensemble_covers),
        Claim(6, "NLL ensemble: lowest expected NLL under the true generator on 4 ≤ |x| ≤ 6", _fig1_far_nll),
        Claim(7, "MSE ensemble's test NLL more than 2× the worst NLL panel's", _fig1_mse_worst),
    ),
    "aleatoric-epistemic": (
        Claim(0, "aleatoric sd at 4 ≤ |x| ≤ 5 ≥ 2× that at |x| ≤ 0.75", _ae_aleatoric_widens),
        Claim(1, "on the data, epistemic sd ≤ 0.5× aleatoric sd", _ae_epistemic_thin),
        Claim(2, "epistemic sd ≥ 2× wider in the gap than on the data", _ae_gap_bulge),
        Claim(3, "aleatoric sd beyond the data larger than at the data's edges", _ae_aleatoric_beyond),
        Claim(4, "epistemic sd beyond the data ≥ 2× that on the data", _ae_fan_out),
    ),
    "snapshot": (
        Claim(0, "one restart per cycle; lr at each snapshot ≤ 5 % of its peak", _snap_lr),
        Claim(1, "equal member-epochs", _snap_budget),
        Claim(2, "snapshots' mean epistemic sd over the plot above the independent members'", _snap_spread),
        Claim(3, "snapshot test NLL at most 0.1 above the independent ensemble's", _snap_nll),
    ),
    "bootstrap": (
        Claim(0, "mean distinct fraction of a bootstrap resample within 0.08 of 1 - 1/e", _boot_distinct),
        Claim(1, "bootstrap members' spread on the data larger than the seeds-only members'", _boot_wiggle),
        Claim(2, "bootstrap ensemble's test NLL worse than the seeds-only ensemble's", _boot_nll),
    ),
    "how-many": (
        Claim(0, "≥ 70 % of the NLL gain from 1 to all members is reached at 5 members", _many_fast),
        Claim(1, "gain per member after 5 is < half the gain per member up to 5", _many_flat),
        Claim(2, "the full ensemble's test NLL below its first member's", _many_gap),
    ),
    "classification": (
        Claim(0, "all members vote the same class on ≥ 90 % of the training points", _cls_agree),
        Claim(1, "entropy ≥ 2× higher on test points whose 10 nearest training points mix classes", _cls_entropy_boundary),
        Claim(2, "mutual information ≤ 25 % of the entropy where classes mix", _cls_mi_low),
        Claim(3, "mutual information ≥ 2× higher far from the data than near it", _cls_mi_far),
    ),
    "unknowns": (
        Claim(0, "ensemble: median entropy on unseen digits above the 75th percentile on seen ones", _ku_right),
        Claim(1, "AUROC of entropy for unseen digits: ensemble above one network", _ku_auroc),
        Claim(2, "ensemble's mean mutual information on seen digits ≤ 20 % of that on unseen ones", _ku_mi),
        Claim(3, "highest threshold: accuracy ≥ 20 points above answering everything, ≤ 50 % of unseen "
                 "digits still answered", _ku_abstain),
    ),
    "mc-dropout": (
        Claim(0, "equal member-epochs; MC dropout's passes T more than the ensemble's networks", _mc_cost),
        Claim(1, "on the data, MC dropout's mean epistemic sd ≥ 2× the ensemble's", _mc_disagree_on_data),
        Claim(2, "gap vs on-data epistemic sd: ensemble ≥ 2×, MC dropout < 1.5×", _mc_gap),
        Claim(3, "beyond vs on-data epistemic sd ≥ 2× for both", _mc_beyond),
        Claim(4, "ensemble's test NLL at most 0.02 above MC dropout's", _mc_nll),
    ),
}


def claims_for(lesson_id: str) -> tuple[Claim, ...]:
    """The claims of a lesson (empty for a lesson without checked claims)."""
    return CLAIMS.get(lesson_id, ())


def check_lesson(lesson: Any, runs: Sequence[Any], dataset: Any) -> list[ClaimResult | None]:
    """Evaluate a lesson's claims on its trained panels.

    Args:
        lesson: the :class:`~ensemble_core.lessons.Lesson`.
        runs: one trained run per panel, in panel order.
        dataset: the data they were trained on.

    Returns:
        One entry per ``lesson.look_for`` line: its :class:`ClaimResult`, or
        ``None`` for a line without a claim.  A check that raises gives a
        failed result (``holds=False``, NaN) saying it could not be computed.
    """
    if len(runs) != len(lesson.panels) or any(r is None for r in runs):
        raise ValueError(f"lesson {lesson.id!r} needs {len(lesson.panels)} trained runs")
    out: list[ClaimResult | None] = [None] * len(lesson.look_for)
    for claim in claims_for(lesson.id):
        if not 0 <= claim.line < len(out):
            raise ValueError(f"lesson {lesson.id!r}: claim for line {claim.line} but it has {len(out)} lines")
        try:
            out[claim.line] = claim.check(runs, dataset)
        except Exception as exc:  # noqa: BLE001 - a claim that cannot be computed is shown as not holding
            out[claim.line] = ClaimResult(False, math.nan, f"could not be computed ({type(exc).__name__})")
    return out
