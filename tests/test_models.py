"""StackedMLP: every member equals its plain nn.Sequential."""

from __future__ import annotations

import pytest
import torch

from ensemble_core.config import ModelSpec
from ensemble_core.models import StackedMLP, build_member, init_member

SPEC = ModelSpec(hidden_layers=2, width=8, activation="relu")


@pytest.mark.parametrize("activation", ["relu", "tanh", "gelu", "silu"])
def test_stack_matches_plain_members(activation: str) -> None:
    spec = ModelSpec(hidden_layers=2, width=8, activation=activation)
    members = [init_member(s, 3, 2, spec) for s in (11, 12, 13)]
    model = StackedMLP.from_members(members, 3, 2, spec)
    x = torch.randn(7, 3, generator=torch.Generator().manual_seed(0))
    out = model(x)
    assert out.shape == (3, 7, 2)
    for i, member in enumerate(members):
        torch.testing.assert_close(out[i], member(x), rtol=1e-6, atol=1e-6)
    # per-member inputs [M, N, d]
    xm = torch.randn(3, 4, 3, generator=torch.Generator().manual_seed(1))
    out_m = model(xm)
    for i, member in enumerate(members):
        torch.testing.assert_close(out_m[i], member(xm[i]), rtol=1e-6, atol=1e-6)


def test_layout_and_constructor_attributes() -> None:
    model = StackedMLP(4, 3, 5, SPEC)
    assert [tuple(w.shape) for w in model.weights] == [(4, 3, 8), (4, 8, 8), (4, 8, 5)]
    assert [tuple(b.shape) for b in model.biases] == [(4, 1, 8), (4, 1, 8), (4, 1, 5)]
    assert (model.n_members, model.in_features, model.out_features, model.spec) == (4, 3, 5, SPEC)


def test_init_is_seeded_and_does_not_touch_global_rng() -> None:
    torch.manual_seed(123)
    before = torch.get_rng_state()
    a = init_member(7, 2, 1, SPEC)
    b = init_member(7, 2, 1, SPEC)
    c = init_member(8, 2, 1, SPEC)
    assert torch.equal(torch.get_rng_state(), before)
    torch.manual_seed(7)
    d = build_member(2, 1, SPEC)
    for pa, pb, pd in zip(a.parameters(), b.parameters(), d.parameters()):
        assert torch.equal(pa, pb) and torch.equal(pa, pd)
    assert not torch.equal(a[0].weight, c[0].weight)


def test_member_roundtrip_and_select() -> None:
    model = StackedMLP.from_seeds([1, 2, 3], 2, 2, SPEC)
    x = torch.randn(6, 2)
    full = model(x)
    for i in range(3):
        torch.testing.assert_close(model.member(i)(x), full[i], rtol=1e-6, atol=1e-6)
    sub = model.select([2, 0])
    assert sub.n_members == 2
    assert torch.equal(sub(x), full[[2, 0]])
    one = model.select([1])
    assert torch.equal(one(x)[0], full[1])
    with pytest.raises(IndexError, match="out of range"):
        model.select([3])
    with pytest.raises(ValueError, match="at least one"):
        model.select([])


def test_state_dict_roundtrip_via_constructor_args() -> None:
    model = StackedMLP.from_seeds([5, 6], 2, 3, SPEC)
    rebuilt = StackedMLP(model.n_members, model.in_features, model.out_features, model.spec)
    x = torch.randn(4, 2)
    assert not torch.equal(rebuilt(x), model(x))
    rebuilt.load_state_dict(model.state_dict())
    assert torch.equal(rebuilt(x), model(x))


def test_flat_parameters_roundtrip() -> None:
    model = StackedMLP.from_seeds([1, 2], 3, 2, SPEC)
    flat = model.flat_parameters()
    assert flat.shape == (2, sum(model.param_sizes()))
    w, b = model.unflatten(flat)
    x = torch.randn(5, 3)
    assert torch.equal(model.forward_with(x, w, b), model(x))
    other = StackedMLP(2, 3, 2, SPEC)
    other.load_flat(flat)
    assert torch.equal(other(x), model(x))
    rebuilt = StackedMLP.from_flat(flat, 3, 2, SPEC)
    assert torch.equal(rebuilt(x), model(x)) and rebuilt.n_members == 2


def test_bad_shapes_raise() -> None:
    model = StackedMLP(2, 3, 1, SPEC)
    with pytest.raises(ValueError, match=r"\[N, d\]"):
        model(torch.randn(3, 5, 3))
    with pytest.raises(ValueError, match="linear layers"):
        model.set_member(0, build_member(3, 1, ModelSpec(hidden_layers=1, width=8)))
    with pytest.raises(ValueError, match="n_members"):
        StackedMLP(0, 3, 1, SPEC)


@pytest.mark.parametrize("activation", ["relu", "tanh", "gelu", "silu"])
def test_manual_backward_matches_autograd(activation: str) -> None:
    spec = ModelSpec(hidden_layers=2, width=6, activation=activation)
    model = StackedMLP.from_seeds([1, 2, 3], 2, 3, spec).double()
    g = torch.Generator().manual_seed(0)
    x = torch.randn(3, 5, 2, generator=g, dtype=torch.float64, requires_grad=True)
    grad_out = torch.randn(3, 5, 3, generator=g, dtype=torch.float64)
    (model(x) * grad_out).sum().backward()
    weights = [w.detach() for w in model.weights]
    biases = [b.detach() for b in model.biases]
    gw = [torch.empty_like(w) for w in weights]
    gb = [torch.empty_like(b) for b in biases]
    out, cache = model.forward_cached(x.detach(), weights, biases)
    torch.testing.assert_close(out, model(x).detach())
    gx = model.backward(cache, grad_out, weights, gw, gb, input_grad=True)
    for mine, p in zip(gw + gb, list(model.weights) + list(model.biases)):
        torch.testing.assert_close(mine, p.grad)
    torch.testing.assert_close(gx, x.grad)
    # accumulate adds a second pass on top
    assert model.backward(cache, grad_out, weights, gw, gb, accumulate=True) is None
    for mine, p in zip(gw + gb, list(model.weights) + list(model.biases)):
        torch.testing.assert_close(mine, 2 * p.grad)


@pytest.mark.parametrize("d_in,d_out", [(1, 50), (50, 2), (50, 50), (3, 4)])
def test_affine_equals_baddbmm_and_its_gradients(d_in: int, d_out: int) -> None:
    """models.affine picks the product by shape (outer product, transposed narrow product, baddbmm):
    the same values and autograd gradients as torch.baddbmm, for a shared and a per-member input."""
    from ensemble_core.models import affine

    g = torch.Generator().manual_seed(d_in * 100 + d_out)
    for shared in (False, True):
        h = torch.randn(1 if shared else 6, 33, d_in, generator=g).expand(6, -1, -1).clone().requires_grad_()
        w = torch.randn(6, d_in, d_out, generator=g, requires_grad=True)
        b = torch.randn(6, 1, d_out, generator=g, requires_grad=True)
        got, want = affine(h, w, b), torch.baddbmm(b, h, w)
        assert got.shape == want.shape == (6, 33, d_out)
        torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5)
        up = torch.randn(6, 33, d_out, generator=g)
        grads_got = torch.autograd.grad(got, (h, w, b), up)
        grads_want = torch.autograd.grad(want, (h, w, b), up)
        for a, e in zip(grads_got, grads_want):
            torch.testing.assert_close(a, e, rtol=1e-5, atol=1e-4)
