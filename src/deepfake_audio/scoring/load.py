"""The models a scoring command names, loaded: checkpoints, run folders, built-in names, panels.

Every ``--model`` of predict, compare, evaluate and calibrate (and the service, later) goes
through :func:`load_models`, so a panel (:mod:`deepfake_audio.scoring.panel`) is one model
everywhere: its members join the detectors (named as the panel names them) and the panel
itself comes back with the indices of its members, for :func:`~deepfake_audio.scoring.engine.
score_table` to fuse.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field

import torch

from deepfake_audio.checkpoints import Detector, final_model_path, load_checkpoint
from deepfake_audio.scoring.fusion import Fusion
from deepfake_audio.scoring.panel import Panel, find_panel


@dataclass
class LoadedModels:
    """What a command scores with: the detectors, an optional ``--fusion``, and the panels
    with the indices of their members among the detectors (in each panel's member order)."""

    detectors: list[Detector]
    fusion: Fusion | None = None
    panels: list[tuple[Panel, list[int]]] = field(default_factory=list)

    @property
    def panel_list(self) -> list[Panel]:
        return [panel for panel, _ in self.panels]


def load_models(
    models: Sequence[str | os.PathLike[str]],
    *,
    fusion_path: str | os.PathLike[str] | None = None,
    device: str | torch.device = "cpu",
) -> LoadedModels:
    """Load each of ``models``: a checkpoint, a run folder (its final model), a built-in
    model's name, or a panel (its ``panel.json`` or its run folder).

    A panel's members must be there with the SHA-1 it recorded (a clear error names the one
    that is missing or changed). With several panels, member names are prefixed by their
    panel's folder so report columns stay distinct.
    """
    loaded = LoadedModels([])
    panel_files = [find_panel(model) for model in models]
    several = sum(file is not None for file in panel_files) > 1
    for model, panel_file in zip(models, panel_files, strict=True):
        if panel_file is None:
            loaded.detectors.append(load_checkpoint(final_model_path(model), device=device))
            continue
        panel = Panel.load(panel_file)  # every member present, with its SHA-1
        prefix = f"{panel_file.parent.name}/" if several else ""
        indices = []
        for member, file in zip(panel.members, panel.member_files(check=False), strict=True):
            detector = load_checkpoint(file, device=device)
            detector.label = prefix + member.name
            indices.append(len(loaded.detectors))
            loaded.detectors.append(detector)
        loaded.panels.append((panel, indices))
    if fusion_path:
        loaded.fusion = Fusion.load(fusion_path)
    return loaded
