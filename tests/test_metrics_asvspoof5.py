"""ASVspoof 5 metrics in metrics.py on cases worked out by hand.

Project conventions: fake = 0, real = 1; scores and llrs are "higher = more fake". ASVspoof 5
naming: P_miss = share of REAL clips called fake, P_fa = share of FAKE clips called real; a
clip is called fake when score > threshold (strictly).

At the ASVspoof 5 point (p_spoof 0.05, c_miss 1, c_fa 10):
    DCF = 1 * 0.95 * P_miss + 10 * 0.05 * P_fa = 0.95 * P_miss + 0.5 * P_fa
    normaliser = min(0.95, 0.5) = 0.5, Bayes threshold = log(0.95 / 0.5) = log(1.9).
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from deepfake_audio.metrics import (
    C_FA,
    C_MISS,
    P_SPOOF,
    act_dcf,
    bayes_error_curve,
    bayes_threshold,
    cllr,
    equal_error_rate,
    min_cllr,
    min_dcf,
    normalized_dcf,
    pav_llr,
)

FAKE, REAL = 0, 1

# Two fakes (0.9, 0.4) and two reals (0.6, 0.1).
LABELS = np.array([FAKE, FAKE, REAL, REAL])
SCORES = np.array([0.9, 0.4, 0.6, 0.1])


def test_constants_and_bayes_threshold():
    assert (P_SPOOF, C_MISS, C_FA) == (0.05, 1.0, 10.0)
    assert bayes_threshold(p_spoof=0.05, c_miss=1.0, c_fa=10.0) == pytest.approx(math.log(1.9))
    # Equal priors and costs: the threshold is llr 0.
    assert bayes_threshold(p_spoof=0.5, c_miss=1.0, c_fa=1.0) == 0.0


@pytest.mark.parametrize(
    ("threshold", "expected"),
    [
        # -inf: everything fake: P_miss = 2/2, P_fa = 0 -> 0.95 / 0.5 = 1.9
        (-math.inf, 1.9),
        # 0.1: fake = {0.9, 0.4, 0.6}: P_miss = 1/2 (real 0.6), P_fa = 0 -> 0.475 / 0.5 = 0.95
        (0.1, 0.95),
        # 0.4: fake = {0.9, 0.6}: P_miss = 1/2, P_fa = 1/2 -> (0.475 + 0.25) / 0.5 = 1.45
        (0.4, 1.45),
        # 0.6: fake = {0.9}: P_miss = 0, P_fa = 1/2 -> 0.25 / 0.5 = 0.5
        (0.6, 0.5),
        # 0.9 and +inf: everything real: P_miss = 0, P_fa = 1 -> 0.5 / 0.5 = 1
        (0.9, 1.0),
        (math.inf, 1.0),
    ],
)
def test_normalized_dcf_by_hand(threshold, expected):
    assert normalized_dcf(LABELS, SCORES, threshold) == pytest.approx(expected)


def test_min_dcf_by_hand():
    # The smallest of the six values above: 0.5 at threshold 0.6.
    assert min_dcf(LABELS, SCORES) == pytest.approx(0.5)


def test_a_score_equal_to_the_threshold_is_called_real():
    labels, scores = np.array([FAKE, REAL]), np.array([0.5, 0.5])
    # At 0.5 both are real (not strictly above): P_miss 0, P_fa 1 -> 0.5 / 0.5 = 1.
    assert normalized_dcf(labels, scores, 0.5) == pytest.approx(1.0)
    # Just below, both are fake: P_miss 1, P_fa 0 -> 0.95 / 0.5 = 1.9.
    assert normalized_dcf(labels, scores, 0.49) == pytest.approx(1.9)


def test_min_dcf_never_splits_tied_scores():
    # Fakes 0.7, 0.5; reals 0.5, 0.2. Splitting the 0.5 tie would separate perfectly (DCF 0),
    # but a threshold cannot: -inf 1.9; 0.2 -> P_miss 1/2 -> 0.95; 0.5 -> P_fa 1/2 -> 0.5;
    # 0.7 -> P_fa 1 -> 1. The real 0.5 comes first, so a stable sort that cut between the
    # tied clips would wrongly find 0.
    labels = np.array([REAL, FAKE, FAKE, REAL])
    scores = np.array([0.5, 0.5, 0.7, 0.2])
    assert min_dcf(labels, scores) == pytest.approx(0.5)


def test_act_dcf_by_hand():
    # llr: fakes 2.0, 0.5; reals 1.0, -1.0; threshold log(1.9) ~ 0.642.
    # Fake 0.5 called real (P_fa 1/2), real 1.0 called fake (P_miss 1/2):
    # (0.95 * 0.5 + 0.5 * 0.5) / 0.5 = 1.45.
    labels = np.array([FAKE, FAKE, REAL, REAL])
    llr = np.array([2.0, 0.5, 1.0, -1.0])
    assert act_dcf(labels, llr) == pytest.approx(1.45)
    # Best threshold is 1.0: P_miss 0, P_fa 1/2 -> 0.5.
    assert min_dcf(labels, llr) == pytest.approx(0.5)


def test_cllr_by_hand():
    # llr 0 everywhere: every term is log2(1 + 1) = 1 bit.
    assert cllr(LABELS, np.zeros(4)) == pytest.approx(1.0)
    # A fake at log 3: log2(1 + 1/3) = log2(4/3); a real at -log 3: log2(1 + 1/3) too.
    labels = np.array([FAKE, REAL])
    assert cllr(labels, np.array([math.log(3), -math.log(3)])) == pytest.approx(math.log2(4 / 3))
    # Fakes at log 3 and 0, a real at -log 3: 0.5 * ((log2(4/3) + 1) / 2 + log2(4/3)).
    labels = np.array([FAKE, FAKE, REAL])
    llr = np.array([math.log(3), 0.0, -math.log(3)])
    assert cllr(labels, llr) == pytest.approx(0.75 * math.log2(4 / 3) + 0.25)


def test_large_llrs_stay_finite():
    labels = np.array([FAKE, REAL])
    right = cllr(labels, np.array([1000.0, -1000.0]))
    assert math.isfinite(right) and right == pytest.approx(0.0, abs=1e-12)
    # Confidently wrong: each term log2(1 + e^1000) = 1000 / ln 2.
    wrong = cllr(labels, np.array([-1000.0, 1000.0]))
    assert wrong == pytest.approx(1000 / math.log(2))
    assert math.isfinite(min_cllr(labels, np.array([-1000.0, 1000.0])))


def test_pav_llr_by_hand():
    # Sorted: real 0.1, real 0.2, fake 0.3, real 0.4 -> is-fake 0, 0, 1, 0. PAV pools the last
    # two to 0.5; prior odds n_fake / n_real = 1/3, so llr = logit(0.5) - log(1/3) = log 3.
    labels = np.array([REAL, REAL, FAKE, REAL])
    scores = np.array([0.1, 0.2, 0.3, 0.4])
    with np.errstate(all="raise"):  # no warnings either
        llr = pav_llr(labels, scores)
    assert llr[:2].tolist() == [-math.inf, -math.inf]
    assert llr[2:] == pytest.approx([math.log(3), math.log(3)])


def test_min_cllr_by_hand():
    # Sorted: real 0.1, fake 0.4, real 0.6, fake 0.9 -> is-fake 0, 1, 0, 1; PAV gives posteriors
    # 0, 0.5, 0.5, 1 and (equal classes) llr -inf, 0, 0, +inf. Fakes cost (1 + 0) / 2, reals
    # (0 + 1) / 2: Cllr 0.5.
    assert min_cllr(LABELS, SCORES) == pytest.approx(0.5)
    # Fully inverted scores: PAV pools everything to 0.5, llr 0: 1 bit.
    labels = np.array([FAKE, REAL, FAKE, REAL])
    assert min_cllr(labels, np.array([1.0, 2.0, 3.0, 4.0])) == pytest.approx(1.0)


def test_perfect_separation():
    labels = np.array([FAKE, FAKE, FAKE, REAL, REAL])
    scores = np.array([0.8, 0.95, 0.7, 0.1, 0.3])
    assert min_dcf(labels, scores) == 0.0
    assert min_cllr(labels, scores) == 0.0


def test_one_class_gives_nan():
    labels = np.array([FAKE, FAKE])
    scores = np.array([0.3, 0.8])
    assert math.isnan(normalized_dcf(labels, scores, 0.5))
    assert math.isnan(min_dcf(labels, scores))
    assert math.isnan(act_dcf(labels, scores))
    assert math.isnan(cllr(labels, scores))
    assert math.isnan(min_cllr(labels, scores))
    assert np.isnan(pav_llr(labels, scores)).all()
    actual, minimum = bayes_error_curve(labels, scores, np.array([-1.0, 0.0, 1.0]))
    assert np.isnan(actual).all() and np.isnan(minimum).all()
    assert math.isnan(min_dcf(np.array([], dtype=int), np.array([])))


def test_bayes_error_curve_by_hand():
    # llr: fakes 2.0, 0.5; reals 1.0, -1.0.
    labels = np.array([FAKE, FAKE, REAL, REAL])
    llr = np.array([2.0, 0.5, 1.0, -1.0])
    actual, minimum = bayes_error_curve(labels, llr, np.array([0.0, 2.0]))
    # eta 0 (pi 0.5): fake when llr > 0: P_fa 0, P_miss 1/2 -> (0.5 * 0.5) / 0.5 = 0.5.
    # PAV: sorted -1r, 0.5f, 1.0r, 2.0f -> llr -inf, 0, 0, +inf; fake when > 0: only 2.0,
    # P_fa 1/2, P_miss 0 -> 0.5.
    assert actual[0] == pytest.approx(0.5)
    assert minimum[0] == pytest.approx(0.5)
    # eta 2: threshold -2 calls everything fake: P_miss 1 -> (1 - pi) / (1 - pi) = 1 (the
    # default). PAV llrs: only -inf is real: P_miss 1/2 -> 0.5.
    assert actual[1] == pytest.approx(1.0)
    assert minimum[1] == pytest.approx(0.5)


# --- properties -----------------------------------------------------------------------------

# Scores on a grid of 1/16 so ties are exact and a strictly increasing map keeps them distinct.
labelled_grid = st.lists(
    st.tuples(st.sampled_from([FAKE, REAL]), st.integers(-48, 48)), min_size=2, max_size=40
).filter(lambda items: {label for label, _ in items} == {FAKE, REAL})


def _arrays(items):
    labels = np.array([label for label, _ in items])
    scores = np.array([value / 16 for _, value in items], dtype=np.float64)
    return labels, scores


@settings(max_examples=100, deadline=None)
@given(labelled_grid)
def test_min_dcf_is_the_minimum_over_thresholds(items):
    labels, scores = _arrays(items)
    thresholds = np.r_[-np.inf, np.unique(scores), np.inf]
    brute = min(normalized_dcf(labels, scores, t) for t in thresholds)
    assert min_dcf(labels, scores) == pytest.approx(brute, abs=1e-12)


@settings(max_examples=100, deadline=None)
@given(labelled_grid)
def test_min_dcf_and_eer_ignore_strictly_increasing_maps(items):
    labels, scores = _arrays(items)
    mapped = np.exp(3 * scores) + 1
    assert min_dcf(labels, mapped) == pytest.approx(min_dcf(labels, scores), abs=1e-12)
    assert equal_error_rate(labels, mapped)[0] == pytest.approx(
        equal_error_rate(labels, scores)[0], abs=1e-12
    )
    assert min_cllr(labels, mapped) == pytest.approx(min_cllr(labels, scores), abs=1e-12)


@settings(max_examples=100, deadline=None)
@given(labelled_grid, st.floats(0.05, 5.0), st.floats(-3.0, 3.0))
def test_calibration_never_beats_its_minimum(items, scale, shift):
    labels, scores = _arrays(items)
    llr = scale * scores + shift
    assert min_cllr(labels, scores) <= cllr(labels, llr) + 1e-12
    assert act_dcf(labels, llr) >= min_dcf(labels, llr) - 1e-12
    eta = np.linspace(-7, 7, 57)
    actual, minimum = bayes_error_curve(labels, llr, eta)
    assert np.all(actual >= minimum - 1e-12)
    assert np.isfinite(actual).all() and np.isfinite(minimum).all()


@pytest.mark.parametrize("seed", range(5))
def test_min_cllr_below_cllr_of_random_llrs(seed):
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 2, 200)
    llr = rng.normal(size=200) * 3 + np.where(labels == FAKE, 1.5, -1.5)
    assert min_cllr(labels, llr) <= cllr(labels, llr) + 1e-12
    assert act_dcf(labels, llr) >= min_dcf(labels, llr) - 1e-12


@pytest.mark.parametrize("eta", [-5.0, -1.05, 0.0, 0.75, 4.05])
def test_bayes_error_curve_matches_the_dcfs_with_unit_costs(eta):
    rng = np.random.default_rng(1)
    labels = rng.integers(0, 2, 100)
    # On a 0.1 grid (ties) but never exactly at a threshold, where rounding of log((1-pi)/pi)
    # could flip a decision.
    llr = np.round(rng.normal(size=100) + np.where(labels == FAKE, 1.0, -1.0), 1)
    pi = 1 / (1 + math.exp(-eta))
    actual, minimum = bayes_error_curve(labels, llr, np.array([eta]))
    costs = {"p_spoof": pi, "c_miss": 1.0, "c_fa": 1.0}
    assert actual[0] == pytest.approx(act_dcf(labels, llr, **costs), abs=1e-9)
    assert minimum[0] == pytest.approx(min_dcf(labels, llr, **costs), abs=1e-9)
