"""All members of an ensemble in one module: an MLP with stacked parameters.

``StackedMLP`` holds ``M`` independent MLPs.  Layer ``l`` has a weight
``[M, in, out]`` and a bias ``[M, 1, out]``; one batched product per layer
(:func:`affine`) runs every member at once.  Members never share parameters, so training the stack
with a sum of member losses and an elementwise optimiser (Adam, SGD) is exactly
training each member on its own.

The plain single-member network is :func:`build_member` (an ``nn.Sequential`` of
``nn.Linear`` and activations, as the seed documents build it).  Members are
initialised by seeding torch and building that very ``nn.Sequential``
(:func:`init_member`), so the stack and the plain loops of
:mod:`ensemble_core.reference` start from the same weights bit for bit.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .config import ModelSpec
from .shapes import layer_sizes

_RNG_LOCK = threading.Lock()

#: A layer with at most this many outputs is multiplied in transposed form in the training pass
#: (``StackedMLP.forward_cached``/``backward``): MKL's batched gemm is several times slower for a
#: result only a few columns wide than for its transpose (measured in ``docs/decisions.md``).
NARROW = 4

__all__ = ["ACTIVATIONS", "affine", "build_member", "init_member", "dropout_masks", "dropout_seed", "StackedMLP"]

#: Backward of each activation, as autograd computes it: ``(grad, pre-activation z, output h) -> grad_z``.
_ACT_BACKWARD = {
    "relu": lambda g, z, h: torch.ops.aten.threshold_backward(g, h, 0.0),
    "tanh": lambda g, z, h: torch.ops.aten.tanh_backward(g, h),
    "gelu": lambda g, z, h: torch.ops.aten.gelu_backward(g, z),
    "silu": lambda g, z, h: torch.ops.aten.silu_backward(g, z),
}

#: Hidden activations: module class (for the plain member) and function (for the stack).
ACTIVATIONS: dict[str, tuple[type[nn.Module], object]] = {
    "relu": (nn.ReLU, F.relu),
    "tanh": (nn.Tanh, torch.tanh),
    "gelu": (nn.GELU, F.gelu),
    "silu": (nn.SiLU, F.silu),
}


def build_member(in_features: int, out_features: int, spec: ModelSpec) -> nn.Sequential:
    """One plain member: ``Linear -> act -> ... -> Linear`` with PyTorch's default init.

    Draws its initial weights from torch's global RNG (seed it first, or use
    :func:`init_member`).
    """
    act_cls = ACTIVATIONS[spec.activation][0]
    layers: list[nn.Module] = []
    sizes = layer_sizes(in_features, out_features, spec)
    for i, (fan_in, fan_out) in enumerate(sizes):
        layers.append(nn.Linear(fan_in, fan_out))
        if i < len(sizes) - 1:
            layers.append(act_cls())
    return nn.Sequential(*layers)


def init_member(seed: int, in_features: int, out_features: int, spec: ModelSpec) -> nn.Sequential:
    """Build a member after seeding torch's CPU generator with ``seed``, restoring the caller's RNG state.

    The weights are bit for bit those of ``torch.manual_seed(seed); build_member(...)``
    (the layers are created on the CPU); only the CPU generator is seeded, so no
    CUDA seed is queued behind the caller's back.
    """
    # torch's CPU generator is process-global: hold a lock so members initialised at the
    # same time in other threads (parallel jobs) cannot interleave their draws.
    with _RNG_LOCK, torch.random.fork_rng(devices=[]):
        torch.default_generator.manual_seed(seed)
        return build_member(in_features, out_features, spec)


#: Added to a run's seed to seed its dropout-mask generator in training (:func:`dropout_seed`).
DROPOUT_TRAIN_OFFSET = 1_000_003
#: Added to a run's seed to seed the generator of its stochastic passes at prediction.
DROPOUT_PREDICT_OFFSET = 2_000_029


def dropout_seed(seed: int, *, predict: bool = False) -> int:
    """Seed of the dropout-mask generator of a run with seed ``seed`` (training or prediction)."""
    return int(seed) + (DROPOUT_PREDICT_OFFSET if predict else DROPOUT_TRAIN_OFFSET)


def dropout_masks(generator: torch.Generator, n_members: int, rows: int, widths: Sequence[int], rate: float,
                  dtype: torch.dtype = torch.float32) -> list[Tensor]:
    """Inverted-dropout masks for one pass: per hidden layer a ``[n_members, rows, width]`` tensor.

    An entry is ``1 / (1 - rate)`` where the unit is kept (probability ``1 - rate``) and 0 where it
    is dropped; multiplying a hidden layer's output by it is ``nn.Dropout(rate)`` in training mode.
    The draws are ``torch.rand`` from ``generator`` (on its device), one call per layer in layer
    order, so a plain per-network loop that draws the same shapes from an equally seeded generator
    and takes row ``k`` reproduces network ``k``'s masks exactly.
    """
    keep = 1.0 - float(rate)
    return [(torch.rand(n_members, rows, w, generator=generator, device=generator.device) < keep).to(dtype) / keep
            for w in widths]


def _linears(member: nn.Sequential) -> list[nn.Linear]:
    return [m for m in member if isinstance(m, nn.Linear)]


def affine(h: Tensor, w: Tensor, b: Tensor) -> Tensor:
    """One stacked layer's ``h @ w + b`` (``[M, N, in] x [M, in, out] + [M, 1, out] -> [M, N, out]``).

    The product is chosen by shape, with the same result as ``torch.baddbmm(b, h, w)`` to float
    round-off: one input feature (1-D data) is an outer product (``addcmul``, ~8x cheaper than a
    gemm of inner size 1), and a result at most :data:`NARROW` columns wide is computed in
    transposed form (then ``[M, N, out]`` is a view of a ``[M, out, N]`` tensor).  Works with
    autograd.
    """
    if w.shape[1] == 1:
        return torch.addcmul(b, h, w)
    if w.shape[2] <= NARROW:
        return torch.baddbmm(b.transpose(1, 2), w.transpose(1, 2), h.transpose(1, 2)).transpose(1, 2)
    return torch.baddbmm(b, h, w)


class StackedMLP(nn.Module):
    """``n_members`` MLPs with stacked parameters, evaluated in one batched program.

    Args:
        n_members: number of members ``M``.
        in_features: input dimension ``d``.
        out_features: outputs per member (2 for Gaussian NLL: mean and raw
            variance; 1 for MSE; ``C`` logits for classification).
        spec: hidden layers, width and activation.

    Parameters ``weights[l]`` are ``[M, fan_in, fan_out]`` and ``biases[l]``
    ``[M, 1, fan_out]``.  The constructor arguments are kept as attributes so a
    ``state_dict()`` can be loaded into ``StackedMLP(m.n_members, m.in_features,
    m.out_features, m.spec)``.  A fresh module is initialised member by member
    from seeds ``0..M-1`` (use :meth:`from_seeds` to choose them).
    """

    def __init__(self, n_members: int, in_features: int, out_features: int, spec: ModelSpec) -> None:
        super().__init__()
        self._allocate(n_members, in_features, out_features, spec)
        with torch.no_grad():
            for i in range(n_members):
                self.set_member(i, init_member(i, in_features, out_features, spec))

    def _allocate(self, n_members: int, in_features: int, out_features: int, spec: ModelSpec) -> None:
        if n_members < 1:
            raise ValueError(f"n_members must be at least 1, got {n_members}")
        if in_features < 1 or out_features < 1:
            raise ValueError(f"in_features and out_features must be positive, got {in_features}, {out_features}")
        self.n_members = int(n_members)
        self.in_features = int(in_features)
        self.out_features = int(out_features)
        self.spec = spec
        sizes = layer_sizes(in_features, out_features, spec)
        self.weights = nn.ParameterList(
            [nn.Parameter(torch.empty(n_members, fi, fo)) for fi, fo in sizes])
        self.biases = nn.ParameterList(
            [nn.Parameter(torch.empty(n_members, 1, fo)) for _, fo in sizes])

    # ----------------------------------------------------------- construction
    @classmethod
    def from_members(cls, members: Sequence[nn.Sequential], in_features: int, out_features: int,
                     spec: ModelSpec) -> StackedMLP:
        """Stack plain members built by :func:`build_member` (their weights are copied)."""
        model = cls.__new__(cls)
        nn.Module.__init__(model)
        model._allocate(len(members), in_features, out_features, spec)
        with torch.no_grad():
            for i, member in enumerate(members):
                model.set_member(i, member)
        return model

    @classmethod
    def from_flat(cls, flat: Tensor, in_features: int, out_features: int, spec: ModelSpec) -> StackedMLP:
        """A stack whose members are the rows of a ``[M, P]`` tensor (see :meth:`flat_parameters`)."""
        model = cls.__new__(cls)
        nn.Module.__init__(model)
        model._allocate(flat.shape[0], in_features, out_features, spec)
        model.to(flat.device)
        model.load_flat(flat)
        return model

    @classmethod
    def from_seeds(cls, seeds: Sequence[int], in_features: int, out_features: int,
                   spec: ModelSpec) -> StackedMLP:
        """Members initialised exactly as ``init_member(seed, ...)`` for each seed."""
        members = [init_member(s, in_features, out_features, spec) for s in seeds]
        return cls.from_members(members, in_features, out_features, spec)

    # ---------------------------------------------------------------- forward
    @property
    def n_layers(self) -> int:
        return len(self.weights)

    def forward(self, x: Tensor) -> Tensor:
        """Run every member: ``x [N, d]`` (shared) or ``[M, N, d]`` -> ``[M, N, out]``."""
        return self.forward_with(x, list(self.weights), list(self.biases))

    @property
    def hidden_widths(self) -> list[int]:
        """Width of each hidden layer's output (the shapes :func:`dropout_masks` draws)."""
        return [int(w.shape[2]) for w in self.weights[:-1]]

    def forward_with(self, x: Tensor, weights: Sequence[Tensor], biases: Sequence[Tensor],
                     masks: Sequence[Tensor] | None = None) -> Tensor:
        """:meth:`forward` with explicit parameters (e.g. views of a flat buffer).

        ``masks`` (from :func:`dropout_masks`, one per hidden layer, ``[M, N, width]``) multiply each
        hidden layer's output: MC dropout.  ``None`` (the default) is the plain network.
        """
        act = ACTIVATIONS[self.spec.activation][1]
        m = weights[0].shape[0]
        if x.dim() == 2:
            x = x.unsqueeze(0).expand(m, -1, -1)
        elif x.dim() != 3 or x.shape[0] != m:
            raise ValueError(f"input must be [N, d] or [{m}, N, d], got shape {tuple(x.shape)}")
        h = x
        last = len(weights) - 1
        for i, (w, b) in enumerate(zip(weights, biases)):
            h = affine(h, w, b)
            if i < last:
                h = act(h)  # type: ignore[operator]
                if masks is not None:
                    h = h * masks[i]
        return h

    def forward_cached(self, x: Tensor, weights: Sequence[Tensor], biases: Sequence[Tensor],
                       masks: Sequence[Tensor] | None = None) -> tuple[Tensor, list[tuple[Tensor, Tensor, Tensor]]]:
        """Forward pass ``[M, N, d] -> [M, N, out]`` that keeps what :meth:`backward` needs.

        Returns the output and, per layer, ``(input, pre-activation, output)``; with dropout
        ``masks`` (see :meth:`forward_with`) a layer's input is the previous layer's output times
        its mask, and its output is the activation before the mask.  Pass the same ``masks`` to
        :meth:`backward`.
        """
        act = ACTIVATIONS[self.spec.activation][1]
        cache = []
        h = x
        last = len(weights) - 1
        for i, (w, b) in enumerate(zip(weights, biases)):
            z = affine(h, w, b)
            out = act(z) if i < last else z  # type: ignore[operator]
            cache.append((h, z, out))
            h = out if masks is None or i == last else out * masks[i]
        return h, cache

    def backward(self, cache: list[tuple[Tensor, Tensor, Tensor]], grad_out: Tensor,
                 weights: Sequence[Tensor], grad_weights: Sequence[Tensor], grad_biases: Sequence[Tensor],
                 *, accumulate: bool = False, input_grad: bool = False,
                 masks: Sequence[Tensor] | None = None) -> Tensor | None:
        """Backpropagate ``grad_out [M, N, out]`` through a :meth:`forward_cached` pass, by hand.

        Writes (or with ``accumulate`` adds) the parameter gradients into
        ``grad_weights``/``grad_biases`` (tensors shaped like the parameters)
        with batched matrix products; no autograd graph is built.  The
        activation backward formulas are torch's own.  Returns the gradient
        with respect to the input when ``input_grad`` (for FGSM), else None.  ``masks``: the
        dropout masks of the :meth:`forward_cached` pass (None without dropout).
        """
        act_backward = _ACT_BACKWARD[self.spec.activation]
        g = grad_out
        for i in range(len(cache) - 1, -1, -1):
            h_in = cache[i][0]
            h_t = h_in.transpose(1, 2)
            if g.shape[2] <= NARROW:  # few outputs: (g^T h)^T, see forward_cached
                gw = torch.bmm(g.transpose(1, 2), h_in).transpose(1, 2)
                if accumulate:
                    grad_weights[i].add_(gw)
                    grad_biases[i].add_(g.sum(1, keepdim=True))
                else:
                    grad_weights[i].copy_(gw)
                    torch.sum(g, 1, keepdim=True, out=grad_biases[i])
            elif accumulate:
                grad_weights[i].baddbmm_(h_t, g)
                grad_biases[i].add_(g.sum(1, keepdim=True))
            else:
                torch.bmm(h_t, g, out=grad_weights[i])
                torch.sum(g, 1, keepdim=True, out=grad_biases[i])
            if i > 0 or input_grad:
                g = torch.bmm(g, weights[i].transpose(1, 2))
                if i > 0:
                    _, z_prev, h_prev = cache[i - 1]
                    if masks is not None:
                        g = g * masks[i - 1]
                    g = act_backward(g, z_prev, h_prev)
        return g if input_grad else None

    # ------------------------------------------------------- flat parameters
    def param_sizes(self) -> list[int]:
        """Per-member element count of each parameter, in the order W0, b0, W1, b1, ..."""
        sizes = []
        for w, b in zip(self.weights, self.biases):
            sizes += [w[0].numel(), b[0].numel()]
        return sizes

    def flat_parameters(self) -> Tensor:
        """A detached copy of all parameters as one ``[M, P]`` tensor (row = member)."""
        parts = []
        for w, b in zip(self.weights, self.biases):
            parts += [w.detach().reshape(self.n_members, -1), b.detach().reshape(self.n_members, -1)]
        return torch.cat(parts, dim=1)

    def unflatten(self, flat: Tensor) -> tuple[list[Tensor], list[Tensor]]:
        """Views of a ``[M, P]`` tensor shaped like :attr:`weights` and :attr:`biases`."""
        weights, biases = [], []
        offset = 0
        for w, b in zip(self.weights, self.biases):
            for target, shape in ((weights, w.shape[1:]), (biases, b.shape[1:])):
                n = shape.numel()
                target.append(flat[:, offset:offset + n].view(flat.shape[0], *shape))
                offset += n
        return weights, biases

    @torch.no_grad()
    def forward_flat(self, x: Tensor, flat: Tensor) -> Tensor:
        """Outputs ``[R, N, out]`` (no autograd) of the members whose weights are the rows of ``flat [R, P]``
        (the :meth:`flat_parameters` layout) on ``x [N, d]`` or ``[R, N, d]``."""
        return self.forward_with(x, *self.unflatten(flat))

    @torch.no_grad()
    def load_flat(self, flat: Tensor) -> None:
        """Copy a ``[M, P]`` tensor (see :meth:`flat_parameters`) into the parameters."""
        weights, biases = self.unflatten(flat)
        for p, v in zip(list(self.weights) + list(self.biases), weights + biases):
            p.copy_(v)

    # ------------------------------------------------------ member access
    def member(self, i: int) -> nn.Sequential:
        """Member ``i`` as a plain ``nn.Sequential`` (a copy, on the module's device)."""
        self._check_index(i)
        seq = build_member(self.in_features, self.out_features, self.spec).to(self.weights[0].device)
        with torch.no_grad():
            for lin, w, b in zip(_linears(seq), self.weights, self.biases):
                lin.weight.copy_(w[i].T)
                lin.bias.copy_(b[i, 0])
        return seq

    def members_as_sequential(self) -> list[nn.Sequential]:
        """Every member as a plain ``nn.Sequential``."""
        return [self.member(i) for i in range(self.n_members)]

    @torch.no_grad()
    def set_member(self, i: int, member: nn.Sequential) -> None:
        """Overwrite member ``i`` with the weights of a plain member of the same architecture."""
        self._check_index(i)
        lins = _linears(member)
        if len(lins) != self.n_layers:
            raise ValueError(f"member has {len(lins)} linear layers, expected {self.n_layers}")
        for lin, w, b in zip(lins, self.weights, self.biases):
            if tuple(lin.weight.shape) != (w.shape[2], w.shape[1]):
                raise ValueError(f"layer shape {tuple(lin.weight.shape)} does not match "
                                 f"{(w.shape[2], w.shape[1])}")
            w[i].copy_(lin.weight.T)
            b[i, 0].copy_(lin.bias)

    def select(self, indices: Sequence[int]) -> StackedMLP:
        """A new module holding copies of the members ``indices`` (in that order)."""
        idx = [int(i) for i in indices]
        if not idx:
            raise ValueError("select needs at least one member index")
        for i in idx:
            self._check_index(i)
        out = StackedMLP.__new__(StackedMLP)
        nn.Module.__init__(out)
        out.n_members = len(idx)
        out.in_features = self.in_features
        out.out_features = self.out_features
        out.spec = self.spec
        index = torch.tensor(idx, device=self.weights[0].device)
        out.weights = nn.ParameterList([nn.Parameter(w.detach()[index].clone()) for w in self.weights])
        out.biases = nn.ParameterList([nn.Parameter(b.detach()[index].clone()) for b in self.biases])
        out.train(self.training)
        return out

    def _check_index(self, i: int) -> None:
        if not 0 <= i < self.n_members:
            raise IndexError(f"member index {i} out of range for {self.n_members} members")

    def extra_repr(self) -> str:
        return (f"n_members={self.n_members}, in_features={self.in_features}, "
                f"out_features={self.out_features}, hidden_layers={self.spec.hidden_layers}, "
                f"width={self.spec.width}, activation={self.spec.activation!r}")
