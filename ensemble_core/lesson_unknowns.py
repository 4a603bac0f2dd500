"""The "Known unknowns" lesson: digits 0–4 in training, 5–9 only in the test (the paper's Section 3.5, small).

Kept in its own module so :mod:`ensemble_core.lessons` only lists it; its figures and the numbers in
their captions come from the lesson's own run (:func:`unknowns_figures`).
"""

from __future__ import annotations

from typing import Any

import plotly.graph_objects as go

from .config import DataSpec, ModelSpec, OptimSpec, RunConfig, StrategySpec

__all__ = ["DIGITS_UNSEEN", "known_unknowns_lesson", "unknowns_figures", "unknowns_numbers"]

#: scikit-learn's bundled 8x8 digits (1,797 rows, 64 features), trained on 0–4 only.
DIGITS_UNSEEN = DataSpec(source="bundled", name="digits", seed=0, val_fraction=0.2, test_fraction=0.2,
                         held_out=(5, 6, 7, 8, 9))
_CONFIG = RunConfig(
    data=DIGITS_UNSEEN,
    model=ModelSpec(hidden_layers=2, width=64),
    strategy=StrategySpec(kind="independent", members=5),
    optim=OptimSpec(optimizer="adam", lr=0.003, batch_size=32, epochs=15, schedule="cosine"),
    seed=0,
)


def known_unknowns_lesson() -> Any:
    """The lesson (a :class:`~ensemble_core.lessons.Lesson` with the ``"unknowns"`` view)."""
    from .lessons import Lesson, Panel

    return Lesson(
        id="unknowns",
        title="Known unknowns: digits never seen",
        goal=("Five networks learn the handwritten digits 0–4 only. Then they meet 5–9. Does their uncertainty "
              "rise on digits they have never seen — and does the ensemble notice more often than one network?"),
        look_for=(
            "Entropy histograms: the unseen digits (orange) sit to the right of the seen ones (blue).",
            "The AUROC above each histogram: the ensemble's entropy separates unseen from seen digits better than "
            "one network's (compare the numbers of your run).",
            "Mutual information — the members' disagreement — is near zero on seen digits and several times "
            "higher on unseen ones.",
            "Abstain when unsure: raising the confidence threshold raises the accuracy on the digits still "
            "answered, and most unseen digits are no longer answered (one network and the ensemble are close "
            "here; compare their curves).",
        ),
        panels=(Panel("5 networks, digits 0–4", _CONFIG),),
        view="unknowns",  # type: ignore[arg-type]
        question="A network trained on digits 0–4 is shown a 7. What can it answer, and what should it do?",
        answer=(
            "It can only answer 0–4: its softmax has no 'none of these' option, so it must spread its probability "
            "over classes it knows, and one network often does so confidently. Averaging several independently "
            "trained networks helps: they tend to disagree on inputs unlike their training data, so the averaged "
            "probabilities are flatter (higher entropy) and the mutual information is high. Neither is perfect — "
            "some unseen digits look like seen ones — so in practice you set a confidence threshold and abstain "
            "(hand the input to a person) below it."
        ),
        source="Lakshminarayanan et al. (2017), Section 3.5 (trained on MNIST, tested on NotMNIST), on 8x8 digits",
    )


def unknowns_numbers(run: Any, dataset: Any) -> Any:
    """:func:`ensemble_core.ood.known_unknowns` of the run's first member against all its healthy members."""
    from .ood import known_unknowns
    from .predict import predict

    members = list(run.healthy)
    held = tuple(run.config.data.held_out) or tuple(dataset.held_out)
    ens = predict(run, dataset.x_test, members=members)
    one = predict(run, dataset.x_test, members=members[:1])
    return known_unknowns(one, ens, dataset.y_test, held)


def unknowns_figures(run: Any, dataset: Any) -> list[tuple[str, str, go.Figure]]:
    """The lesson's figures, captioned with the run's own AUROCs."""
    from .viz_posthoc import abstain_figure, entropy_histograms

    ku = unknowns_numbers(run, dataset)
    better = ku.auroc_entropy_ensemble - ku.auroc_entropy_single
    verdict = ("better than" if better > 0.005 else "worse than" if better < -0.005 else "about as good as")
    hist = (f"Entropy on seen vs unseen digits. AUROC of entropy as an unseen-digit detector: ensemble of "
            f"{ku.n_members} {ku.auroc_entropy_ensemble:.3f} vs one network {ku.auroc_entropy_single:.3f} "
            f"({verdict} one network in this run); mutual information {ku.auroc_mi_ensemble:.3f}")
    abstain = (f"Abstain when unsure: accuracy on the answered digits (solid) and unseen digits still answered "
               f"(dashed). Accuracy on the seen digits: ensemble {ku.accuracy_seen_ensemble:.1%}, one network "
               f"{ku.accuracy_seen_single:.1%}")
    return [("ood_hist", hist, entropy_histograms(ku, n_classes=dataset.n_classes)),
            ("ood_abstain", abstain, abstain_figure(ku))]
