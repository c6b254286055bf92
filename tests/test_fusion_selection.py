"""The panel's leave-one-generator-out choice of fusion (scoring/fusion_selection.py)."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression

from deepfake_audio import metrics
from deepfake_audio.data.records import FAKE, REAL
from deepfake_audio.scoring.fusion_selection import (
    MIN_FOLD_FAKES,
    fit_logistic,
    held_out_folds,
    select_fusion,
)


def test_unconstrained_fit_is_scikit_learns_balanced_logistic_regression() -> None:
    rng = np.random.default_rng(0)
    features = rng.normal(size=(300, 3))
    target = (features @ [1.0, 0.5, -0.3] + rng.normal(size=300) > 0.4).astype(float)
    ours = fit_logistic(features, target, regularization=0.5, nonnegative=False)
    theirs = LogisticRegression(C=0.5, class_weight="balanced").fit(features, target)
    np.testing.assert_allclose(ours.coefficients, theirs.coef_[0], atol=1e-3)
    assert ours.intercept == pytest.approx(theirs.intercept_[0], abs=1e-3)


def test_non_negative_fit_drops_a_member_whose_high_score_means_real() -> None:
    rng = np.random.default_rng(1)
    features = rng.normal(size=(400, 2))
    target = (features[:, 0] - features[:, 1] + 0.3 * rng.normal(size=400) > 0).astype(float)
    weights = fit_logistic(features, target)
    assert weights.coefficients[0] > 0.5
    assert weights.coefficients[1] == 0.0


def corpus(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, list[str | None]]:
    """Labels, member logits and generators of a validation split where member 0 hears
    every generator a little and member 1 hears only ``loud``, but that one very well."""
    labels, rows, generators = [], [], []
    for generator, count in (("loud", 30), ("soft", 30), ("quiet", 30), (None, 90)):
        fake = generator is not None
        for _ in range(count):
            broad = rng.normal(1.5 if fake else 0.0)
            narrow = rng.normal(6.0 if generator == "loud" else (-1.0 if fake else 0.0))
            labels.append(FAKE if fake else REAL)
            rows.append((broad, narrow))
            generators.append(generator)
    return np.asarray(labels), np.asarray(rows), generators


def test_selection_prefers_the_fusion_that_holds_up_on_a_generator_it_did_not_fit() -> None:
    labels, features, generators = corpus(np.random.default_rng(2))
    selection = select_fusion(labels, features, generators, ["broad", "narrow"])
    assert selection is not None
    assert set(selection.held_out["equal"]) == {"loud", "soft", "quiet"}
    means = {name: selection.mean_eer(name) for name in selection.held_out}
    assert means[selection.chosen] == min(means.values())
    # the narrow member alone fails where it never heard: the choice is not it
    assert selection.chosen != "only narrow"
    assert np.all(selection.weights.coefficients >= 0)
    held = selection.to_dict()["held_out_eer"][selection.chosen]
    assert held["mean"] == pytest.approx(means[selection.chosen])
    # the chosen weights score the whole split at least as well as the broad member alone
    fused = selection.weights.score(features)
    assert (
        metrics.equal_error_rate(labels, fused)[0]
        <= metrics.equal_error_rate(labels, features[:, 0])[0]
    )


def test_too_few_generators_leaves_the_plain_fusion_to_the_caller() -> None:
    labels, features, generators = corpus(np.random.default_rng(3))
    only_one = [g if g in (None, "loud") else None for g in generators]
    assert select_fusion(labels, features, only_one, ["broad", "narrow"]) is None
    unnamed = [None] * len(generators)
    assert select_fusion(labels, features, unnamed, ["broad", "narrow"]) is None


def test_folds_need_enough_fakes_and_ignore_reals() -> None:
    labels = np.asarray([FAKE] * (MIN_FOLD_FAKES + 1) + [FAKE] * 2 + [REAL] * 4)
    generators = ["a"] * (MIN_FOLD_FAKES + 1) + ["b"] * 2 + ["a"] * 4
    folds = held_out_folds(labels, generators)
    assert list(folds) == ["a"]
    assert folds["a"].sum() == MIN_FOLD_FAKES + 1  # the reals named "a" are not held out


def test_a_tie_goes_to_the_fewest_members() -> None:
    """Validation a strong member gets perfectly right cannot show that adding members helps
    on a generator nobody heard: then the panel keeps that member alone."""
    rng = np.random.default_rng(4)
    labels = np.asarray([FAKE] * 60 + [REAL] * 60)
    generators = ["a"] * 20 + ["b"] * 20 + ["c"] * 20 + [None] * 60
    perfect = np.where(labels == FAKE, 4.0, -4.0) + rng.normal(0, 0.5, labels.size)
    noise = rng.normal(0, 1, labels.size)
    features = np.column_stack([perfect, noise])
    selection = select_fusion(labels, features, generators, ["perfect", "noise"])
    assert selection is not None
    assert selection.mean_eer("logistic C=1") == selection.mean_eer("only perfect") == 0.0
    assert selection.chosen == "only perfect"
    assert selection.weights.coefficients[1] == 0.0


def test_members_validation_cannot_tell_apart_are_averaged() -> None:
    """Two members each perfect on every validation generator (two seeds of one recipe): the
    panel averages them with equal weight, not one alone and not the third, weaker member."""
    rng = np.random.default_rng(5)
    labels = np.asarray([FAKE] * 60 + [REAL] * 60)
    generators = ["a"] * 20 + ["b"] * 20 + ["c"] * 20 + [None] * 60
    sign = np.where(labels == FAKE, 4.0, -4.0)
    first = sign + rng.normal(0, 0.5, labels.size)
    second = 2.0 * (sign + rng.normal(0, 0.5, labels.size))  # another scale: z-scored
    weak = 0.3 * sign + rng.normal(0, 1, labels.size)
    features = np.column_stack([first, weak, second])
    selection = select_fusion(labels, features, generators, ["first", "weak", "second"])
    assert selection is not None
    assert selection.chosen == "equal of first + second"
    assert selection.mean_eer("equal of first + second") == 0.0
    weights = selection.weights.coefficients
    assert weights[1] == 0.0
    # equal after scaling each by its spread: the member twice as wide weighs half as much
    assert weights[0] == pytest.approx(2 * weights[2], rel=0.05)
    assert "equal of first + second" in selection.to_dict()["held_out_eer"]
