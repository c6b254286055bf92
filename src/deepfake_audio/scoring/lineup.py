"""The models a command reports: their names, calibrations, decisions, and the fused models.

Several models fuse into an *ensemble*: the mean of their probabilities of fake, judged at the
mean of their thresholds (so models that agree on a threshold keep it). A *fusion* fitted on
validation scores (:mod:`deepfake_audio.scoring.fusion`) weighs them instead. Torch-free: a
lineup only needs each detector's name, file, threshold, calibration and stored scoring rule.

Every model's raw score (its own probability of fake) becomes a log-likelihood ratio through
its calibration (the identity for the ensemble, the fusion and uncalibrated models), and the
reported ``p_fake`` is the posterior at the stated prior. Each model's verdict threshold is
on that ``p_fake``, set by the decision rule (see
:class:`~deepfake_audio.scoring.options.ScoringOptions`), and every report states it.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from deepfake_audio.scoring.calibration import Calibration, posterior
from deepfake_audio.scoring.options import ScoringOptions, ScoringRule

if TYPE_CHECKING:
    from deepfake_audio.checkpoints import Detector
    from deepfake_audio.scoring.fusion import Fusion

#: Name of the fused model (mean probability of fake of all models) in every report.
ENSEMBLE = "ensemble"
#: Name of the logistic-regression fusion (:mod:`deepfake_audio.scoring.fusion`) in every report.
FUSION = "fusion"


def model_names(detectors: Sequence[Detector]) -> list[str]:
    """A distinct, readable name per model (its file stem; the folder too when stems clash).

    Names head CSV columns, so two ``fake_or_real_classifier`` files from two runs must not
    collide.
    """
    stems = [d.name for d in detectors]
    names = []
    for detector, stem in zip(detectors, stems, strict=True):
        name = stem
        if stems.count(stem) > 1 and detector.path is not None:
            name = f"{detector.path.parent.name}/{stem}"
        names.append(name)
    seen: dict[str, int] = {}
    unique = []
    for name in names:  # still equal (same folder name twice): number them
        seen[name] = seen.get(name, 0) + 1
        unique.append(
            name if seen[name] == 1 and names.count(name) == 1 else f"{name}#{seen[name]}"
        )
    for reserved in (ENSEMBLE, FUSION):  # those names head the fused models' columns
        if reserved in unique:
            unique[unique.index(reserved)] = f"{reserved}_model"
    return unique


def find_aliases(detectors: Sequence[Detector], names: Sequence[str]) -> dict[str, str]:
    """``{name: name of the original}`` for each detector that copies another of the list.

    A run's final model is its chosen epoch's weights under another name (its metadata says
    which file it was selected from); counted beside that epoch it would weigh twice in the
    ensemble and vote twice in the disagreements.
    """
    by_path = {d.path.resolve(): n for d, n in zip(detectors, names, strict=True) if d.path}
    aliases = {}
    for detector, name in zip(detectors, names, strict=True):
        origin = detector.selected_from
        if detector.path is None or origin is None:
            continue
        original = by_path.get((detector.path.parent / origin).resolve())
        if original is not None and original != name:
            aliases[name] = original
    return aliases


def fuse(scores: Iterable[float]) -> float:
    """The ensemble's probability of fake: the mean of its members'."""
    values = list(scores)
    return float(np.mean(values)) if values else float("nan")


@dataclass
class Lineup:
    """The models a command reports and the threshold of each.

    Each detector appears under its report name, then the ``ensemble`` (mean probability of
    fake, when there are several detectors) and the ``fusion`` (when a fitted fusion is
    given). Every report takes its model list, thresholds and fused scores from here, so they
    agree.
    """

    names: list[str]  # the detectors' report names, in the detectors' order
    models: list[str]  # names, then ENSEMBLE and FUSION where they apply
    thresholds: dict[str, float]  # model -> threshold on p_fake (p_fake >= threshold: fake)
    sources: dict[str, str]  # model -> the checkpoint or fusion file it came from
    calibrations: dict[str, Calibration] = field(default_factory=dict)  # identity if absent
    rules: dict[str, str] = field(default_factory=dict)  # model -> bayes, eer or threshold
    options: ScoringOptions = field(default_factory=ScoringOptions)
    fusion: Fusion | None = None
    members: list[int] = field(default_factory=list)  # fusion input order, as name indices
    # detector -> the detector of the lineup it is a copy of (a run's final model is its
    # chosen epoch): an alias is reported but never voted or averaged twice
    aliases: dict[str, str] = field(default_factory=dict)

    @property
    def files(self) -> list[str]:
        """The checkpoint (and fusion) files behind the lineup, for provenance."""
        return [source for source in self.sources.values() if source]

    @property
    def distinct(self) -> list[str]:
        """The detectors that are not aliases of another: the ensemble's members and voters."""
        return [n for n in self.names if n not in self.aliases]

    @property
    def fused(self) -> list[str]:
        """The models computed from the detectors' scores (ensemble, fusion)."""
        return self.models[len(self.names) :]

    def with_fused(self, scores: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Add the ensemble's and the fusion's scores to the detectors' (arrays over files)."""
        out = dict(scores)
        stacked = np.column_stack([np.asarray(scores[n], dtype=np.float64) for n in self.names])
        if stacked.shape[0] == 0:  # no readable file: every fused model has no score either
            return {**out, **{m: np.zeros(0) for m in self.fused}}
        if ENSEMBLE in self.models:
            distinct = [self.names.index(n) for n in self.distinct]
            out[ENSEMBLE] = stacked[:, distinct].mean(axis=1)
        if self.fusion is not None:
            out[FUSION] = self.fusion.predict(stacked[:, self.members])
        return out

    def calibration(self, model: str) -> Calibration:
        return self.calibrations.get(model) or Calibration()

    def llr(self, model: str, raw: np.ndarray) -> np.ndarray:
        """Log-likelihood ratios (fake vs real) of ``model``'s raw scores."""
        return self.calibration(model).llr(raw)

    def p_fake(self, model: str, raw: np.ndarray) -> np.ndarray:
        """The reported probability of fake: the posterior at the stated prior."""
        return posterior(self.llr(model, raw), self.options.prior_fake)

    def decision(self, model: str) -> dict[str, object]:
        """How ``model``'s verdicts are reached, for every report to state."""
        rule = self.rules.get(model, "threshold")
        out: dict[str, object] = {
            "rule": rule,
            "threshold": self.thresholds[model],
            "prior_fake": self.options.prior_fake,
            "calibrated": not self.calibration(model).is_identity,
        }
        if rule == "bayes":
            out |= {"cost_miss": self.options.cost_miss, "cost_fa": self.options.cost_fa}
        return out

    def deciding_model(self) -> str:
        """Whose verdict a file gets: the fusion's when given, else the ensemble's, else the
        only model's."""
        return (
            FUSION
            if FUSION in self.models
            else ENSEMBLE
            if ENSEMBLE in self.models
            else self.names[0]
        )


def make_lineup(
    detectors: Sequence[Detector],
    *,
    options: ScoringOptions | None = None,
    fusion: Fusion | None = None,
) -> Lineup:
    """The lineup of ``detectors``, with each model's verdict threshold set by ``options``.

    The ensemble averages the distinct detectors (an alias, such as a run's final model beside
    its epoch, counts once) and its EER threshold is the mean of theirs (their common one when
    they agree), the fusion's is its own. ``fusion`` must have been fitted on exactly these
    detectors.
    """
    if not detectors:
        raise ValueError("no model given")
    options = options or ScoringOptions()
    names = model_names(detectors)
    stored = {n: d.threshold for n, d in zip(names, detectors, strict=True)}  # raw scores
    calibrations = {n: d.calibration for n, d in zip(names, detectors, strict=True)}
    sources = {n: str(d.path or "") for n, d in zip(names, detectors, strict=True)}
    aliases = find_aliases(detectors, names)
    models = list(names)
    distinct = [n for n in names if n not in aliases]
    if len(distinct) > 1:
        models.append(ENSEMBLE)
        stored[ENSEMBLE] = fuse(stored[n] for n in distinct)
    members: list[int] = []
    if fusion is not None:
        members = fusion.member_order(detectors)
        models.append(FUSION)
        stored[FUSION] = fusion.threshold
        sources[FUSION] = str(fusion.path or "")
    rules, thresholds = {}, {}
    for model in models:
        calibration = calibrations.get(model) or Calibration()
        rules[model], thresholds[model] = _decide(calibration, stored[model], options)
    return Lineup(
        names, models, thresholds, sources, calibrations, rules, options, fusion, members, aliases
    )


def _decide(
    calibration: Calibration, stored_threshold: float, options: ScoringOptions
) -> tuple[str, float]:
    """A model's decision rule and its threshold on the reported p_fake."""
    if options.threshold is not None:
        return "threshold", options.threshold
    rule = options.decision
    if rule == "auto":
        rule = "eer" if calibration.is_identity else "bayes"
    if rule == "bayes":
        return "bayes", options.bayes_threshold
    llr = calibration.llr(stored_threshold)  # the EER threshold, carried to p_fake
    return "eer", float(posterior(llr, options.prior_fake))


def rule_warnings(
    detectors: Sequence[Detector], options: ScoringOptions, fusion: Fusion | None = None
) -> list[str]:
    """One line per model whose stored threshold, and for a fusion fitted on scores, made
    with another scoring rule.

    A fusion's weights suit only the scores they were fitted on, whatever the threshold; a
    checkpoint's stored threshold is moot when ``options.threshold`` replaces it. A file that
    stores no rule has nothing to compare.
    """
    lines = []
    if fusion is not None and {"aggregate", "hop_seconds"} <= set(fusion.fitted):
        fitted = fusion.fitted
        rule = ScoringRule.from_dict(
            {"aggregation": fitted["aggregate"], "hop_seconds": fitted["hop_seconds"]}
        )
        if rule != options.rule:
            lines.append(
                f"warning: fusion {fusion.path or ''} was fitted on scores made with "
                f"{rule.describe()}; scoring now uses {options.rule.describe()}, so its "
                "weights and threshold may not suit these scores"
            )
    if options.threshold is not None:
        return lines
    for name, detector in zip(model_names(detectors), detectors, strict=True):
        if detector.stored_rule is None:
            continue
        stored = ScoringRule.from_dict(detector.stored_rule)
        if stored != options.rule:
            lines.append(
                f"warning: {name}'s threshold was set for {stored.describe()}; scoring now "
                f"uses {options.rule.describe()}, so it is not the equal-error point of these "
                "scores"
            )
    return lines
