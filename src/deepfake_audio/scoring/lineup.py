"""The models a command reports: their names, calibrations, decisions, and the fused models.

Several models fuse into an *ensemble*: the mean of their probabilities of fake, judged at the
mean of their thresholds (so models that agree on a threshold keep it). A *fusion* fitted on
validation scores (:mod:`deepfake_audio.scoring.fusion`) weighs them instead, and a *panel*
(:mod:`deepfake_audio.scoring.panel`) is a fusion of its own members with a calibration of
the fused score, given as one model: its members are detectors of the lineup like any other,
so their scores stay visible. Torch-free: a lineup only needs each detector's name, file,
threshold, calibration and stored scoring rule.

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
    from deepfake_audio.scoring.panel import Panel

#: Name of the fused model (mean probability of fake of all models) in every report.
ENSEMBLE = "ensemble"
#: Name of the logistic-regression fusion (:mod:`deepfake_audio.scoring.fusion`) in every report.
FUSION = "fusion"
#: Name of a panel's fused score in every report (``panel`` when one panel is scored).
PANEL = "panel"


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
    for reserved in (ENSEMBLE, FUSION, PANEL):  # those names head the fused models' columns
        if reserved in unique:
            unique[unique.index(reserved)] = f"{reserved}_model"
    return unique


def panel_names(panels: Sequence[Panel]) -> list[str]:
    """``panel`` for one panel; for several, ``panel`` and its folder's name, made distinct."""
    if len(panels) == 1:
        return [PANEL]
    names = [f"{PANEL}:{p.path.parent.name if p.path else i}" for i, p in enumerate(panels, 1)]
    return [n if names.count(n) == 1 else f"{n}#{i}" for i, n in enumerate(names, 1)]


@dataclass(frozen=True)
class FusedModel:
    """A fusion of some of the lineup's detectors: a ``--fusion`` file, or a panel's own."""

    name: str  # FUSION, or the panel's name (PANEL)
    fusion: Fusion
    members: tuple[int, ...]  # the detectors it fuses, as indices, in the fusion's order
    calibration: Calibration  # of the fused score (the identity for a --fusion file)
    source: str  # the fusion or panel file


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
    fake, when there are several detectors), the ``fusion`` (when a fitted fusion is given)
    and each panel's fused score (``panel``; its members are among the detectors). Every
    report takes its model list, thresholds and fused scores from here, so they agree.
    """

    names: list[str]  # the detectors' report names, in the detectors' order
    models: list[str]  # names, then ENSEMBLE and FUSION where they apply
    thresholds: dict[str, float]  # model -> threshold on p_fake (p_fake >= threshold: fake)
    sources: dict[str, str]  # model -> the checkpoint or fusion file it came from
    calibrations: dict[str, Calibration] = field(default_factory=dict)  # identity if absent
    rules: dict[str, str] = field(default_factory=dict)  # model -> bayes, eer or threshold
    options: ScoringOptions = field(default_factory=ScoringOptions)
    fusions: list[FusedModel] = field(default_factory=list)  # --fusion, then panels
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
        """The models computed from the detectors' scores (ensemble, fusion, panels)."""
        return self.models[len(self.names) :]

    @property
    def fusion(self) -> Fusion | None:
        """The ``--fusion`` file's fusion, if one was given."""
        return next((f.fusion for f in self.fusions if f.name == FUSION), None)

    def panel_members(self, model: str) -> list[str]:
        """The detectors a fused model (fusion or panel) fuses, by name; none for others."""
        fused = next((f for f in self.fusions if f.name == model), None)
        return [] if fused is None else [self.names[i] for i in fused.members]

    def with_fused(self, scores: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Add the ensemble's, fusion's and panels' scores to the detectors' (arrays over files)."""
        out = dict(scores)
        stacked = np.column_stack([np.asarray(scores[n], dtype=np.float64) for n in self.names])
        if stacked.shape[0] == 0:  # no readable file: every fused model has no score either
            return {**out, **{m: np.zeros(0) for m in self.fused}}
        if ENSEMBLE in self.models:
            distinct = [self.names.index(n) for n in self.distinct]
            out[ENSEMBLE] = stacked[:, distinct].mean(axis=1)
        for fused in self.fusions:
            out[fused.name] = fused.fusion.predict(stacked[:, list(fused.members)])
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
        """Whose verdict a file gets: the fusion's when given, else the (first) panel's, else
        the ensemble's, else the only model's."""
        if self.fusions:
            return self.fusions[0].name
        return ENSEMBLE if ENSEMBLE in self.models else self.names[0]


def make_lineup(
    detectors: Sequence[Detector],
    *,
    options: ScoringOptions | None = None,
    fusion: Fusion | None = None,
    panels: Sequence[tuple[Panel, Sequence[int]]] = (),
) -> Lineup:
    """The lineup of ``detectors``, with each model's verdict threshold set by ``options``.

    The ensemble averages the distinct detectors (an alias, such as a run's final model beside
    its epoch, counts once) and its EER threshold is the mean of theirs (their common one when
    they agree), the fusion's and each panel's are their own. ``fusion`` must have been fitted
    on exactly these detectors; each panel comes with the indices of its members among them
    (in the panel's member order), and cannot be combined with ``fusion``.
    """
    if not detectors:
        raise ValueError("no model given")
    if fusion is not None and panels:
        raise ValueError(
            "--fusion fuses the models given beside it and a panel brings a fusion of its own: "
            "give the panel alone, or its members (members/<name>) with --fusion"
        )
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
    fusions: list[FusedModel] = []
    if fusion is not None:
        order = tuple(fusion.member_order(detectors))
        fusions.append(FusedModel(FUSION, fusion, order, Calibration(), str(fusion.path or "")))
    for name, (panel, members) in zip(panel_names([p for p, _ in panels]), panels, strict=True):
        if len(members) != len(panel.members):
            raise ValueError(f"panel {panel.path}: {len(members)} detectors for its members")
        source = str(panel.path or "")
        fusions.append(FusedModel(name, panel.fusion, tuple(members), panel.calibration, source))
    for fused in fusions:
        models.append(fused.name)
        stored[fused.name] = fused.fusion.threshold
        sources[fused.name] = fused.source
        if not fused.calibration.is_identity:
            calibrations[fused.name] = fused.calibration
    rules, thresholds = {}, {}
    for model in models:
        calibration = calibrations.get(model) or Calibration()
        rules[model], thresholds[model] = _decide(calibration, stored[model], options)
    return Lineup(
        names, models, thresholds, sources, calibrations, rules, options, fusions, aliases
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
    detectors: Sequence[Detector],
    options: ScoringOptions,
    fusion: Fusion | None = None,
    panels: Sequence[Panel] = (),
) -> list[str]:
    """One line per model whose stored threshold, and for a fusion (or panel) fitted on
    scores, made with another scoring rule.

    A fusion's weights suit only the scores they were fitted on, whatever the threshold; a
    checkpoint's stored threshold is moot when ``options.threshold`` replaces it. A file that
    stores no rule has nothing to compare.
    """
    lines = []
    fitted_on = [("fusion", fusion)] if fusion is not None else []
    fitted_on += [("panel", panel.fusion) for panel in panels]
    for kind, fitted_fusion in fitted_on:
        fitted = fitted_fusion.fitted
        if not {"aggregate", "hop_seconds"} <= set(fitted):
            continue
        rule = ScoringRule.from_dict(
            {"aggregation": fitted["aggregate"], "hop_seconds": fitted["hop_seconds"]}
        )
        if rule != options.rule:
            lines.append(
                f"warning: {kind} {fitted_fusion.path or ''} was fitted on scores made with "
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
