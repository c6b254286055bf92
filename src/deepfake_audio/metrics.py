"""Detection metrics, computed one way for the whole project.

Conventions: the *positive class is fake* (what a detector is looking for); ``scores`` are
the probability of fake, and a clip is called fake when ``score >= threshold``. Labels use
the project's encoding (fake = 0, real = 1).

The ASVspoof 5 metrics below (minimum/actual DCF, Cllr, minimum Cllr, Bayes error curves)
keep fake as the positive class but take ``scores`` as "higher = more fake" and ``llr`` as
the natural-log likelihood ratio of fake against real. Their words come from ASVspoof 5, where
the detector guards bona fide speech: a *miss* there is a real clip called fake and a *false
alarm* a fake clip called real -- the other way round from ``equal_error_rate`` here.
"""

from __future__ import annotations

import math

import numpy as np
from sklearn.isotonic import IsotonicRegression
from sklearn.metrics import roc_auc_score, roc_curve

from deepfake_audio.data.records import FAKE, REAL

#: ASVspoof 5 operating point: prior of a spoof (fake) and the costs of the two errors.
#: C_MISS is the cost of rejecting bona fide speech (a real clip called fake); C_FA the cost
#: of accepting a spoof (a fake clip called real).
P_SPOOF = 0.05
C_MISS = 1.0
C_FA = 10.0


def _is_fake(labels: np.ndarray) -> np.ndarray:
    return (np.asarray(labels) == FAKE).astype(np.int64)


def predict(scores: np.ndarray, threshold: float) -> np.ndarray:
    """Labels (fake = 0, real = 1) from fake-probabilities at ``threshold``."""
    return np.where(np.asarray(scores) >= threshold, FAKE, REAL)


def accuracy(labels: np.ndarray, predictions: np.ndarray) -> float:
    labels = np.asarray(labels)
    return float(np.mean(labels == np.asarray(predictions))) if labels.size else math.nan


def balanced_accuracy(labels: np.ndarray, predictions: np.ndarray) -> float:
    """Mean of the per-class recalls (fake and real weigh the same whatever their counts)."""
    labels, predictions = np.asarray(labels), np.asarray(predictions)
    recalls = [np.mean(predictions[labels == c] == c) for c in (FAKE, REAL) if np.any(labels == c)]
    return float(np.mean(recalls)) if recalls else math.nan


def confusion(labels: np.ndarray, predictions: np.ndarray) -> dict[str, int]:
    """Counts with fake as positive: true/false positives and negatives."""
    labels, predictions = np.asarray(labels), np.asarray(predictions)
    return {
        "true_fake": int(np.sum((labels == FAKE) & (predictions == FAKE))),
        "fake_called_real": int(np.sum((labels == FAKE) & (predictions == REAL))),
        "real_called_fake": int(np.sum((labels == REAL) & (predictions == FAKE))),
        "true_real": int(np.sum((labels == REAL) & (predictions == REAL))),
    }


def equal_error_rate(labels: np.ndarray, scores: np.ndarray) -> tuple[float, float]:
    """``(eer, threshold)``: the rate where false alarms equal misses, and the score there.

    False alarm: real called fake; miss: fake called real. Computed on the ROC curve; between
    two ROC points the EER is the mean of the two rates at the closest point (the usual
    convention of ASVspoof tooling). ``(nan, 0.5)`` when only one class is present.
    """
    positives = _is_fake(labels)
    if positives.min(initial=1) == positives.max(initial=0):
        return math.nan, 0.5
    # Every threshold, not sklearn's default reduced curve: dropping "intermediate" points
    # can drop the one where misses and false alarms meet, and store a threshold a step or
    # two away from the equal-error point.
    fpr, tpr, thresholds = roc_curve(
        positives, np.asarray(scores, dtype=np.float64), drop_intermediate=False
    )
    fnr = 1.0 - tpr
    index = int(np.nanargmin(np.abs(fnr - fpr)))
    eer = float((fpr[index] + fnr[index]) / 2.0)
    threshold = float(min(thresholds[index], 1.0))  # sklearn puts +inf in front
    return eer, threshold


def roc_auc(labels: np.ndarray, scores: np.ndarray) -> float:
    """Area under the ROC curve with fake as positive; nan with one class."""
    positives = _is_fake(labels)
    if positives.min(initial=1) == positives.max(initial=0):
        return math.nan
    return float(roc_auc_score(positives, np.asarray(scores, dtype=np.float64)))


def summarize(labels: np.ndarray, scores: np.ndarray, threshold: float = 0.5) -> dict:
    """Every metric at once, for reports: accuracy at ``threshold``, EER and its threshold, AUC."""
    predictions = predict(scores, threshold)
    eer, eer_threshold = equal_error_rate(labels, scores)
    return {
        "count": int(np.asarray(labels).size),
        "accuracy": accuracy(labels, predictions),
        "balanced_accuracy": balanced_accuracy(labels, predictions),
        "eer": eer,
        "eer_threshold": eer_threshold,
        "roc_auc": roc_auc(labels, scores),
        "threshold": threshold,
        "confusion": confusion(labels, predictions),
    }


# --- ASVspoof 5 metrics ---------------------------------------------------------------------
#
# Naming follows ASVspoof 5 (the detector protects bona fide speech): P_miss is the share of
# REAL clips called fake, P_fa the share of FAKE clips called real. A clip is called fake when
# its score is strictly greater than the threshold.


def _classes(labels: np.ndarray, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(fake_scores, real_scores)`` as float64 arrays."""
    labels = np.asarray(labels)
    scores = np.asarray(scores, dtype=np.float64)
    if labels.shape != scores.shape:
        raise ValueError(f"labels {labels.shape} and scores {scores.shape} differ in shape")
    return scores[labels == FAKE], scores[labels == REAL]


def _dcf_normaliser(p_spoof: float, c_miss: float, c_fa: float) -> float:
    # The cost of the better of the two trivial systems (all fake / all real): a normalized
    # DCF of 1 means the detector is no better than ignoring the audio.
    return min(c_miss * (1.0 - p_spoof), c_fa * p_spoof)


def bayes_threshold(*, p_spoof: float, c_miss: float, c_fa: float) -> float:
    """The llr above which calling a clip fake has the lower expected cost.

    ``log(c_miss * (1 - p_spoof) / (c_fa * p_spoof))``: calling fake costs ``c_miss`` when the
    clip is real (prior ``1 - p_spoof``), calling real costs ``c_fa`` when it is fake (prior
    ``p_spoof``); a well-calibrated llr beats this threshold exactly when the first expected
    cost is the smaller one. For ASVspoof 5 it is ``log(1.9)``.
    """
    return math.log(c_miss * (1.0 - p_spoof) / (c_fa * p_spoof))


def normalized_dcf(
    labels: np.ndarray,
    scores: np.ndarray,
    threshold: float,
    *,
    p_spoof: float = P_SPOOF,
    c_miss: float = C_MISS,
    c_fa: float = C_FA,
) -> float:
    """Normalized detection cost at one threshold (ASVspoof 5 definition).

    ``DCF = c_miss * (1 - p_spoof) * P_miss + c_fa * p_spoof * P_fa``, where a clip is called
    fake when ``score > threshold`` (strictly), ``P_miss`` is the share of *real* clips called
    fake (bona fide rejected) and ``P_fa`` the share of *fake* clips called real (spoof
    accepted) -- note these are the reverse of "false alarm"/"miss" in ``equal_error_rate``.
    Divided by ``min(c_miss * (1 - p_spoof), c_fa * p_spoof)`` so that 1 is the cost of the
    best system that ignores the audio. nan when a class is missing.
    """
    fake, real = _classes(labels, scores)
    if fake.size == 0 or real.size == 0:
        return math.nan
    p_miss = float(np.mean(real > threshold))
    p_fa = float(np.mean(fake <= threshold))
    cost = c_miss * (1.0 - p_spoof) * p_miss + c_fa * p_spoof * p_fa
    return cost / _dcf_normaliser(p_spoof, c_miss, c_fa)


def min_dcf(
    labels: np.ndarray,
    scores: np.ndarray,
    *,
    p_spoof: float = P_SPOOF,
    c_miss: float = C_MISS,
    c_fa: float = C_FA,
) -> float:
    """Lowest normalized DCF over every threshold: the cost with a perfectly chosen threshold.

    Measures discrimination only (independent of calibration and of any strictly increasing
    map of the scores). Thresholds are -inf (all called fake), each distinct score (clips at
    or below it called real) and +inf (all real, the same split as the largest score); tied
    scores always fall on the same side, since a threshold cannot separate equal values.
    Computed with one sort and cumulative counts. nan when a class is missing.
    """
    labels = np.asarray(labels)
    scores = np.asarray(scores, dtype=np.float64)
    fake_scores, real_scores = _classes(labels, scores)
    n_fake, n_real = fake_scores.size, real_scores.size
    if n_fake == 0 or n_real == 0:
        return math.nan
    keep = (labels == FAKE) | (labels == REAL)
    order = np.argsort(scores[keep], kind="stable")
    sorted_scores = scores[keep][order]
    is_fake = labels[keep][order] == FAKE
    # Last position of each run of equal scores: thresholds sit only between distinct values.
    ends = np.flatnonzero(np.r_[sorted_scores[1:] != sorted_scores[:-1], True])
    fake_at_or_below = np.r_[0, np.cumsum(is_fake)[ends]]
    real_at_or_below = np.r_[0, np.cumsum(~is_fake)[ends]]
    p_fa = fake_at_or_below / n_fake  # fakes called real
    p_miss = (n_real - real_at_or_below) / n_real  # reals called fake
    cost = c_miss * (1.0 - p_spoof) * p_miss + c_fa * p_spoof * p_fa
    return float(np.min(cost) / _dcf_normaliser(p_spoof, c_miss, c_fa))


def act_dcf(
    labels: np.ndarray,
    llr: np.ndarray,
    *,
    p_spoof: float = P_SPOOF,
    c_miss: float = C_MISS,
    c_fa: float = C_FA,
) -> float:
    """Normalized DCF of the decisions a calibrated llr implies: threshold at the Bayes point.

    Calls fake when ``llr > bayes_threshold(...)``. Unlike ``min_dcf`` it charges for bad
    calibration, so ``act_dcf >= min_dcf`` and the gap is the calibration loss.
    """
    threshold = bayes_threshold(p_spoof=p_spoof, c_miss=c_miss, c_fa=c_fa)
    return normalized_dcf(labels, llr, threshold, p_spoof=p_spoof, c_miss=c_miss, c_fa=c_fa)


def cllr(labels: np.ndarray, llr: np.ndarray) -> float:
    """Log-likelihood-ratio cost in bits: how much an llr costs across all operating points.

    ``0.5 * (mean_fake log2(1 + exp(-llr)) + mean_real log2(1 + exp(llr)))``; 0 for a perfect
    system, 1 bit for one that always says llr = 0. Computed with ``np.logaddexp`` so huge
    llrs (+-1000) stay finite when right and give inf when confidently wrong. nan when a
    class is missing.
    """
    fake, real = _classes(labels, llr)
    if fake.size == 0 or real.size == 0:
        return math.nan
    fake_cost = np.mean(np.logaddexp(0.0, -fake))
    real_cost = np.mean(np.logaddexp(0.0, real))
    return float(0.5 * (fake_cost + real_cost) / math.log(2.0))


def pav_llr(labels: np.ndarray, scores: np.ndarray) -> np.ndarray:
    """The best llr any non-decreasing map of ``scores`` can give, by pool-adjacent-violators.

    Isotonic regression of is-fake on the scores gives the optimal monotone posterior
    P(fake | score) on these clips; subtracting the log prior odds of the data
    ``log(n_fake / n_real)`` turns it into an llr. Posteriors of 0 or 1 give -inf / +inf.
    The regression is fitted on the ranks of the scores (same result, since it only depends
    on their order), so infinite scores are accepted. All nan when a class is missing.
    """
    labels = np.asarray(labels)
    scores = np.asarray(scores, dtype=np.float64)
    fake, real = _classes(labels, scores)
    if fake.size == 0 or real.size == 0:
        return np.full(scores.shape, np.nan)
    _, ranks = np.unique(scores, return_inverse=True)
    ranks = ranks.reshape(scores.shape).astype(np.float64)
    model = IsotonicRegression(increasing=True, out_of_bounds="clip")
    posterior = model.fit(ranks, labels == FAKE).predict(ranks)
    posterior = np.clip(posterior, 0.0, 1.0)
    with np.errstate(divide="ignore"):
        logit = np.log(posterior) - np.log1p(-posterior)
    return logit - math.log(fake.size / real.size)


def min_cllr(labels: np.ndarray, scores: np.ndarray) -> float:
    """Cllr after the best monotone calibration: the discrimination part of Cllr.

    ``cllr(labels, pav_llr(labels, scores))``; never above the Cllr of any monotone transform
    of the scores. Infinite PAV llrs only occur in bins holding one class, where they cost 0
    (``logaddexp(0, -inf) == 0``), so the result is finite. nan when a class is missing.
    """
    return cllr(labels, pav_llr(labels, scores))


def _bayes_error(fake: np.ndarray, real: np.ndarray, prior_log_odds: np.ndarray) -> np.ndarray:
    """Normalized Bayes error of llrs ``fake``/``real`` at each prior log-odds (unit costs)."""
    eta = np.asarray(prior_log_odds, dtype=np.float64)
    threshold = -eta
    # P_fa: fakes called real (llr <= -eta); P_miss: reals called fake (llr > -eta).
    p_fa = np.searchsorted(np.sort(fake), threshold, side="right") / fake.size
    p_miss = 1.0 - np.searchsorted(np.sort(real), threshold, side="right") / real.size
    # pi / min(pi, 1 - pi) = exp(max(eta, 0)), (1 - pi) / min(pi, 1 - pi) = exp(max(-eta, 0)).
    with np.errstate(over="ignore", invalid="ignore"):
        fa_term = np.where(p_fa > 0, np.exp(np.maximum(eta, 0.0)) * p_fa, 0.0)
        miss_term = np.where(p_miss > 0, np.exp(np.maximum(-eta, 0.0)) * p_miss, 0.0)
    return fa_term + miss_term


def bayes_error_curve(
    labels: np.ndarray, llr: np.ndarray, prior_log_odds: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """``(actual, minimum)`` normalized Bayes error at each prior log-odds, for an APE plot.

    For prior log-odds ``eta`` (prior of fake ``pi = sigmoid(eta)``) and unit costs, a clip is
    called fake when ``llr > -eta`` and the error is
    ``(pi * P_fa + (1 - pi) * P_miss) / min(pi, 1 - pi)``, with (ASVspoof 5 naming) P_fa the
    share of fake clips called real and P_miss the share of real clips called fake; 1 is the
    error of deciding by the prior alone. ``minimum`` is the same with ``pav_llr`` in place of
    ``llr`` -- the best any threshold could do at that prior -- so the gap between the two
    curves is the calibration loss at each operating point (Brümmer & du Preez). All nan when
    a class is missing.
    """
    eta = np.asarray(prior_log_odds, dtype=np.float64)
    fake, real = _classes(labels, llr)
    if fake.size == 0 or real.size == 0:
        nan = np.full(eta.shape, np.nan)
        return nan, nan.copy()
    calibrated = pav_llr(labels, llr)
    best_fake, best_real = _classes(labels, calibrated)
    return _bayes_error(fake, real, eta), _bayes_error(best_fake, best_real, eta)
