"""Logistic-regression score fusion: several models' scores -> one calibrated probability of fake.

The mean-probability *ensemble* (:mod:`deepfake_audio.scoring.lineup`) weighs every model the same.
A *fusion* learns the weights on labelled validation data: the features of a file are the
logits of each model's probability of fake (clipped to ``[CLIP, 1 - CLIP]`` so a saturated
model gives a finite feature), the target is fake = 1, and a scikit-learn
``LogisticRegression`` gives one weight per model and an intercept. A strong model gets a
large weight, a useless one a weight near zero, and two models that err differently can
together beat both. The fused threshold is the EER threshold on the fused validation scores,
as a checkpoint's stored threshold is its own validation EER threshold.

A fusion is a small JSON file of its own (never a pickle: nothing executable is loaded). It
names its member checkpoints by file name *and* SHA-1 of their bytes, because weights fitted
for one set of models mean nothing for another: :meth:`Fusion.member_order` refuses models
that are not exactly its members (in any order). Fit on validation data only: fitted on the
test split, the test metrics of the fusion are no longer an honest estimate.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from scipy.special import expit

from deepfake_audio import __version__, metrics
from deepfake_audio.data.records import FAKE
from deepfake_audio.fileio import json_ready, write_text_atomic

if TYPE_CHECKING:
    from deepfake_audio.checkpoints import Detector

FORMAT = "deepfake-audio-fusion/1"
#: Probabilities are clipped to [CLIP, 1 - CLIP] before the logit (a feature of at most ~13.8).
CLIP = 1e-6


class FusionError(ValueError):
    """A fusion file is unusable, or does not belong to the models it is used with."""


def fingerprint(path: str | os.PathLike[str]) -> str:
    """SHA-1 of the file's bytes: cheap next to inference, and changes with any weight or
    metadata edit, so a fusion never silently runs on a retrained model of the same name."""
    with open(path, "rb") as handle:
        return hashlib.file_digest(handle, "sha1").hexdigest()


def logit_features(scores: np.ndarray) -> np.ndarray:
    """``(files, models)`` probabilities of fake -> their clipped logits, same shape.

    Logits rather than probabilities: fusing in log-odds space adds the models' evidence,
    and a logistic regression on them is the classic (FoCal-style) calibration/fusion.
    """
    p = np.clip(np.asarray(scores, dtype=np.float64), CLIP, 1.0 - CLIP)
    return np.log(p) - np.log1p(-p)


@dataclass
class Member:
    """One fused model: who it is (file name and content hash) and its weight."""

    name: str  # the model's name in reports (see lineup.model_names)
    file: str  # checkpoint file name, for people; matching uses sha1
    sha1: str
    coefficient: float
    validation_eer: float = math.nan  # the model alone on the fitting data, for comparison


@dataclass
class Fusion:
    """A fitted fusion: ``p_fake = sigmoid(intercept + sum_i coef_i * logit(p_i))``."""

    members: list[Member]
    intercept: float
    threshold: float  # EER threshold of the fused validation scores
    validation: dict[str, Any] = field(default_factory=dict)  # metrics.summarize of the fit
    fitted: dict[str, Any] = field(default_factory=dict)  # data, splits, counts, version...
    path: Path | None = None  # where it was loaded from (not saved)

    @property
    def coefficients(self) -> np.ndarray:
        return np.asarray([m.coefficient for m in self.members], dtype=np.float64)

    @property
    def _label(self) -> str:
        return f"fusion {self.path}" if self.path else "fusion"

    def predict(self, scores: np.ndarray) -> np.ndarray:
        """``(files, members)`` probabilities of fake, in member order -> ``(files,)`` fused."""
        scores = np.asarray(scores, dtype=np.float64)
        if scores.ndim != 2 or scores.shape[1] != len(self.members):
            raise FusionError(
                f"fusion of {len(self.members)} model(s) given scores of shape {scores.shape}"
            )
        return expit(logit_features(scores) @ self.coefficients + self.intercept)

    def member_order(self, detectors: Sequence[Detector]) -> list[int]:
        """Index into ``detectors`` of each member, in member order; errors unless the
        detectors are exactly the members (matched by content hash, in any order)."""
        expected = ", ".join(m.file for m in self.members)
        if len(detectors) != len(self.members):
            raise FusionError(
                f"{self._label} was fitted on {len(self.members)} model(s) "
                f"({expected}) but {len(detectors)} were given"
            )
        hashes: list[str] = []
        for detector in detectors:
            if detector.path is None:
                raise FusionError(f"model {detector.name} has no file to check against fusion")
            hashes.append(fingerprint(detector.path))
        order = []
        for member in self.members:
            if member.sha1 not in hashes:
                given = ", ".join(str(d.path) for d in detectors)
                raise FusionError(
                    f"{self._label} needs {member.file} (sha1 {member.sha1[:12]}), "
                    f"which is not among the models given ({given}); fused models: {expected}"
                )
            order.append(hashes.index(member.sha1))
        if len(set(order)) != len(order):
            raise FusionError(f"{self._label} lists the same checkpoint twice")
        return order

    def to_dict(self) -> dict[str, Any]:
        return json_ready(
            {
                "format": FORMAT,
                "features": f"logit(clip(p_fake, {CLIP}, 1 - {CLIP})) per member",
                "members": [vars(m) for m in self.members],
                "intercept": self.intercept,
                "threshold": self.threshold,
                "validation": self.validation,
                "fitted": self.fitted,
            }
        )

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Write the fusion as JSON, atomically."""
        text = json.dumps(self.to_dict(), indent=2, allow_nan=False)
        return write_text_atomic(path, text + "\n")

    @classmethod
    def from_dict(cls, document: dict[str, Any], path: Path | None = None) -> Fusion:
        where = path or "fusion"
        if not isinstance(document, dict) or document.get("format") != FORMAT:
            found = document.get("format") if isinstance(document, dict) else None
            if str(found).startswith("deepfake-audio-panel/"):
                raise FusionError(f"{where} is a panel, not a fusion file: give it as a --model")
            raise FusionError(f"{where}: not a deepfake-audio fusion file (format {found!r})")
        try:
            members = [
                Member(
                    name=str(m["name"]),
                    file=str(m["file"]),
                    sha1=str(m["sha1"]),
                    coefficient=float(m["coefficient"]),
                    validation_eer=math.nan
                    if m.get("validation_eer") is None
                    else float(m["validation_eer"]),
                )
                for m in document["members"]
            ]
            fusion = cls(
                members=members,
                intercept=float(document["intercept"]),
                threshold=float(document["threshold"]),
                validation=dict(document.get("validation") or {}),
                fitted=dict(document.get("fitted") or {}),
                path=path,
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise FusionError(f"{where}: malformed fusion file ({exc!r})") from exc
        if not members:
            raise FusionError(f"{where}: fusion file has no members")
        return fusion

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> Fusion:
        """Read a fusion file (plain JSON; nothing is executed or unpickled)."""
        try:
            document = json.loads(Path(path).read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise FusionError(f"{path}: not a JSON fusion file ({exc})") from exc
        return cls.from_dict(document, Path(path))


def fit_fusion(
    labels: np.ndarray,
    scores: np.ndarray,
    *,
    names: Sequence[str],
    paths: Sequence[str | os.PathLike[str]],
    regularization: float = 1.0,
    fitted: dict[str, Any] | None = None,
) -> Fusion:
    """Fit a fusion of ``scores`` ``(files, models)`` to ``labels`` (project encoding, fake = 0).

    ``paths`` are the members' checkpoint files (hashed into the fusion); ``regularization``
    is scikit-learn's ``C`` (inverse L2 strength). Classes are weighted to count equally, as
    the EER does. ``fitted`` describes the data (root, splits...) and is stored as given, with
    the clip counts and package version added.
    """
    from sklearn.linear_model import LogisticRegression

    labels = np.asarray(labels)
    scores = np.asarray(scores, dtype=np.float64)
    if scores.ndim != 2 or scores.shape[0] != labels.size:
        raise ValueError(f"scores {scores.shape} do not match {labels.size} labels")
    if scores.shape[1] != len(names) or len(names) != len(paths):
        raise ValueError("need one name and one checkpoint path per score column")
    target = (labels == FAKE).astype(np.int64)  # fake is the positive class
    fakes = int(target.sum())
    if fakes == 0 or fakes == target.size:
        raise ValueError(
            f"fusion needs both fake and real clips to fit on ({fakes} fake, "
            f"{target.size - fakes} real)"
        )
    model = LogisticRegression(C=regularization, class_weight="balanced", max_iter=1000)
    model.fit(logit_features(scores), target)
    return fusion_from_weights(
        labels,
        scores,
        names=names,
        paths=paths,
        coefficients=model.coef_[0],
        intercept=float(model.intercept_[0]),
        fitted={**(fitted or {}), "regularization_C": regularization, "class_weight": "balanced"},
    )


def fusion_from_weights(
    labels: np.ndarray,
    scores: np.ndarray,
    *,
    names: Sequence[str],
    paths: Sequence[str | os.PathLike[str]],
    coefficients: Sequence[float],
    intercept: float,
    fitted: dict[str, Any] | None = None,
) -> Fusion:
    """The fusion with these weights, its threshold and validation metrics taken on
    ``scores`` ``(files, models)`` and ``labels`` (the data the weights were fitted on)."""
    labels = np.asarray(labels)
    scores = np.asarray(scores, dtype=np.float64)
    fakes = int(np.sum(labels == FAKE))
    members = [
        Member(
            name=str(name),
            file=Path(path).name,
            sha1=fingerprint(path),
            coefficient=float(coef),
            validation_eer=metrics.equal_error_rate(labels, scores[:, i])[0],
        )
        for i, (name, path, coef) in enumerate(zip(names, paths, coefficients, strict=True))
    ]
    fusion = Fusion(members=members, intercept=float(intercept), threshold=0.5)
    fused = fusion.predict(scores)
    _, fusion.threshold = metrics.equal_error_rate(labels, fused)
    fusion.validation = metrics.summarize(labels, fused, fusion.threshold)
    fusion.fitted = {
        **(fitted or {}),
        "clips": int(labels.size),
        "fake_clips": fakes,
        "real_clips": int(labels.size - fakes),
        "package_version": __version__,
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    return fusion
