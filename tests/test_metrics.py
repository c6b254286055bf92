"""metrics.py on cases worked out by hand (fake = 0 is the positive class; scores = P(fake))."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from deepfake_audio.metrics import (
    accuracy,
    balanced_accuracy,
    confusion,
    equal_error_rate,
    predict,
    roc_auc,
    summarize,
)

FAKE, REAL = 0, 1


def test_predict_calls_fake_at_or_above_the_threshold():
    assert predict(np.array([0.2, 0.5, 0.7]), 0.5).tolist() == [REAL, FAKE, FAKE]


def test_accuracy_balanced_accuracy_and_confusion():
    labels = np.array([FAKE, FAKE, FAKE, REAL])
    everything_fake = np.array([FAKE, FAKE, FAKE, FAKE])
    assert accuracy(labels, everything_fake) == 0.75
    # recall of fake 3/3 = 1, of real 0/1 = 0: mean 0.5 whatever the class counts
    assert balanced_accuracy(labels, everything_fake) == 0.5
    assert confusion(labels, everything_fake) == {
        "true_fake": 3,
        "fake_called_real": 0,
        "real_called_fake": 1,
        "true_real": 0,
    }
    assert math.isnan(accuracy(np.array([]), np.array([])))


def test_perfect_separation():
    # fakes 0.9, 0.8 above reals 0.2, 0.1: no error at any threshold in (0.2, 0.8]
    labels, scores = [FAKE, FAKE, REAL, REAL], [0.9, 0.8, 0.2, 0.1]
    eer, threshold = equal_error_rate(labels, scores)
    assert eer == 0.0
    assert threshold == 0.8  # the first ROC point where both rates are 0
    assert roc_auc(labels, scores) == 1.0
    assert accuracy(labels, predict(np.array(scores), threshold)) == 1.0


def test_half_wrong():
    # fakes 0.9, 0.3; reals 0.6, 0.1. Pairs (fake > real): 0.9>0.6, 0.9>0.1, 0.3>0.1 -> 3/4.
    # At threshold 0.6: one fake missed (1/2), one real called fake (1/2): EER 0.5.
    labels, scores = [FAKE, FAKE, REAL, REAL], [0.9, 0.3, 0.6, 0.1]
    assert equal_error_rate(labels, scores) == (0.5, 0.6)
    assert roc_auc(labels, scores) == 0.75


def test_eer_between_roc_points_is_the_mean_of_the_two_rates():
    # fakes 0.9 0.8 0.4; reals 0.7 0.3 0.2 0.1 0.05. At 0.7: misses 1/3, false alarms 1/5 -
    # the closest the two rates get (0.8: 1/3 vs 0; 0.4: 0 vs 1/5) - so EER = (1/3 + 1/5) / 2.
    labels = [FAKE, FAKE, FAKE, REAL, REAL, REAL, REAL, REAL]
    scores = [0.9, 0.8, 0.4, 0.7, 0.3, 0.2, 0.1, 0.05]
    eer, threshold = equal_error_rate(labels, scores)
    assert eer == pytest.approx((1 / 3 + 1 / 5) / 2)
    assert threshold == 0.7


def test_inverted_scores():
    labels, scores = [FAKE, FAKE, REAL, REAL], [0.1, 0.2, 0.8, 0.9]
    assert equal_error_rate(labels, scores)[0] == 1.0
    assert roc_auc(labels, scores) == 0.0


def test_uninformative_scores():
    eer, threshold = equal_error_rate([FAKE, REAL], [0.5, 0.5])
    assert eer == 0.5
    assert threshold <= 1.0  # never sklearn's +inf
    assert roc_auc([FAKE, REAL], [0.5, 0.5]) == 0.5


def test_one_class_gives_nan_not_an_exception():
    eer, threshold = equal_error_rate([FAKE, FAKE], [0.2, 0.9])
    assert math.isnan(eer) and threshold == 0.5
    assert math.isnan(roc_auc([REAL, REAL], [0.2, 0.9]))


def test_summarize_collects_everything():
    report = summarize(np.array([FAKE, FAKE, REAL, REAL]), np.array([0.9, 0.3, 0.6, 0.1]))
    assert report["count"] == 4
    assert report["accuracy"] == 0.5  # at 0.5: 0.9 and 0.6 called fake
    assert report["eer"] == 0.5 and report["eer_threshold"] == 0.6
    assert report["roc_auc"] == 0.75
    assert report["confusion"]["real_called_fake"] == 1


@settings(max_examples=50, deadline=None)
@given(
    st.lists(
        st.tuples(st.sampled_from([FAKE, REAL]), st.integers(0, 100).map(lambda i: i / 100)),
        min_size=2,
        max_size=40,
    ).filter(lambda items: len({label for label, _ in items}) == 2)
)
def test_properties(items):
    labels = np.array([label for label, _ in items])
    scores = np.array([score for _, score in items])
    eer, threshold = equal_error_rate(labels, scores)
    assert 0.0 <= eer <= 1.0 and 0.0 <= threshold <= 1.0
    # AUC with fake as positive: flipping the scores swaps the classes' order
    assert roc_auc(labels, scores) + roc_auc(labels, 1.0 - scores) == pytest.approx(1.0)
    # only the order of the scores matters
    assert equal_error_rate(labels, scores**3)[0] == pytest.approx(eer)


def test_eer_threshold_is_the_equal_error_point() -> None:
    """Regression: sklearn's reduced ROC curve can drop the point where misses and false
    alarms meet. With as many fakes as reals and no ties the two rates meet exactly, so at the
    returned threshold they must be equal (the miss rate of fakes and the false-alarm rate of
    reals, with "fake when score >= threshold" as every command decides)."""
    for seed in range(200):
        rng = np.random.default_rng(seed)
        labels = np.array([FAKE] * 45 + [REAL] * 45)
        scores = np.where(labels == FAKE, rng.normal(0.6, 0.2, 90), rng.normal(0.4, 0.2, 90))
        eer, threshold = equal_error_rate(labels, scores)
        called_fake = scores >= threshold
        miss = np.mean(~called_fake[labels == FAKE])
        false_alarm = np.mean(called_fake[labels == REAL])
        assert miss == pytest.approx(false_alarm), seed
        assert eer == pytest.approx(miss), seed
