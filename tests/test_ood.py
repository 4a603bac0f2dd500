"""Known unknowns: AUROC against scikit-learn, abstain curves by hand, held-out classes in the data."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from ensemble_core import ood
from ensemble_core.config import ConfigError, DataSpec, RunConfig
from ensemble_core.data import DataError, load_dataset
from ensemble_core.predict import combine_classification


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_auroc_matches_sklearn_with_ties(seed: int) -> None:
    rng = np.random.default_rng(seed)
    scores = np.round(rng.normal(size=300), 1)  # many ties
    positive = rng.random(300) < 0.3
    assert ood.auroc(scores, positive) == pytest.approx(roc_auc_score(positive, scores), abs=1e-12)


def test_auroc_extremes_and_errors() -> None:
    assert ood.auroc([1, 2, 3, 4], np.array([False, False, True, True])) == 1.0
    assert ood.auroc([4, 3, 2, 1], np.array([False, False, True, True])) == 0.0
    assert ood.auroc([1, 1, 1, 1], np.array([False, False, True, True])) == 0.5
    with pytest.raises(ValueError, match="positive"):
        ood.auroc([1, 2], np.array([True, True]))


def test_abstain_curve_by_hand() -> None:
    probs = np.array([[0.9, 0.1, 0.0], [0.6, 0.4, 0.0], [0.2, 0.7, 0.1], [0.5, 0.3, 0.2]])
    y = np.array([0, 1, 1, 2])  # class 2 held out: the last input can never be right
    c = ood.abstain_curve(probs, y, (2,), thresholds=[0.0, 0.55, 0.8, 0.95])
    np.testing.assert_allclose(c["answered"], [1.0, 0.75, 0.25, 0.0])
    np.testing.assert_allclose(c["accuracy"][:3], [2 / 4, 2 / 3, 1.0])
    assert np.isnan(c["accuracy"][3])
    np.testing.assert_allclose(c["answered_unseen"], [1.0, 0.0, 0.0, 0.0])
    np.testing.assert_allclose(c["answered_seen"], [1.0, 1.0, 1 / 3, 0.0])


def test_known_unknowns_single_vs_ensemble() -> None:
    # seen inputs: every member confident and right; unseen: each member confident in a different wrong class
    seen = np.tile([[0.97, 0.01, 0.01, 0.01]], (6, 1))
    members = []
    for m in range(3):
        unseen = np.full((6, 4), 0.02 / 3)
        unseen[:, m % 2] = 0.98  # more confident than on the seen inputs
        members.append(np.vstack([seen, unseen]))
    y = np.array([0] * 6 + [3] * 6)
    ens = combine_classification(np.stack(members))
    one = combine_classification(np.stack(members[:1]), [0])
    k = ood.known_unknowns(one, ens, y, [3])
    assert k.auroc_entropy_ensemble == 1.0 and k.auroc_mi_ensemble == 1.0
    assert k.auroc_entropy_single == 0.0  # one network is surer on the unseen inputs than on seen ones
    assert k.accuracy_seen_single == k.accuracy_seen_ensemble == 1.0
    assert k.n_members == 3
    with pytest.raises(ValueError, match="held"):
        ood.known_unknowns(one, ens, y, [])


def test_held_out_classes_leave_training_and_validation_only() -> None:
    full = load_dataset(DataSpec(source="bundled", name="digits"))
    d = load_dataset(DataSpec(source="bundled", name="digits", held_out=(5, 6, 7, 8, 9)))
    assert set(np.unique(d.y_train)) == {0, 1, 2, 3, 4} and set(np.unique(d.y_val)) <= {0, 1, 2, 3, 4}
    np.testing.assert_array_equal(d.y_test, full.y_test)  # the test rows keep every class
    assert d.n_classes == 10 and d.held_out == (5, 6, 7, 8, 9)
    np.testing.assert_allclose(d.x_mean, d.x_train.mean(axis=0))  # scaling refitted on what is trained on
    assert "Held out" in d.notes[-1]


def test_held_out_validation_in_config_data_and_links() -> None:
    cfg = RunConfig().replace(data=DataSpec(source="bundled", name="iris", held_out=(2,)))
    assert RunConfig.from_query(cfg.to_query()) == cfg
    assert RunConfig.from_json(cfg.to_json()) == cfg
    with pytest.raises(ConfigError, match="data.held_out"):
        DataSpec(source="bundled", name="iris", held_out=(2, 1))
    with pytest.raises(ConfigError, match="data.held_out"):
        DataSpec(name="cubic", held_out=(1,))
    with pytest.raises(ConfigError, match="data.held_out"):
        RunConfig.from_query({"data.source": "bundled", "data.name": "iris", "data.held_out": '["a"]'})
    with pytest.raises(DataError, match="does not exist"):
        load_dataset(DataSpec(source="bundled", name="iris", held_out=(7,)))
    with pytest.raises(DataError, match="fewer than 2"):
        load_dataset(DataSpec(source="bundled", name="iris", held_out=(0, 1)))


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_digits_lesson_ensemble_flags_unseen_digits_better_than_one_network(seed: int) -> None:
    """The lesson's claim at its own settings: the ensemble's entropy AUROC beats one network's (seeds 0-2)."""
    from ensemble_core.lesson_unknowns import unknowns_figures, unknowns_numbers
    from ensemble_core.lessons import get_lesson
    from ensemble_core.training import train

    lesson = get_lesson("unknowns")
    cfg = lesson.configs()[0].replace(seed=seed)
    ds = load_dataset(cfg.data)
    run = train(cfg, ds)
    ku = unknowns_numbers(run, ds)
    print(f"seed {seed}: AUROC entropy ensemble {ku.auroc_entropy_ensemble:.3f} vs one network "
          f"{ku.auroc_entropy_single:.3f}; MI {ku.auroc_mi_ensemble:.3f}")
    assert ku.auroc_entropy_ensemble > ku.auroc_entropy_single
    assert ku.auroc_entropy_ensemble > 0.85 and ku.auroc_mi_ensemble > 0.85
    assert ku.accuracy_seen_ensemble > 0.95
    caption = unknowns_figures(run, ds)[0][1]
    assert f"{ku.auroc_entropy_ensemble:.3f}" in caption and f"{ku.auroc_entropy_single:.3f}" in caption


def test_digits_lesson_figures_from_a_tiny_run() -> None:
    """The Lessons page draws the lesson through lessons.lesson_figures (a 2-epoch run is enough to draw)."""
    from ensemble_core.lessons import get_lesson, lesson_figures
    from ensemble_core.training import train

    lesson = get_lesson("unknowns")
    cfg = lesson.configs(max_epochs=2)[0]
    ds = load_dataset(cfg.data)
    figs = lesson_figures(lesson, [train(cfg, ds)], ds)
    assert [k for k, _, _ in figs] == ["ood_hist", "ood_abstain"]
    assert "AUROC" in figs[0][1]
