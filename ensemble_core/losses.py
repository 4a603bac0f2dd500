"""Training losses of one member, elementwise, in PyTorch.

Every function returns the *per-sample* loss (no reduction) so the engine can
average per member (``[M, B] -> [M]``) and sum members without mixing their
gradients.  The numbers follow DESIGN.md:

* variance of a regression member: ``softplus(raw) + 1e-6`` (the paper) or
  ``exp(raw)`` (the seed's log-variance head);
* Gaussian NLL ``0.5*log(var) + 0.5*(y-mu)^2/var`` (``torch.nn.GaussianNLLLoss``
  without its constant and without its ``eps`` clamp);
* beta-NLL (Seitzer et al. 2022): the Gaussian NLL times ``var.detach()**beta``.
"""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor

from .config import LossSpec

__all__ = [
    "VAR_EPS",
    "to_variance",
    "gaussian_nll",
    "beta_nll",
    "mse",
    "cross_entropy",
    "per_sample_loss",
    "loss_and_grad",
]

#: Floor added to ``softplus(raw)`` so a member's variance is never zero.
VAR_EPS = 1e-6


def to_variance(raw: Tensor, param: Literal["softplus", "logvar"] = "softplus") -> Tensor:
    """Map the raw variance output of a member to a positive variance.

    Args:
        raw: the member's second output (any shape).
        param: ``"softplus"`` -> ``softplus(raw) + 1e-6``; ``"logvar"`` -> ``exp(raw)``.

    Returns:
        The variance, same shape as ``raw``.
    """
    if param == "softplus":
        return F.softplus(raw) + VAR_EPS
    if param == "logvar":
        return torch.exp(raw)
    raise ValueError(f"variance parameterisation must be 'softplus' or 'logvar', got {param!r}")


def gaussian_nll(mu: Tensor, var: Tensor, y: Tensor) -> Tensor:
    """Elementwise Gaussian negative log-likelihood without the ``0.5*log(2*pi)`` constant.

    Args:
        mu: predicted means.
        var: predicted variances (positive).
        y: targets (broadcastable to ``mu``).

    Returns:
        ``0.5*log(var) + 0.5*(y - mu)**2 / var``.
    """
    return 0.5 * torch.log(var) + 0.5 * (y - mu) ** 2 / var


def beta_nll(mu: Tensor, var: Tensor, y: Tensor, beta: float) -> Tensor:
    """Elementwise beta-NLL (Seitzer et al. 2022): ``gaussian_nll * var.detach()**beta``.

    ``beta = 0`` is the Gaussian NLL; ``beta = 1`` gives the mean the MSE gradient.
    """
    return gaussian_nll(mu, var, y) * var.detach() ** beta


def mse(mu: Tensor, y: Tensor) -> Tensor:
    """Elementwise squared error ``(y - mu)**2`` (its mean is ``nn.MSELoss``)."""
    return (y - mu) ** 2


def cross_entropy(logits: Tensor, y: Tensor) -> Tensor:
    """Elementwise cross-entropy of class logits ``[..., C]`` and class indices ``[...]``.

    Returns the per-sample loss of shape ``y.shape`` (its mean is ``nn.CrossEntropyLoss``).
    """
    n_classes = logits.shape[-1]
    flat = F.cross_entropy(logits.reshape(-1, n_classes), y.reshape(-1), reduction="none")
    return flat.reshape(y.shape)


def per_sample_loss(out: Tensor, y: Tensor, task: str, loss: LossSpec) -> Tensor:
    """The training loss of every sample for a member output ``out [..., n_out]``.

    Args:
        out: model output; regression ``[..., 2]`` (mean, raw variance) or
            ``[..., 1]`` for MSE; classification ``[..., C]`` logits.
        y: targets of shape ``out.shape[:-1]`` (float, or int64 class indices).
        task: ``"regression"`` or ``"classification"``.
        loss: the regression loss spec (ignored for classification).

    Returns:
        Per-sample loss of shape ``out.shape[:-1]``.
    """
    if task == "classification":
        return cross_entropy(out, y)
    mu = out[..., 0]
    if loss.kind == "mse":
        return mse(mu, y)
    var = to_variance(out[..., 1], loss.variance)
    if loss.kind == "beta_nll":
        return beta_nll(mu, var, y, loss.beta)
    return gaussian_nll(mu, var, y)


def loss_and_grad(out: Tensor, y: Tensor, task: str, loss: LossSpec,
                  scale: float = 1.0, beta: Tensor | None = None) -> tuple[Tensor, Tensor]:
    """Per-sample loss and the gradient of ``scale * loss`` with respect to ``out``, without autograd.

    The same numbers as :func:`per_sample_loss` and ``torch.autograd`` (the
    backward formulas are torch's own: ``softplus_backward``, softmax minus
    one-hot, ...), computed in a handful of tensor operations so the training
    engine needs no autograd graph.  ``scale = 1/B`` gives the gradient of a
    batch mean.

    Args:
        out: member outputs ``[..., n_out]``.
        y: targets ``out.shape[:-1]``.
        task: ``"regression"`` or ``"classification"``.
        loss: the regression loss spec.
        scale: factor applied to the gradient (not to the returned loss).
        beta: beta-NLL only: a tensor broadcastable to ``out.shape[:-1]`` (e.g. ``[M, 1]``, one
            beta per member) used instead of ``loss.beta``.

    Returns:
        ``(loss, grad)``: ``loss`` has shape ``out.shape[:-1]``; ``grad`` has
        the shape of ``out`` and is ``scale * d loss[i] / d out[i, :]`` per sample.
    """
    if task == "classification":
        logp = torch.log_softmax(out, dim=-1)
        index = y.unsqueeze(-1)
        value = -logp.gather(-1, index).squeeze(-1)
        grad = torch.exp(logp).scatter_add_(-1, index, torch.full_like(logp[..., :1], -1.0))
        return value, grad if scale == 1.0 else grad * scale
    mu = out[..., 0]
    r = y - mu
    if loss.kind == "mse":
        return r * r, (r * (-2.0 * scale)).unsqueeze(-1)
    raw = out[..., 1]
    var = F.softplus(raw) + VAR_EPS if loss.variance == "softplus" else torch.exp(raw)
    inv = torch.reciprocal(var)
    a = r * inv  # (y - mu) / var
    q = r * a  # (y - mu)^2 / var
    value = 0.5 * (torch.log(var) + q)
    # d/dmu = -(y - mu) / var ;  d/dvar = 0.5 * (1 - q) / var
    if loss.kind == "beta_nll":
        w = var ** (loss.beta if beta is None else beta)
        value = value * w
        ws = w * scale
        d_mu = -a * ws
        d_var = torch.addcmul(inv, q, inv, value=-1.0) * (0.5 * ws)
    else:
        d_mu = a * (-scale)
        d_var = torch.addcmul(inv, q, inv, value=-1.0) * (0.5 * scale)
    if loss.variance == "softplus":
        d_raw = torch.ops.aten.softplus_backward(d_var, raw, 1.0, 20.0)
    else:
        d_raw = d_var * var
    return value, torch.stack([d_mu, d_raw], dim=-1)
