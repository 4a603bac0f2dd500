"""Known unknowns: does the uncertainty flag inputs from classes never seen in training?

The paper's Section 3.5 at classroom scale: train on some classes, then score
test inputs of every class.  A good uncertainty is higher on the unseen classes,
so it separates them: :func:`auroc` of the predictive entropy (and of the mutual
information, the members' disagreement) with "unseen" as the positive class is
the probability that a random unseen input gets a higher score than a random
seen one (0.5 = no better than chance, 1 = perfect).  :func:`abstain_curve`
shows what answering only when confident buys: an unseen input that is answered
is always wrong.

Pure numpy; a bad input raises :class:`ValueError` naming it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = ["auroc", "seen_mask", "abstain_curve", "KnownUnknowns", "known_unknowns", "THRESHOLDS"]

#: Confidence thresholds of :func:`abstain_curve` (answer when the top-class probability is at least this).
THRESHOLDS = np.round(np.linspace(0.0, 0.99, 100), 2)


def auroc(scores: Any, positive: Any) -> float:
    """Area under the ROC curve of ``scores`` for detecting ``positive`` (ties count one half).

    Equal to the Mann–Whitney statistic ``P(score_pos > score_neg) + 0.5 P(equal)``,
    computed from average ranks.

    Args:
        scores: ``[N]`` finite scores (higher = more likely positive).
        positive: ``[N]`` booleans.

    Raises:
        ValueError: shapes differ, a score is not finite, or one class is empty.
    """
    s = np.asarray(scores, dtype=np.float64).reshape(-1)
    pos = np.asarray(positive).reshape(-1)
    if pos.dtype != bool:
        raise ValueError("positive: must be booleans")
    if s.shape != pos.shape:
        raise ValueError(f"scores and positive must have the same length, got {s.shape[0]} and {pos.shape[0]}")
    if not np.all(np.isfinite(s)):
        raise ValueError("scores: contains NaN or infinite values")
    n_pos, n_neg = int(pos.sum()), int((~pos).sum())
    if n_pos == 0 or n_neg == 0:
        raise ValueError("positive: needs at least one positive and one negative example")
    order = np.argsort(s, kind="mergesort")
    ranks = np.empty(len(s), dtype=np.float64)
    sorted_s = s[order]
    # average ranks of ties (1-based)
    starts = np.r_[0, np.flatnonzero(np.diff(sorted_s)) + 1]
    ends = np.r_[starts[1:], len(s)]
    avg = (starts + ends + 1) / 2.0
    ranks[order] = np.repeat(avg, ends - starts)
    return float((ranks[pos].sum() - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg))


def seen_mask(y: Any, held_out: Any) -> np.ndarray:
    """``True`` where the label ``y`` is a class that was seen in training (not in ``held_out``)."""
    yy = np.asarray(y).reshape(-1)
    return ~np.isin(yy, np.asarray(list(held_out), dtype=np.int64))


def abstain_curve(probs: Any, y: Any, held_out: Any, thresholds: Any = THRESHOLDS) -> dict[str, np.ndarray]:
    """Answer only when the top-class probability reaches a threshold.

    Args:
        probs: ``[N, C]`` class probabilities.
        y: ``[N]`` true labels (those in ``held_out`` can never be answered right).
        held_out: the classes left out of training.
        thresholds: ``[K]`` confidence thresholds.

    Returns:
        ``thresholds``; ``accuracy`` on the answered inputs (NaN when none is
        answered); ``answered`` (share of all inputs answered); ``answered_seen`` and
        ``answered_unseen`` (share of seen / unseen inputs answered; NaN if none).
    """
    p = np.asarray(probs, dtype=np.float64)
    yy = np.asarray(y).reshape(-1)
    if p.ndim != 2 or p.shape[0] != len(yy):
        raise ValueError(f"probs: must be [N, C] with N = len(y) = {len(yy)}, got shape {p.shape}")
    t = np.asarray(thresholds, dtype=np.float64).reshape(-1)
    conf, correct = p.max(axis=1), p.argmax(axis=1) == yy
    seen = seen_mask(yy, held_out)
    ans = conf[None, :] >= t[:, None]  # [K, N]
    n_ans = ans.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        acc = np.where(n_ans > 0, (ans & correct).sum(axis=1) / np.maximum(n_ans, 1), np.nan)
        a_seen = ans[:, seen].mean(axis=1) if seen.any() else np.full(len(t), np.nan)
        a_unseen = ans[:, ~seen].mean(axis=1) if (~seen).any() else np.full(len(t), np.nan)
    return {"thresholds": t, "accuracy": acc, "answered": n_ans / max(len(yy), 1),
            "answered_seen": a_seen, "answered_unseen": a_unseen}


@dataclass
class KnownUnknowns:
    """Seen vs unseen classes for one network and for the ensemble, on the same test inputs.

    Attributes:
        held_out: the classes left out of training.
        seen: ``[N]`` ``True`` for inputs of seen classes.
        entropy_single, entropy_ensemble: predictive entropy (nats) ``[N]``.
        mi_ensemble: the ensemble's mutual information (nats) ``[N]``.
        auroc_entropy_single, auroc_entropy_ensemble, auroc_mi_ensemble: unseen-class detection.
        abstain_single, abstain_ensemble: :func:`abstain_curve` of each.
        accuracy_seen_single, accuracy_seen_ensemble: accuracy on the seen classes.
        n_members: the ensemble's size.
    """

    held_out: tuple[int, ...]
    seen: np.ndarray
    entropy_single: np.ndarray
    entropy_ensemble: np.ndarray
    mi_ensemble: np.ndarray
    auroc_entropy_single: float
    auroc_entropy_ensemble: float
    auroc_mi_ensemble: float
    abstain_single: dict[str, np.ndarray]
    abstain_ensemble: dict[str, np.ndarray]
    accuracy_seen_single: float
    accuracy_seen_ensemble: float
    n_members: int


def known_unknowns(single: Any, ensemble: Any, y: Any, held_out: Any) -> KnownUnknowns:
    """Compare one network with the ensemble as detectors of unseen classes.

    Args:
        single: a ``ClassificationPrediction`` of one member on the test inputs.
        ensemble: the ensemble's ``ClassificationPrediction`` on the same inputs.
        y: ``[N]`` true labels.
        held_out: the classes left out of training (non-empty).

    Raises:
        ValueError: no held-out class, or the test inputs lack seen or unseen examples.
    """
    held = tuple(sorted({int(c) for c in held_out}))
    if not held:
        raise ValueError("held_out: mark at least one class as held out of training")
    yy = np.asarray(y).reshape(-1)
    seen = seen_mask(yy, held)
    if seen.all() or not seen.any():
        raise ValueError("y: the test inputs need examples of both seen and held-out classes")
    unseen = ~seen

    def acc(p: np.ndarray) -> float:
        return float((p[seen].argmax(axis=1) == yy[seen]).mean())

    return KnownUnknowns(
        held_out=held, seen=seen,
        entropy_single=np.asarray(single.total), entropy_ensemble=np.asarray(ensemble.total),
        mi_ensemble=np.asarray(ensemble.epistemic),
        auroc_entropy_single=auroc(single.total, unseen), auroc_entropy_ensemble=auroc(ensemble.total, unseen),
        auroc_mi_ensemble=auroc(ensemble.epistemic, unseen),
        abstain_single=abstain_curve(single.probs, yy, held), abstain_ensemble=abstain_curve(ensemble.probs, yy, held),
        accuracy_seen_single=acc(single.probs), accuracy_seen_ensemble=acc(ensemble.probs),
        n_members=len(getattr(ensemble, "members", ())) or int(np.asarray(ensemble.member_probs).shape[0]),
    )
