"""Paper fidelity: the UCI protocol of Lakshminarayanan et al. (2017) reproduces Table 1.

Protocol (``../shared/datasets/uci/README.md``): one hidden layer of 50 ReLU
units, M = 5 Gaussian-NLL members (softplus variance + 1e-6), 40 epochs, batch
100, Adam at lr 0.01 (the README's stable choice; the paper states 0.1), inputs
and target standardised with each training split's statistics, test RMSE and
NLL in the target's original units, mean over all 20 standard splits, seed 0.

All 20 splits are used: the published bars are over 20 splits, and a subset
would make the check noisier rather than cheaper in a meaningful way.  The
engine trains a yacht split in a fraction of a second on an idle core; the
whole module takes roughly 10-20 s on an idle 2-core machine (about 80 s when
the machine is shared by several busy processes), hence ``slow``.

What "inside" means here.  The NLL (the proper scoring rule the paper is
about) must lie inside the published mean +- std, both sides.  The RMSE must be
no worse than the published mean + std; below the band it must stay above
mean - 2 std.  Reason: with Adam at lr 0.01 the reproduction fits yacht's mean
*better* than the paper reports (RMSE about 1.0-1.2 over seeds 0-2 against the
published 1.58, while the paper's Table 1 lists PBP and MC-dropout near 1.0-1.1),
so a strict lower bound would fail a correct engine.  The 2-std floor still
catches test leakage (e.g. standardising with test statistics), which would
push the RMSE far below.  At the paper's lr 0.1 the members diverge on
several yacht splits (RMSE about 5.8).
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from ensemble_core.cli import run_uci

UCI = Path(__file__).resolve().parents[1].parent / "shared" / "datasets" / "uci"

#: Table 1 of Lakshminarayanan et al. (2017), Deep Ensembles: (mean, std) over 20 splits.
PUBLISHED = {
    "yacht": {"rmse": (1.58, 0.48), "nll": (1.18, 0.21)},
    "energy": {"rmse": (2.09, 0.29), "nll": (1.38, 0.22)},
}

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not UCI.is_dir(), reason=f"UCI benchmark data not found at {UCI}"),
]


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """Small networks train fastest on one thread (and far faster on a busy machine)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.mark.parametrize("name", sorted(PUBLISHED))
def test_uci_protocol_lands_inside_the_published_band(name):
    csv, splits = UCI / f"{name}.csv", UCI / f"{name}_splits.json"
    if not (csv.is_file() and splits.is_file()):
        pytest.skip(f"{csv.name} or {splits.name} missing from {UCI}")
    summary = run_uci(csv, splits, members=5, epochs=40, batch_size=100, lr=0.01, hidden=50, seed=0)
    assert summary["n_splits"] == 20
    report = (f"{name}: RMSE {summary['rmse_mean']:.3f} ± {summary['rmse_std']:.3f}, "
              f"NLL {summary['nll_mean']:.3f} ± {summary['nll_std']:.3f} ({summary['seconds']:.1f} s)")
    mean, std = PUBLISHED[name]["nll"]
    assert mean - std <= summary["nll_mean"] <= mean + std, f"NLL outside {mean} ± {std}; {report}"
    mean, std = PUBLISHED[name]["rmse"]
    assert summary["rmse_mean"] <= mean + std, f"RMSE worse than {mean} + {std}; {report}"
    assert summary["rmse_mean"] >= mean - 2 * std, f"RMSE suspiciously below {mean} - 2 x {std}; {report}"
