"""The shortcut audit: could a model tell fake from real without listening for fakeness?

For each cheap per-file fact (:mod:`deepfake_audio.data.features`: duration, leading and
trailing silence, loudness, bandwidth, DC offset, sample rate, channels, bit depth,
container), and for all of them together, a small classifier (:class:`BinnedLogOdds`) is
fitted on the training split and scored on the evaluation splits. Its ROC-AUC, oriented so
that 0.5 is chance and 1 is a perfect separation whichever way round, says how much a
detector could score from that fact alone. A fact at or above the threshold (0.8 by
default) is *flagged*: a detector trained on this data may be learning it instead of
synthesis artefacts, and its test figures may not carry over to data without the cue.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np

from deepfake_audio.data.features import FEATURES, NUMERIC
from deepfake_audio.data.records import FAKE, REAL, TEST, TRAIN, VALIDATION, ClipRecord

#: An oriented AUC at or above this flags a feature (``--shortcut-threshold``).
SHORTCUT_THRESHOLD = 0.8
ALL = "all features"

REMEDIES = {
    "leading_silence": "fakes and reals start with different amounts of silence: train with "
    "--trim-silence (kept in the checkpoint, so scoring trims the same way)",
    "trailing_silence": "fakes and reals end with different amounts of silence: train with "
    "--trim-silence (kept in the checkpoint, so scoring trims the same way)",
    "duration": "the classes differ in length: cut every clip to the same length, or train on "
    "fixed windows from clips longer than the window",
    "rms_db": "the classes differ in loudness: keep per-window normalisation on "
    "(--normalization peak, the default, or rms) so the model never sees the level",
    "peak_db": "the classes differ in peak level: keep per-window normalisation on "
    "(--normalization peak, the default, or rms)",
    "rolloff_hz": "the classes differ in bandwidth: band-limit both to the same cut-off (e.g. "
    "resample everything through 8 kHz) before training",
    "dc_offset": "the classes differ in DC offset: high-pass filter every clip",
    "sample_rate": "the classes come at different sample rates: resample both from the same "
    "rate (and band-limit them alike)",
    "channels": "the classes differ in channel count: mix both to mono before they are stored",
    "bit_depth": "the classes are stored at different bit depths: store both the same way",
    "container": "the classes come in different containers or codecs: re-encode both the same "
    "way, or the model may learn the codec",
}


def _matrix(
    records: Sequence[ClipRecord], features: Mapping[str, Mapping[str, float | str]]
) -> np.ndarray:
    """``(files, features)`` floats, the container as a code (nan where unknown)."""
    containers = sorted({str(features.get(r.path, {}).get("container", "")) for r in records})
    rows = []
    for record in records:
        facts = features.get(record.path) or {}
        row = [float(facts.get(name, math.nan)) for name in NUMERIC]
        row.append(float(containers.index(str(facts.get("container", "")))))
        rows.append(row)
    return np.asarray(rows, dtype=np.float64).reshape(len(records), len(FEATURES))


def oriented_auc(labels: np.ndarray, scores: np.ndarray) -> float:
    """ROC-AUC of ``scores`` for ``labels`` (1 = fake), as ``max(auc, 1 - auc)``: 0.5 is
    chance, 1 a perfect separation either way round; nan with one class. Computed from
    average ranks (the Mann-Whitney statistic), so ties count one half."""
    labels = np.asarray(labels, dtype=bool)
    positives, negatives = int(labels.sum()), int((~labels).sum())
    if positives == 0 or negatives == 0:
        return math.nan
    _, inverse, counts = np.unique(scores, return_inverse=True, return_counts=True)
    ends = np.cumsum(counts)
    ranks = (ends - (counts - 1) / 2.0)[inverse]  # average 1-based rank of each value
    auc = (ranks[labels].sum() - positives * (positives + 1) / 2.0) / (positives * negatives)
    return float(max(auc, 1.0 - auc))


class BinnedLogOdds:
    """A small classifier for cheap facts: each feature is cut into quantile bins of the
    training split, each bin scores the smoothed log-odds of fake among the training clips in
    it, and a clip scores the sum over its features (naive Bayes on bins). It catches
    non-monotonic cues (one sample rate among three, a band of durations) and costs a few
    numpy calls, where a gradient-boosted model would cost a second of import alone."""

    def __init__(self, bins: int = 16, prior: float = 1.0) -> None:
        self.bins = bins
        self.prior = prior  # pseudo-count per class and bin
        self.edges: list[np.ndarray] = []
        self.log_odds: list[np.ndarray] = []

    def fit(self, x: np.ndarray, is_fake: np.ndarray) -> BinnedLogOdds:
        for column in x.T:
            finite = column[np.isfinite(column)]
            quantiles = (
                np.quantile(finite, np.linspace(0, 1, self.bins + 1)[1:-1]) if finite.size else []
            )
            edges = np.unique(quantiles)
            codes = self._codes(column, edges)
            fake = np.bincount(codes, weights=is_fake, minlength=len(edges) + 2)
            real = np.bincount(codes, weights=1 - is_fake, minlength=len(edges) + 2)
            self.edges.append(edges)
            self.log_odds.append(np.log((fake + self.prior) / (real + self.prior)))
        return self

    @staticmethod
    def _codes(column: np.ndarray, edges: np.ndarray) -> np.ndarray:
        codes = np.searchsorted(edges, column, side="right")
        return np.where(np.isfinite(column), codes, len(edges) + 1)  # unknown: its own bin

    def score(self, x: np.ndarray) -> np.ndarray:
        """Higher: more like the training fakes."""
        total = np.zeros(len(x))
        for column, edges, log_odds in zip(x.T, self.edges, self.log_odds, strict=True):
            total += log_odds[self._codes(column, edges)]
        return total


def audit_shortcuts(
    records: Sequence[ClipRecord],
    features: Mapping[str, Mapping[str, float | str]],
    threshold: float = SHORTCUT_THRESHOLD,
) -> dict:
    """The shortcut report of ``records`` (split and labelled) from their ``features``.

    Returns ``{"threshold", "fitted_on", "evaluated_on", "shortcuts": [{feature, auc,
    flagged, auc_by_split, remedy}], ...}``, highest AUC first, or ``{"skipped": reason}``
    when the training split lacks a class. Without evaluation splits the training split is
    split in two, each half scored by a model fitted on the other.
    """
    labelled = [r for r in records if r.label in (FAKE, REAL) and r.path in features]
    train = [r for r in labelled if r.split == TRAIN]
    train_labels = np.asarray([r.label == FAKE for r in train], dtype=float)
    if len(set(train_labels.tolist())) < 2:
        return {"skipped": "the training split does not hold both fake and real clips"}
    evaluation = {split: [r for r in labelled if r.split == split] for split in (VALIDATION, TEST)}
    evaluation = {s: rs for s, rs in evaluation.items() if len({r.label for r in rs}) == 2}
    x_train = _matrix(train, features)
    if evaluation:
        fits = [(x_train, train_labels, _matrix(rs, features), rs) for rs in evaluation.values()]
        names = sorted(evaluation)
        fits = [fits[list(evaluation).index(name)] for name in names]
    else:  # two halves, each scored by a model of the other
        half = np.arange(len(train)) % 2 == 0
        first = [r for r, h in zip(train, half, strict=True) if h]
        second = [r for r, h in zip(train, half, strict=True) if not h]
        fits = [
            (x_train[half], train_labels[half], x_train[~half], second),
            (x_train[~half], train_labels[~half], x_train[half], first),
        ]
        names = [f"{TRAIN} (half)", f"{TRAIN} (other half)"]
    rows = []
    columns = {name: [i] for i, name in enumerate(FEATURES)} | {ALL: list(range(len(FEATURES)))}
    for name, index in columns.items():
        by_split = {}
        for split, (x_fit, y_fit, x_eval, eval_records) in zip(names, fits, strict=True):
            model = BinnedLogOdds().fit(x_fit[:, index], y_fit)
            labels = np.asarray([r.label == FAKE for r in eval_records])
            by_split[split] = oriented_auc(labels, model.score(x_eval[:, index]))
        values = [v for v in by_split.values() if not math.isnan(v)]
        auc = float(np.mean(values)) if values else math.nan
        flagged = bool(auc >= threshold)
        rows.append(
            {
                "feature": name,
                "auc": round(auc, 4) if not math.isnan(auc) else auc,
                "flagged": flagged,
                "auc_by_split": {k: round(v, 4) for k, v in by_split.items()},
                **({"remedy": REMEDIES.get(name, "")} if flagged else {}),
            }
        )
    rows.sort(key=lambda row: -1.0 if math.isnan(row["auc"]) else row["auc"], reverse=True)
    combined = next(row for row in rows if row["feature"] == ALL)
    if combined["flagged"]:
        strongest = [row["feature"] for row in rows if row["feature"] != ALL][:3]
        combined["remedy"] = (
            "together these facts separate the classes, so a model can combine them: look "
            f"first at the strongest ({', '.join(strongest)}) and make them alike in both "
            "classes"
        )
    return {"threshold": threshold, "fitted_on": TRAIN, "evaluated_on": names, "shortcuts": rows}


#: The features ``--trim-silence`` takes from the model's sight.
TRIMMED_FEATURES = ("leading_silence", "trailing_silence")


def shortcut_warnings(report: dict, trim_silence: bool = False) -> list[str]:
    """One line per flagged feature of a shortcut report, with its remedy (or, for the
    silent edges of a run that trims them, a note that the remedy is applied)."""
    lines = []
    for row in report.get("shortcuts", []):
        if not row["flagged"]:
            continue
        name = row["feature"]
        says = "separate" if name == ALL else "alone separates"
        if trim_silence and name in TRIMMED_FEATURES:
            lines.append(
                f"note: shortcut: {name} {says} fake from real (AUC {row['auc']:.2f}) in the "
                "files as stored; --trim-silence removes it before the model sees them"
            )
        else:
            lines.append(
                f"warning: shortcut: {name} {says} fake from real (AUC {row['auc']:.2f}): "
                f"{row['remedy']}"
            )
    return lines
