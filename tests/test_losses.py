"""Losses against PyTorch's own implementations."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from ensemble_core.config import LossSpec
from ensemble_core.losses import (
    beta_nll,
    cross_entropy,
    gaussian_nll,
    loss_and_grad,
    mse,
    per_sample_loss,
    to_variance,
)

HALF_LOG_2PI = 0.5 * math.log(2 * math.pi)


def _data(n: int = 50, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    mu = torch.randn(n, generator=g, dtype=torch.float64)
    raw = torch.randn(n, generator=g, dtype=torch.float64)
    y = torch.randn(n, generator=g, dtype=torch.float64) * 2
    return mu, raw, y


def test_to_variance_softplus_and_logvar() -> None:
    raw = torch.tensor([-30.0, -1.0, 0.0, 2.0], dtype=torch.float64)
    torch.testing.assert_close(to_variance(raw, "softplus"), torch.log1p(torch.exp(raw)) + 1e-6)
    torch.testing.assert_close(to_variance(raw, "logvar"), torch.exp(raw))
    assert to_variance(raw, "softplus").min() >= 1e-6
    with pytest.raises(ValueError, match="softplus"):
        to_variance(raw, "bogus")  # type: ignore[arg-type]


def test_gaussian_nll_matches_torch_up_to_constant() -> None:
    mu, raw, y = _data()
    var = to_variance(raw)
    ours = gaussian_nll(mu, var, y)
    # GaussianNLLLoss clamps var at eps (default 1e-6); our variances are >= 1e-6 already,
    # and full=True adds the 0.5*log(2*pi) constant.
    ref = torch.nn.GaussianNLLLoss(full=True, reduction="none", eps=1e-12)(mu, y, var)
    torch.testing.assert_close(ours + HALF_LOG_2PI, ref)
    ref_mean = torch.nn.GaussianNLLLoss(reduction="mean", eps=1e-12)(mu, y, var)
    torch.testing.assert_close(ours.mean(), ref_mean)


def test_gaussian_nll_gradients_match_torch() -> None:
    mu, raw, y = _data(seed=1)
    mu1, raw1 = mu.clone().requires_grad_(), raw.clone().requires_grad_()
    mu2, raw2 = mu.clone().requires_grad_(), raw.clone().requires_grad_()
    gaussian_nll(mu1, to_variance(raw1), y).mean().backward()
    torch.nn.GaussianNLLLoss(eps=1e-12)(mu2, y, F.softplus(raw2) + 1e-6).backward()
    torch.testing.assert_close(mu1.grad, mu2.grad)
    torch.testing.assert_close(raw1.grad, raw2.grad)


def test_seed_logvar_form() -> None:
    mu, logvar, y = _data(seed=2)
    seed_loss = 0.5 * (y - mu) ** 2 / torch.exp(logvar) + 0.5 * logvar
    torch.testing.assert_close(gaussian_nll(mu, to_variance(logvar, "logvar"), y), seed_loss)


def test_beta_nll_weights_by_detached_variance() -> None:
    mu, raw, y = _data(seed=3)
    raw = raw.requires_grad_()
    var = to_variance(raw)
    for beta in (0.0, 0.5, 1.0):
        torch.testing.assert_close(beta_nll(mu, var, y, beta), gaussian_nll(mu, var, y) * var.detach() ** beta)
    torch.testing.assert_close(beta_nll(mu, var, y, 0.0), gaussian_nll(mu, var, y))
    # beta = 1: the gradient w.r.t. the mean equals the MSE gradient (y - mu) * -1 ... per sample
    mu_p = mu.clone().requires_grad_()
    beta_nll(mu_p, var.detach(), y, 1.0).sum().backward()
    torch.testing.assert_close(mu_p.grad, -(y - mu))


def test_mse_and_cross_entropy_match_torch() -> None:
    mu, _, y = _data(seed=4)
    torch.testing.assert_close(mse(mu, y).mean(), F.mse_loss(mu, y))
    g = torch.Generator().manual_seed(5)
    logits = torch.randn(3, 7, 4, generator=g)
    labels = torch.randint(0, 4, (3, 7), generator=g)
    ours = cross_entropy(logits, labels)
    assert ours.shape == (3, 7)
    for m in range(3):
        torch.testing.assert_close(ours[m].mean(), F.cross_entropy(logits[m], labels[m]))


def test_per_sample_loss_dispatch() -> None:
    g = torch.Generator().manual_seed(6)
    out = torch.randn(2, 5, 2, generator=g)
    y = torch.randn(2, 5, generator=g)
    torch.testing.assert_close(per_sample_loss(out, y, "regression", LossSpec("nll")),
                               gaussian_nll(out[..., 0], to_variance(out[..., 1]), y))
    torch.testing.assert_close(per_sample_loss(out, y, "regression", LossSpec("nll", variance="logvar")),
                               gaussian_nll(out[..., 0], torch.exp(out[..., 1]), y))
    torch.testing.assert_close(per_sample_loss(out, y, "regression", LossSpec("beta_nll", beta=0.3)),
                               beta_nll(out[..., 0], to_variance(out[..., 1]), y, 0.3))
    torch.testing.assert_close(per_sample_loss(out[..., :1], y, "regression", LossSpec("mse")),
                               (out[..., 0] - y) ** 2)


@pytest.mark.parametrize("kind,variance", [("nll", "softplus"), ("nll", "logvar"), ("beta_nll", "softplus"),
                                           ("beta_nll", "logvar"), ("mse", "softplus")])
def test_loss_and_grad_matches_autograd_regression(kind: str, variance: str) -> None:
    spec = LossSpec(kind=kind, variance=variance, beta=0.7)  # type: ignore[arg-type]
    g = torch.Generator().manual_seed(7)
    n_out = 1 if kind == "mse" else 2
    out = (torch.randn(3, 9, n_out, generator=g, dtype=torch.float64) * 3).requires_grad_()
    with torch.no_grad():
        out[0, 0, -1] = 25.0  # softplus above its threshold (20)
        out[0, 1, -1] = -30.0
    y = torch.randn(3, 9, generator=g, dtype=torch.float64)
    ref = per_sample_loss(out, y, "regression", spec)
    (ref_grad,) = torch.autograd.grad(ref.sum(), out)
    value, grad = loss_and_grad(out.detach(), y, "regression", spec)
    torch.testing.assert_close(value, ref.detach())
    torch.testing.assert_close(grad, ref_grad)


def test_loss_and_grad_matches_autograd_classification() -> None:
    g = torch.Generator().manual_seed(8)
    logits = (torch.randn(2, 11, 4, generator=g, dtype=torch.float64) * 4).requires_grad_()
    y = torch.randint(0, 4, (2, 11), generator=g)
    ref = per_sample_loss(logits, y, "classification", LossSpec())
    (ref_grad,) = torch.autograd.grad(ref.sum(), logits)
    value, grad = loss_and_grad(logits.detach(), y, "classification", LossSpec())
    torch.testing.assert_close(value, ref.detach())
    torch.testing.assert_close(grad, ref_grad)


def test_loss_and_grad_scale_scales_only_the_gradient() -> None:
    g = torch.Generator().manual_seed(9)
    out = torch.randn(2, 5, 2, generator=g, dtype=torch.float64)
    y = torch.randn(2, 5, generator=g, dtype=torch.float64)
    for spec in (LossSpec("nll"), LossSpec("beta_nll", beta=0.4), LossSpec("mse")):
        o = out[..., :1] if spec.kind == "mse" else out
        v1, g1 = loss_and_grad(o, y, "regression", spec)
        v2, g2 = loss_and_grad(o, y, "regression", spec, scale=0.25)
        torch.testing.assert_close(v1, v2)
        torch.testing.assert_close(g2, 0.25 * g1)
