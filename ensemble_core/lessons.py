"""Guided lessons: six one-click experiments, each with a goal, hints and a question.

A :class:`Lesson` is pure data: the panels it trains (one :class:`RunConfig`
each, all on the same data), which view shows them, what to look for, and a
question with its explanation.  The Lessons page renders it; tests run it with
tiny epochs through :meth:`Lesson.configs`.

Views (how the page draws the trained panels):

``bands``       1-D regression bands, one panel per config, side by side, same axes
``snapshot``    the snapshot run's cyclic learning-rate schedule, then ``bands``
``size_curve``  test NLL against the number of members, plus ``bands``
``maps``        2-D classification maps: predicted class, entropy, mutual information
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import plotly.graph_objects as go

from .config import DataSpec, ModelSpec, OptimSpec, RunConfig, StrategySpec
from .race import race_configs, scale_epochs

__all__ = ["Panel", "Lesson", "LESSONS", "lesson_ids", "get_lesson", "lesson_figures"]

View = Literal["bands", "snapshot", "size_curve", "maps", "unknowns"]


@dataclass(frozen=True)
class Panel:
    """One trained configuration in a lesson, with its caption.

    Attributes:
        label: short title shown above the panel (e.g. "Single network, NLL").
        config: the run to train.
    """

    label: str
    config: RunConfig


@dataclass(frozen=True)
class Lesson:
    """A guided experiment.

    Attributes:
        id: url-safe identifier (the ``lesson`` query parameter).
        title: the lesson's headline.
        goal: one or two sentences: what the student will learn.
        look_for: things to notice in the figures, in order.
        panels: the runs to train; all share one data spec.
        view: how the page shows them (see the module docstring).
        question: asked after the figures.
        answer: the explanation revealed on demand.
        source: where the experiment comes from.
        sigmas: half-width of the drawn bands in standard deviations (Figure 1: 3, as the paper).
    """

    id: str
    title: str
    goal: str
    look_for: tuple[str, ...]
    panels: tuple[Panel, ...]
    view: View
    question: str
    answer: str
    source: str = ""
    sigmas: float = 2.0

    def __post_init__(self) -> None:
        if not self.panels:
            raise ValueError(f"lesson {self.id!r} has no panels")
        specs = {p.config.data for p in self.panels}
        if len(specs) != 1:
            raise ValueError(f"lesson {self.id!r}: every panel must use the same data")

    @property
    def data_spec(self) -> DataSpec:
        """The data every panel trains on."""
        return self.panels[0].config.data

    @property
    def labels(self) -> list[str]:
        """Panel captions, in order."""
        return [p.label for p in self.panels]

    def configs(self, scale: float = 1.0, *, max_epochs: int | None = None) -> list[RunConfig]:
        """The panels' configs, optionally with less (or more) training.

        Args:
            scale: factor on the epochs per member (per cycle for snapshots);
                equal-budget panels stay equal (:func:`~ensemble_core.race.scale_epochs`).
            max_epochs: cap on the epochs per member/cycle (tests use 1-3).
        """
        if scale == 1.0 and max_epochs is None:
            return [p.config for p in self.panels]
        return [scale_epochs(p.config, scale, max_epochs=max_epochs) for p in self.panels]


# ------------------------------------------------------------------ the six
# The paper's toy (Lakshminarayanan et al. 2017, Fig. 1): y = x^3 + eps, eps ~ N(0, 3^2),
# 20 training points on [-4, 4], one hidden layer of 100 ReLU units.
_CUBIC = DataSpec(name="cubic", n=20, noise=3.0, seed=0)
_TOY = RunConfig(
    data=_CUBIC,
    model=ModelSpec(hidden_layers=1, width=100, activation="relu"),
    strategy=StrategySpec(kind="independent", members=5),
    optim=OptimSpec(optimizer="adam", lr=0.01, batch_size=4, epochs=60, schedule="constant"),
    seed=0,
)
# Figure 1 follows the paper's protocol (Section 3.1): Adam with a fixed learning rate of 0.1, batch size
# 100 (here: all 20 points), FGSM eps = 1% of the input range; the paper plots mean ± 3 sd.  It does not
# state the toy's epochs: 400 full-batch steps is what makes single networks converge (at 40, its UCI
# setting, they have not: their bands are ±100 wide on the data).  Measured coverage: docs/decisions.md.
_FIG1 = _TOY.replace(**{"optim.lr": 0.1, "optim.batch_size": 20, "optim.epochs": 400})
_SINE_GAP = DataSpec(name="sine", n=400, noise=3.0, seed=1, gap=True)
_SINE = RunConfig(
    data=_SINE_GAP,
    model=ModelSpec(hidden_layers=2, width=64),
    strategy=StrategySpec(kind="independent", members=5),
    optim=OptimSpec(optimizer="adam", lr=0.01, batch_size=64, epochs=60, schedule="cosine"),
    seed=0,
)
_MOONS = RunConfig(
    data=DataSpec(name="moons", n=300, noise=3.0, seed=0),
    model=ModelSpec(hidden_layers=2, width=64),
    strategy=StrategySpec(kind="independent", members=5),
    optim=OptimSpec(optimizer="adam", lr=0.01, batch_size=64, epochs=60, schedule="cosine"),
    seed=0,
)


def _figure1() -> Lesson:
    single = _FIG1.replace(**{"strategy.members": 1})
    return Lesson(
        id="figure1",
        title="One network is overconfident",
        goal=("Reproduce Figure 1 of Lakshminarayanan et al. (2017): the same 20 points, four ways to get "
              "an uncertainty estimate, drawn as mean ± 3σ like the paper. Which one knows what it does not know?"),
        look_for=(
            "Training data only lives in [-4, 4]; the dashed true curve x³ continues outside.",
            "MSE ensemble: its only uncertainty is the spread of 5 means - no noise term, so on the data its "
            "band is thinner than the noise itself.",
            "Single NLL network: a noise band (orange) but no epistemic part (blue): one network cannot disagree "
            "with itself, and beyond the data its band misses the true curve over much of 4 ≤ |x| ≤ 6.",
            "Adversarial training changes how the single network's band extrapolates, not what it knows: "
            "still no epistemic part, still missing the true curve beyond the data.",
            "The 5-network NLL ensemble has both: the noise band plus disagreement (blue) that is larger "
            "outside [-4, 4] than on the data.",
            "Its ±3σ band contains more of the true curve on 4 ≤ |x| ≤ 6 than any other panel's. Whether that "
            "is enough to hold the true value at x = 5.5 varies from run to run: the number below says for yours.",
            "Scored against the true curve and noise beyond the data (4 ≤ |x| ≤ 6), the NLL ensemble has the "
            "best NLL of the four.",
            "The table (test points inside [-4, 4] only): the MSE ensemble has by far the worst NLL. Which NLL "
            "panel scores best inside the data varies from run to run; the ensemble's clear advantage is outside it.",
        ),
        panels=(
            Panel("5 networks, MSE (spread of means)", _FIG1.replace(**{"loss.kind": "mse"})),
            Panel("1 network, NLL", single),
            Panel("1 network, NLL + adversarial", single.replace(**{"strategy.adversarial": True})),
            Panel("5 networks, NLL + adversarial", _FIG1.replace(**{"strategy.adversarial": True})),
        ),
        view="bands",
        question="A new input arrives at x = 5.5. Which of the four panels would you trust to warn you?",
        answer=(
            "The ensemble of NLL networks: its band widens most beyond the data and holds more of the true "
            "curve there than any other panel - but check line 6 for your run: often, not always, it contains "
            "the true value at x = 5.5 itself. A single network trained with NLL learns the *noise* in the data (aleatoric "
            "uncertainty), but nothing tells it to be unsure where there is no data: a ReLU net extrapolates "
            "a straight line (and a straight-line noise trend), confidently, while x³ keeps bending upwards. "
            "Several networks from different random starts agree near the data and extrapolate differently away "
            "from it; that disagreement is epistemic uncertainty, and it grows with the distance from the data. "
            "The MSE ensemble has the disagreement but no noise term, so it is overconfident near the data. "
            "Proper scoring (NLL) + ensembling gives both parts.\n\n"
            "Not a guarantee: five ReLU networks only disagree as much as their straight lines happen to fan "
            "out, and x³ bends away from every straight line. Measured on this exact setup with seeds 0-9: the "
            "ensemble's band covered more of 4 ≤ |x| ≤ 6 than every other panel in 9 runs of 10, held the true "
            "value at x = 5.5 in 7, and covered at least 80 % of 4 ≤ |x| ≤ 6 in only 5. The single networks "
            "covered at most 59 %, except in one run where none of the NLL networks had settled and every band "
            "was wide. Which runs succeed is chaotic: with a fixed learning rate of 0.1 the networks never settle, "
            "and even a change in floating-point rounding picks other ones. With gentler training (Adam at 0.01, small batches, "
            "or a learning rate annealed to 0) the members settle on similar lines and the true value at x = 5.5 "
            "falls outside the ensemble's band - try it on the Train page."
        ),
        source="Lakshminarayanan, Pritzel & Blundell (2017), Figure 1 and Section 3.1",
        sigmas=3.0,
    )


def _aleatoric() -> Lesson:
    return Lesson(
        id="aleatoric-epistemic",
        title="Aleatoric vs epistemic",
        goal=("Separate the two kinds of uncertainty: noise in the data (aleatoric) and lack of data "
              "(epistemic). The data's noise grows with |x| and there is a hole with no training points."),
        look_for=(
            "The aleatoric band (noise) is narrow near x = 0 and widens towards the edges, like the data.",
            "The epistemic band (members disagreeing) is thin where there is data...",
            "...and bulges in the shaded gap, where the members fill the hole each in their own way.",
            "Beyond the data the aleatoric band keeps widening: each network extrapolates the noise trend it saw.",
            "Thin lines are the individual members' means: see them fan out where there is no data.",
        ),
        panels=(Panel("5 networks, NLL", _SINE),),
        view="bands",
        question="If you collected 10 times more data everywhere, which band would shrink, and which would not?",
        answer=(
            "The epistemic band would shrink: with more data (in the gap too) the members are pinned down "
            "and agree. The aleatoric band would not: it is the noise of the measurements themselves, "
            "which more data only estimates better. Epistemic = reducible, aleatoric = irreducible."
        ),
        source="Kendall & Gal (2017); Lakshminarayanan et al. (2017), Section 2.3",
    )


def _snapshot() -> Lesson:
    ind, snap = race_configs(_SINE, ["independent", "snapshot"])
    return Lesson(
        id="snapshot",
        title="Snapshot ensembles: train 1, get M for free",
        goal=("Huang et al. (2017) train one network with a cyclic cosine learning rate and keep a copy at "
              "the end of every cycle. Compare it with 5 independent networks at the same cost."),
        look_for=(
            "The learning rate restarts high at the start of each cycle and anneals to ~0 (stars = snapshots).",
            "Both runs cost the same number of member-epochs (see the setup and the table's budget column).",
            "Compare the thin lines: on this small problem the snapshots' means spread even more than the "
            "independent members' - each restart at a high learning rate throws the network far from its last "
            "solution.",
            "Check the table: on a small problem like this one snapshots can match or even beat independent members.",
        ),
        panels=(Panel("5 independent networks", ind), Panel("Snapshot ensemble: 1 network, 5 cycles", snap)),
        view="snapshot",
        question="The snapshots all come from one network. Where does their diversity come from, and what limits it?",
        answer=(
            "From the learning-rate restarts: each cycle starts at a large learning rate that kicks the weights "
            "out of the last minimum, and the annealing settles them in a new one. What limits it: every cycle "
            "starts from the previous snapshot, while independent networks start from different random weights. "
            "On a small problem like this one a restart is a big kick - the snapshots here even spread more than "
            "the independent members - and the snapshot ensemble matches or beats them at the cost of ONE "
            "training run. On large networks the kicks are small against the network, the snapshots stay in "
            "nearby minima and make similar mistakes, and independent members are usually more diverse. "
            "That is the trade: snapshots when one training run is all you can afford."
        ),
        source="Huang et al. (2017), Snapshot Ensembles: Train 1, get M for free",
    )


def _bootstrap() -> Lesson:
    # 10 members a side: with 5, which ensemble's members spread more on 20 points flipped with the seed
    # (docs/decisions.md); with 10 every claim below holds for seeds 0-2.
    ind, boot = race_configs(_TOY.replace(**{"strategy.members": 10}), ["independent", "bootstrap"])
    return Lesson(
        id="bootstrap",
        title="Does bootstrapping help?",
        goal=("Bagging trains each member on a resample of the data. The deep-ensembles paper found it "
              "*worse* than plain random seeds. See it on the 20-point toy, 10 networks a side."),
        look_for=(
            "Each bootstrap member sees only part of the data: about 63 % of the distinct points on average "
            "(1 - 1/e); with just 20 points one member may see 50 % and another 80 %.",
            "On the data, the bootstrap members' means (thin lines) spread more: each fits a different, smaller "
            "data set.",
            "The table: the bootstrap ensemble's test NLL is worse than the random-seed ensemble's - by a little "
            "here; at other training lengths it can even win, so bagging buys no reliable gain.",
        ),
        panels=(Panel("5 networks, random seeds", ind), Panel("5 networks, bootstrap resamples", boot)),
        view="bands",
        question="Why does bagging hurt here, when it helps so much for decision trees?",
        answer=(
            "Trees are deterministic: without resampling every tree would be identical, so bagging is their "
            "only source of diversity. Neural networks already differ through random initialisation and data "
            "order, so that diversity comes for free. Bootstrapping adds a little more diversity but throws away "
            "about a third of the distinct points for every member, and with 20 points each member becomes "
            "worse. It can help with very large data and low-variance models, which is not this case."
        ),
        source="Lakshminarayanan et al. (2017), Section 2.4; Breiman (1996)",
    )


def _how_many() -> Lesson:
    big = _TOY.replace(**{"strategy.members": 10})
    return Lesson(
        id="how-many",
        title="How many members?",
        goal=("Train 10 members once on the 20-point toy, then score ensembles of 1, 2, ..., 10 of them: "
              "no retraining needed. Each point averages 20 random choices of which members to use."),
        look_for=(
            "Test NLL drops fast from 1 to 3-5 members...",
            "...and then flattens: each extra member adds less.",
            "The single member's band (left) vs the 10-member ensemble's (right): the gap is what ensembling buys.",
        ),
        panels=(Panel("10 networks, NLL", big),),
        view="size_curve",
        question="The paper used M = 5. Judging from your curve, would you pay for M = 20?",
        answer=(
            "Usually not. The ensemble's error behaves like a bias part that ensembling cannot remove plus a "
            "variance part that shrinks roughly like 1/M: the first few members remove most of it, later ones "
            "very little, while cost grows linearly with M. Around 5 members is the usual sweet spot; more pays "
            "off only when the individual members disagree a lot (small data, far from the data)."
        ),
        source="Lakshminarayanan et al. (2017), Figures 2-3",
    )


def _classification() -> Lesson:
    return Lesson(
        id="classification",
        title="Classification: entropy vs mutual information",
        goal=("For classifiers the total uncertainty (entropy of the averaged probabilities) splits into "
              "aleatoric (mean member entropy) and epistemic (mutual information) parts."),
        look_for=(
            "Predicted class: the members agree on the two moons.",
            "Entropy is high along the boundary between the moons - the classes really overlap there.",
            "Mutual information is low on that boundary (every member is unsure in the same way)...",
            "...and high in stripes far from the data, where the members extend their boundaries differently.",
        ),
        panels=(Panel("5 networks", _MOONS),),
        view="maps",
        question="A point sits exactly on the boundary between the moons. Is its uncertainty aleatoric or epistemic?",
        answer=(
            "Mostly aleatoric. Every member has seen data from both classes there and says about 50/50, so "
            "the mean member entropy is high and the members agree: mutual information is small. Far from the "
            "data each member extrapolates its own boundary and is confident, but they disagree: entropy of "
            "the average is high while each member's entropy is low, so mutual information is high. That is "
            "the signal to use for out-of-distribution detection."
        ),
        source="Lakshminarayanan et al. (2017), Section 3.5; Depeweg et al. (2018)",
    )


def _mc_dropout() -> Lesson:
    # the race's equal-compute pair: 5 networks x 60 epochs vs 1 dropout network x 300 epochs; dropout 0.1,
    # T = 100 passes (numbers for seeds 0-2 in docs/decisions.md, helper H)
    ind, mc = race_configs(_SINE, ["independent", "mc_dropout"])
    mc = mc.replace(**{"strategy.dropout": 0.1, "strategy.passes": 100})
    return Lesson(
        id="mc-dropout",
        title="Ensembles vs MC dropout",
        goal=("MC dropout (Gal & Ghahramani 2016) keeps dropout on at prediction: T random masks of ONE network "
              "act as T members. The deep-ensembles paper's main comparison: same data with a gap, same training "
              "cost, 5 independent networks against one network with dropout 0.1 and T = 100 passes."),
        look_for=(
            "Both cost the same training (see the setup); at prediction MC dropout runs T = 100 passes against "
            "the ensemble's 5 networks.",
            "MC dropout has an epistemic part too - its passes disagree - and on the data already several times "
            "more than the ensemble's members.",
            "In the shaded gap the ensemble's members fan out; the dropout passes barely notice the gap.",
            "Beyond the data both grow their epistemic band.",
            "The table: the ensemble's test NLL is at least as good as MC dropout's.",
        ),
        panels=(Panel("5 independent networks", ind), Panel("MC dropout: 1 network, p = 0.1, T = 100", mc)),
        view="bands",
        question=("MC dropout's epistemic band is wide on the data and hardly bulges in the gap. Where does its "
                  "disagreement come from, and why does the ensemble's track the missing data better?"),
        answer=(
            "From the masks: every pass switches off a random 10 % of the hidden units, so the passes disagree "
            "wherever the network's output depends on which units are on - on the data as much as in the gap. "
            "That spread is set by the dropout rate more than by where the data is, and one set of weights "
            "trained with dropout is pushed to fill the gap with a single smooth guess. Independent networks are "
            "each pinned down by the data where it exists and free where it does not, so their disagreement is "
            "small on the data and large in the gap: it measures missing data. Lakshminarayanan et al. (2017) "
            "found the same on the UCI benchmarks: ensembles beat MC dropout in NLL on most sets (the README's "
            "table puts this lab's numbers next to theirs). MC dropout's strength is its price: one network."
        ),
        source="Gal & Ghahramani (2016); Lakshminarayanan et al. (2017), Section 3.3 and Table 1",
    )


def _known_unknowns() -> Lesson:
    from .lesson_unknowns import known_unknowns_lesson  # its own module: digits with classes held out

    return known_unknowns_lesson()


#: The six lessons, in teaching order.
LESSONS: tuple[Lesson, ...] = (
    _figure1(), _aleatoric(), _snapshot(), _bootstrap(), _how_many(), _classification(),
    _known_unknowns(), _mc_dropout(),
)


def lesson_ids() -> list[str]:
    """Ids of every lesson, in teaching order."""
    return [lesson.id for lesson in LESSONS]


def get_lesson(lesson_id: str | None) -> Lesson | None:
    """The lesson with ``lesson_id``, or ``None`` for an unknown id."""
    return next((lesson for lesson in LESSONS if lesson.id == lesson_id), None)


def _lr_of(run: Any) -> go.Figure:
    from . import viz

    lrs = np.asarray(run.lr_trace, dtype=np.float64)
    steps = max(1, len(lrs) // max(1, run.epochs_done))
    # SnapshotTaken.step is 1-based (the step just taken); lr_figure indexes steps from 0.
    snaps = [e.step - 1 for e in run.history if getattr(e, "kind", None) == "snapshot"]
    return viz.lr_figure(lrs, steps_per_epoch=steps, snapshot_steps=snaps, now_step=len(lrs) - 1, height=300)


def lesson_figures(lesson: Lesson, runs: Sequence[Any], dataset: Any) -> list[tuple[str, str, go.Figure]]:
    """The figures a lesson shows once its panels are trained.

    Args:
        lesson: the lesson.
        runs: one trained run per panel, in order.
        dataset: the data they were trained on.

    Returns:
        ``(key, caption, figure)`` triples in display order.  ``bands`` views
        give one figure with one subplot column per panel (same axes).
    """
    from .predict import member_metrics
    from .report import bands_side_by_side, class_maps_of, mean_size_curve

    if len(runs) != len(lesson.panels) or any(r is None for r in runs):
        raise ValueError(f"lesson {lesson.id!r} needs {len(lesson.panels)} trained runs")
    out: list[tuple[str, str, go.Figure]] = []
    if lesson.view == "unknowns":
        from .lesson_unknowns import unknowns_figures

        return unknowns_figures(runs[0], dataset)
    if lesson.view == "maps":
        out.append(("maps", "Predicted class · total entropy · mutual information (epistemic)",
                    class_maps_of(runs[0], dataset)))
        return out
    if lesson.view == "snapshot":
        out.append(("lr", "Learning rate of the snapshot run: one cosine cycle per snapshot (dots)", _lr_of(runs[-1])))
    if lesson.view == "size_curve":
        run = runs[0]
        x, y = (dataset.x_test, dataset.y_test) if len(dataset.y_test) else (dataset.x_val, dataset.y_val)
        curve = mean_size_curve(run, x, y)
        singles = [r["nll"] for r in member_metrics(run, x, y)[:-1]]
        from . import viz

        fig = viz.size_curve_figure(list(range(1, len(curve) + 1)), curve, member_values=singles)
        fig.update_traces(selector=dict(name="Ensemble of first M"), name="Ensemble of M members (mean of 20 orders)")
        out.append(("size_curve", "Test NLL against the number of members (lower is better)", fig))
        first = run.healthy[:1]
        out.append(("bands", "One member alone vs the whole ensemble",
                    bands_side_by_side([run, run], dataset, ["1 member", f"{len(run.healthy)} members"],
                                       members=[first, None])))
        return out
    k = f"{lesson.sigmas:g}"
    out.append(("bands", f"Mean ± {k}σ: total (grey), aleatoric (orange), epistemic (blue, hatched)",
                bands_side_by_side(runs, dataset, lesson.labels, sigmas=lesson.sigmas,
                                   show_truth=lesson.sigmas != 2.0)))
    return out
