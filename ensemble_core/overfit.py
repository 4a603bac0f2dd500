"""Overfitting made visible (issue 18 part 6): each member's validation score, and when a run overfits.

* :func:`member_val_scores` is the rule of ``optim.keep_best``: the engine
  (:mod:`ensemble_core.training`) and the plain loops
  (:mod:`ensemble_core.reference`) both call it after every epoch, on each
  member's deterministic outputs for the validation rows, and keep a member's
  weights when its score is strictly lower than its best so far.
* :func:`overfitting` reads a run's epoch events and says whether the
  ensemble's validation NLL rose clearly past its best, with the numbers and
  what to do (the Train page shows it after a run).

Pure functions: no Streamlit, no training.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch

from .losses import to_variance

__all__ = ["member_val_scores", "Overfitting", "overfitting", "RISE_NATS", "RISE_FRACTION"]

#: Validation NLL "rose clearly" past its best when the last value exceeds the best by at least this
#: many nats AND by :data:`RISE_FRACTION` of the best's magnitude (a few hundredths of noise is not
#: overfitting; a rise from 0.3 to 1.8 is).
RISE_NATS = 0.1
RISE_FRACTION = 0.1


def member_val_scores(out: torch.Tensor, y: torch.Tensor, task: str, loss_kind: str,
                      variance: str) -> torch.Tensor:
    """Each member's validation score ``[M]`` (float64; lower is better) from its outputs ``[M, N, out]``.

    Regression (standardised targets ``y [N]``): the mean Gaussian NLL in nats, ``0.5 log(2 pi var)
    + (y - mu)^2 / (2 var)`` with the run's variance head; mean-only (MSE) members: the mean squared
    error.  Classification (class indices): the mean cross-entropy.  Non-finite scores are ``+inf``
    (never the best).
    """
    o = out.double()
    if task == "classification":
        logp = torch.log_softmax(o, dim=-1)
        score = -logp.gather(-1, y.long().view(1, -1, 1).expand(o.shape[0], -1, 1)).squeeze(-1).mean(1)
    else:
        yy = y.double().view(1, -1)
        mu = o[..., 0]
        if loss_kind == "mse" or o.shape[-1] == 1:
            score = ((yy - mu) ** 2).mean(1)
        else:
            var = to_variance(o[..., 1], variance)  # type: ignore[arg-type]
            score = (0.5 * torch.log(2 * math.pi * var) + (yy - mu) ** 2 / (2 * var)).mean(1)
    return torch.where(torch.isfinite(score), score, torch.full_like(score, math.inf))


@dataclass(frozen=True)
class Overfitting:
    """How the ensemble's validation NLL went: its best and its last value.

    Attributes:
        best_epoch, best: the epoch with the lowest validation NLL and that NLL (nats).
        last_epoch, last: the last epoch and its validation NLL.
        rose: whether the last value is clearly above the best (see :data:`RISE_NATS`).
        message: one Markdown sentence with the numbers and, when it rose, what to do.
    """

    best_epoch: int
    best: float
    last_epoch: int
    last: float
    rose: bool
    message: str


def overfitting(events: Sequence[Any], *, keep_best: bool = False) -> Overfitting | None:
    """The ensemble's validation-NLL story of a run's ``events`` (``EpochEnd`` objects or dicts).

    Returns ``None`` when fewer than 2 epochs carry a finite validation NLL (no validation split,
    or too short a run to tell).  ``keep_best``: the run kept each member's best weights, so the
    message says the final members are not the last epoch's.
    """
    pts: list[tuple[int, float]] = []
    for e in events:
        get = e.get if isinstance(e, dict) else (lambda k, _e=e: getattr(_e, k, None))
        if get("kind") != "epoch":
            continue
        v = (get("val") or {}).get("nll")
        if v is not None and math.isfinite(float(v)):
            pts.append((int(get("epoch")), float(v)))
    if len(pts) < 2:
        return None
    best_epoch, best = min(pts, key=lambda p: (p[1], p[0]))
    last_epoch, last = pts[-1]
    rose = last - best >= max(RISE_NATS, RISE_FRACTION * abs(best))
    if not rose:
        msg = (f"Validation NLL ended at **{last:.3g}** nats (epoch {last_epoch}); its best was {best:.3g} "
               f"(epoch {best_epoch}): no clear overfitting.")
    elif keep_best:
        msg = (f"Validation NLL rose from **{best:.3g}** nats (epoch {best_epoch}) to **{last:.3g}** "
               f"(epoch {last_epoch}), but this run kept each member's best-validation weights: the ensemble "
               "you use is not the last epoch's.")
    else:
        msg = (f"Validation NLL rose from **{best:.3g}** nats (epoch {best_epoch}) to **{last:.3g}** "
               f"(epoch {last_epoch}): the members overfit the training data. Train for fewer epochs "
               f"(about {best_epoch}), add weight decay, or turn on *Keep each member's best-validation "
               "weights*.")
    return Overfitting(best_epoch, best, last_epoch, last, rose, msg)
