"""Calibration: a model's raw score -> a log-likelihood ratio that means what it says.

A detector's probability of fake ranks clips, but its value depends on the model, its
training balance and its last epoch: 0.9 from one model is not 0.9 from another. A
*calibrated* score is a log-likelihood ratio, ``llr = ln p(clip | fake) / p(clip | real)``
(positive: evidence of fake), and then the probability of fake follows from the prior a
user states: ``p_fake = sigmoid(llr + ln(prior / (1 - prior)))``. A decision that minimises
expected cost follows from the prior and two costs, with no threshold to guess.

The map is affine in the raw log-odds, ``llr = scale * logit(raw) + offset`` (the standard
linear calibration of speaker and spoofing detection, e.g. Brümmer's FoCal), fitted by
prior-weighted logistic regression on labelled scores: each class weighs ``prior`` and
``1 - prior`` in total, whatever its count, and the fitted log-odds minus the prior's are the
llr. Training fits it on the validation scores; ``deepfake-audio calibrate`` refits it on a
user's own data. A model without one (older checkpoints, imported weights) uses the identity,
``llr = logit(raw)``, and reports say so.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from deepfake_audio.data.records import FAKE, REAL

#: Raw probabilities are clipped to [CLIP, 1 - CLIP] before the logit (at most ~34.5): far
#: enough out that an uncalibrated model's probability comes back unchanged through
#: ``posterior(logit(p))``, yet finite for a softmax saturated at exactly 0 or 1.
CLIP = 1e-15


class CalibrationError(ValueError):
    """Calibration cannot be fitted (one class only, scores that do not separate) or read."""


def logit(p: np.ndarray | float) -> np.ndarray:
    """Log-odds of probabilities, clipped so that 0 and 1 give finite values."""
    q = np.clip(np.asarray(p, dtype=np.float64), CLIP, 1.0 - CLIP)
    return np.log(q) - np.log1p(-q)


def prior_log_odds(prior_fake: float) -> float:
    """``ln(prior / (1 - prior))``; the prior must be strictly between 0 and 1."""
    if not 0.0 < prior_fake < 1.0:
        raise ValueError(f"the prior of fake must be strictly between 0 and 1, got {prior_fake}")
    return math.log(prior_fake) - math.log1p(-prior_fake)


def posterior(llr: np.ndarray | float, prior_fake: float = 0.5) -> np.ndarray:
    """Probability of fake given the evidence ``llr`` and the prior (overflow-free)."""
    from scipy.special import expit

    return expit(np.asarray(llr, dtype=np.float64) + prior_log_odds(prior_fake))


@dataclass(frozen=True)
class Calibration:
    """``llr = scale * logit(raw) + offset``; ``fitted`` says on what (empty: the identity)."""

    scale: float = 1.0
    offset: float = 0.0
    fitted: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not (math.isfinite(self.scale) and self.scale > 0):
            raise CalibrationError(f"calibration scale must be positive, got {self.scale!r}")
        if not math.isfinite(self.offset):
            raise CalibrationError(f"calibration offset must be finite, got {self.offset!r}")

    @property
    def is_identity(self) -> bool:
        """True when nothing was fitted: the llr is the model's own log-odds."""
        return not self.fitted

    def llr(self, raw: np.ndarray | float) -> np.ndarray:
        """The calibrated log-likelihood ratio of raw probabilities of fake."""
        return self.scale * logit(raw) + self.offset

    def to_dict(self) -> dict[str, Any]:
        return {"scale": self.scale, "offset": self.offset, "fitted": self.fitted}

    @classmethod
    def from_dict(cls, values: Any) -> Calibration:
        """Read a stored calibration; anything malformed is a :class:`CalibrationError`."""
        if not isinstance(values, dict):
            raise CalibrationError(f"must be an object, got {type(values).__name__}")
        scale, offset = values.get("scale"), values.get("offset")
        if not all(isinstance(v, int | float) and not isinstance(v, bool) for v in (scale, offset)):
            raise CalibrationError(f"scale and offset must be numbers, got {scale!r}, {offset!r}")
        fitted = values.get("fitted") or {}
        if not isinstance(fitted, dict):
            raise CalibrationError("'fitted' must be an object")
        return cls(float(scale), float(offset), fitted)

    def describe(self) -> str:
        if self.is_identity:
            return "not calibrated (identity: llr = the model's log-odds)"
        where = self.fitted.get("data", "labelled data")
        return (
            f"llr = {self.scale:.4g} x logit(raw) {self.offset:+.4g}, fitted on "
            f"{self.fitted.get('fake', '?')} fake / {self.fitted.get('real', '?')} real clips "
            f"of {where}"
        )


def fit_calibration(
    labels: np.ndarray, raw: np.ndarray, *, prior: float = 0.5, data: str = ""
) -> Calibration:
    """Fit the affine llr map by prior-weighted logistic regression on ``raw`` scores.

    ``labels`` use the project's encoding (fake 0, real 1). Each class gets total weight
    ``prior`` (fake) and ``1 - prior`` (real), so the result does not depend on the class
    counts; the fitted log-odds minus ``logit(prior)`` is the llr. Raises
    :class:`CalibrationError` with one class, or when higher scores do not mean more fake.
    """
    from sklearn.linear_model import LogisticRegression

    labels = np.asarray(labels)
    is_fake = labels == FAKE
    n_fake, n_real = int(is_fake.sum()), int((labels == REAL).sum())
    if n_fake == 0 or n_real == 0:
        raise CalibrationError(
            f"calibration needs both fake and real clips; got {n_fake} fake and {n_real} real"
        )
    x = logit(np.asarray(raw))[:, np.newaxis]
    weights = np.where(is_fake, prior / n_fake, (1.0 - prior) / n_real)
    weights = weights * len(labels)  # mean weight 1: the solver's tolerance keeps its meaning
    # A whisper of L2 on the scale keeps the map finite when the scores separate the classes
    # perfectly (then unpenalised logistic regression has no optimum); elsewhere it changes
    # nothing that shows (a scale of 10 costs 0.005 against a loss summed over the clips).
    model = LogisticRegression(C=1e4, solver="lbfgs", max_iter=1000)
    model.fit(x, is_fake.astype(int), sample_weight=weights)
    scale = float(model.coef_[0, 0])
    offset = float(model.intercept_[0]) - prior_log_odds(prior)
    if not scale > 0:
        raise CalibrationError(
            f"the scores do not separate fake from real in the right direction (fitted scale "
            f"{scale:.3g}): this model cannot be calibrated on this data"
        )
    return Calibration(
        scale, offset, {"fake": n_fake, "real": n_real, "prior": prior, "data": data}
    )
