"""Choosing a panel's fusion for generators nobody trained on: leave one generator out.

A logistic-regression fusion fitted on validation learns which member is right on the
generators validation holds. On a generator none of them heard, those weights can be worse
than any member alone: the panel then trusts the member that was best at the familiar
generators, and a negative weight turns one member's blind spot into an anti-cue. Measured on
the demo corpus with the neural vocoder held out (issue 18), the plain fusion scored 11.1 %
EER on it against 8.9 % from its best member.

So the panel chooses its fusion the way it will be used, on a generator it has not seen:
every candidate below is fitted on the validation split with one generator's fakes left
out and scored on those fakes (against every real validation clip), once per generator; the
candidate with the lowest mean held-out EER is refitted on the whole validation split. Ties
go to the lower worst fold, then to the fewest members: when validation cannot tell the
candidates apart (its generators were all heard in training, and a strong member scores 0 %
on each), adding members is a bet it has no evidence for. On the demo corpus with the neural
vocoder held out (2026-12-07) the fusion chosen on a tie at 0 % scored 27.8 % on it, its
`seed_cnn` member 5.4 %: two members ranked the unheard fakes as real.

One exception: when the tie is between several members *alone* (say two ``seed_cnn`` from
different seeds, both at 0 %), their equal-weight average is taken instead (if it ties too,
as it does when they each score 0 %). Validation gives no reason to prefer one of them, and
for a convex loss such as the logistic one the average's loss is at most the mean of their
losses (Jensen's inequality): it is never worse than picking one at random, and it is what
makes a deep ensemble (Lakshminarayanan et al., NeurIPS 2017) robust to data unlike its
training data.

Candidates (every one is a linear fusion of the members' logits, so each is stored as an
ordinary :class:`~deepfake_audio.scoring.fusion.Fusion`):

* ``logistic C=...``: logistic regression with **non-negative** weights, at several
  strengths of the L2 penalty (a small ``C`` pulls the weights together);
* ``equal``: every member's logit divided by its standard deviation on the fitting data,
  summed, then scaled (each member counts the same, whatever its own scale);
* ``only <member>``: one member alone (then the panel is honest about being one model).

The real clips are shared by every fold (a validation split rarely has enough to split
them too); only the fakes are held out, as a generator is what goes unheard.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
from scipy.optimize import minimize
from scipy.special import expit

from deepfake_audio import metrics
from deepfake_audio.data.records import FAKE

#: Inverse L2 strengths of the non-negative logistic candidates (scikit-learn's ``C``).
STRENGTHS = (10.0, 1.0, 0.1, 0.01)
#: A generator is held out only when validation has at least this many of its fakes.
MIN_FOLD_FAKES = 5


@dataclass(frozen=True)
class Weights:
    """A linear fusion of logits: ``intercept + features @ coefficients``."""

    coefficients: np.ndarray
    intercept: float

    def score(self, features: np.ndarray) -> np.ndarray:
        return features @ self.coefficients + self.intercept


@dataclass
class Selection:
    """The chosen candidate, its weights on all of validation, and every candidate's
    held-out EER per generator (for the panel file and the log)."""

    chosen: str
    weights: Weights
    held_out: dict[str, dict[str, float]] = field(default_factory=dict)  # candidate -> gen -> EER

    def mean_eer(self, candidate: str) -> float:
        values = list(self.held_out.get(candidate, {}).values())
        return float(np.mean(values)) if values else float("nan")

    def to_dict(self) -> dict[str, object]:
        return {
            "method": "leave-one-generator-out on validation",
            "chosen": self.chosen,
            "held_out_eer": {
                name: {**eers, "mean": self.mean_eer(name)} for name, eers in self.held_out.items()
            },
        }


def fit_logistic(
    features: np.ndarray,
    target: np.ndarray,
    *,
    regularization: float = 1.0,
    nonnegative: bool = True,
) -> Weights:
    """Class-balanced logistic regression of ``target`` (1 = fake) on ``features``.

    The loss is scikit-learn's (``0.5 |w|^2 + C * sum of balanced log-losses``, intercept not
    penalised), minimised by L-BFGS-B so the weights can be held non-negative: a member
    whose high score means *real* on the fitting data is a cue of those generators only.
    """
    features = np.asarray(features, dtype=np.float64)
    target = np.asarray(target, dtype=np.float64)
    n, k = features.shape
    positives = target.sum()
    weight = np.where(target == 1, n / (2 * positives), n / (2 * (n - positives)))

    def loss(theta: np.ndarray) -> tuple[float, np.ndarray]:
        coef, intercept = theta[:k], theta[k]
        z = features @ coef + intercept
        # log(1 + e^-z) for fakes, log(1 + e^z) for reals, stably
        signed = np.where(target == 1, -z, z)
        value = 0.5 * coef @ coef + regularization * np.sum(weight * np.logaddexp(0.0, signed))
        residual = regularization * weight * (expit(z) - target)  # d loss / d z
        gradient = np.append(coef + features.T @ residual, residual.sum())
        return float(value), gradient

    bounds = [(0.0, None) if nonnegative else (None, None)] * k + [(None, None)]
    start = np.zeros(k + 1)
    result = minimize(loss, start, jac=True, method="L-BFGS-B", bounds=bounds)
    return Weights(result.x[:k].copy(), float(result.x[k]))


def _equal(features: np.ndarray, target: np.ndarray) -> Weights:
    spread = features.std(axis=0)
    scale = np.where(spread > 0, 1.0 / np.where(spread > 0, spread, 1.0), 0.0)
    summed = Weights(scale, 0.0).score(features)[:, None]
    fitted = fit_logistic(summed, target, regularization=1e4)
    return Weights(scale * fitted.coefficients[0], fitted.intercept)


def _equal_of(members: Sequence[int]):
    """:func:`_equal` over the columns ``members`` only (the others weigh 0)."""

    def fit(features: np.ndarray, target: np.ndarray) -> Weights:
        some = _equal(features[:, list(members)], target)
        coefficients = np.zeros(features.shape[1])
        coefficients[list(members)] = some.coefficients
        return Weights(coefficients, some.intercept)

    return fit


def _only(member: int):
    def fit(features: np.ndarray, target: np.ndarray) -> Weights:
        alone = fit_logistic(features[:, [member]], target, regularization=1e4)
        coefficients = np.zeros(features.shape[1])
        coefficients[member] = alone.coefficients[0]
        return Weights(coefficients, alone.intercept)

    return fit


def candidates(names: Sequence[str]) -> dict[str, object]:
    """Name -> ``fit(features, target) -> Weights`` for a panel of members ``names``, in
    order of preference when their held-out EERs tie."""
    found: dict[str, object] = {}
    for strength in STRENGTHS:
        found[f"logistic C={strength:g}"] = lambda f, t, c=strength: fit_logistic(
            f, t, regularization=c
        )
    found["equal"] = _equal
    for index, name in enumerate(names):
        found[f"only {name}"] = _only(index)
    return found


def held_out_folds(labels: np.ndarray, generators: Sequence[str | None]) -> dict[str, np.ndarray]:
    """Generator -> mask of its fakes, for every generator with enough validation fakes."""
    labels = np.asarray(labels)
    names = np.asarray([g or "" for g in generators], dtype=object)
    folds = {}
    for generator in sorted({g for g, y in zip(names, labels, strict=True) if y == FAKE and g}):
        mask = (names == generator) & (labels == FAKE)
        if mask.sum() >= MIN_FOLD_FAKES:
            folds[str(generator)] = mask
    return folds


def select_fusion(
    labels: np.ndarray,
    features: np.ndarray,
    generators: Sequence[str | None],
    names: Sequence[str],
) -> Selection | None:
    """The candidate with the lowest mean leave-one-generator-out EER, refitted on all of
    ``features`` (``(clips, members)`` logits, labels in project encoding). None when the
    validation split names fewer than two generators with enough fakes: then there is
    nothing to hold out, and the caller fits the plain fusion."""
    labels = np.asarray(labels)
    features = np.asarray(features, dtype=np.float64)
    folds = held_out_folds(labels, generators)
    if len(folds) < 2:
        return None
    target = (labels == FAKE).astype(np.float64)
    real = labels != FAKE

    def held_out_eers(fit) -> dict[str, float]:
        """Generator -> EER on its fakes (and every real clip) of ``fit`` made without them."""
        eers = {}
        for generator, fakes in folds.items():
            weights = fit(features[~fakes], target[~fakes])
            scored = fakes | real
            eer, _ = metrics.equal_error_rate(labels[scored], weights.score(features[scored]))
            eers[generator] = float(eer)
        return eers

    fits = candidates(names)
    held_out = {name: held_out_eers(fit) for name, fit in fits.items()}
    selection = Selection("", Weights(np.zeros(len(names)), 0.0), held_out)

    def held_out_key(name: str) -> tuple[float, float]:
        return round(selection.mean_eer(name), 6), round(max(held_out[name].values()), 6)

    on_all = {name: fit(features, target) for name, fit in fits.items()}  # ties and result
    chosen = min(
        fits,
        key=lambda name: (*held_out_key(name), int(np.count_nonzero(on_all[name].coefficients))),
    )
    tied = [n for n in names if held_out_key(f"only {n}") == held_out_key(chosen)]
    if len(tied) >= 2:  # validation cannot tell these members apart: average them
        name = f"equal of {' + '.join(tied)}"
        fit = _equal_of([list(names).index(n) for n in tied])
        held_out[name] = held_out_eers(fit)
        if held_out_key(name) <= held_out_key(chosen):
            chosen, on_all[name] = name, fit(features, target)
    selection.chosen = chosen
    selection.weights = on_all[chosen]
    return selection
