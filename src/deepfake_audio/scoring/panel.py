"""A panel: several detectors, their fusion and its calibration, used as one model.

``deepfake-audio train --recipe panel`` trains diverse members on one prepared dataset, fits
a logistic-regression fusion of their scores on the validation split
(:mod:`deepfake_audio.scoring.fusion`) and a calibration of the fused score
(:mod:`deepfake_audio.scoring.calibration`), and writes ``RUN/panel.json``. Every scoring
command takes that file, or the run folder holding it, as a single ``--model``: the members
are loaded and scored as any models are (each file decoded once, its windows shared), and the
panel's fused score decides (see :mod:`deepfake_audio.scoring.lineup`).

The file is plain JSON (nothing executable is loaded). It names each member by a path
relative to the panel file (a trained member) or by a built-in model's name (a pretrained one,
zero-shot), with the SHA-1 of the member's bytes: the fusion weights were fitted for exactly
those files, so a missing, retrained or corrupt member is an error naming it, never a silent
score from other weights. Torch-free: a panel is read and checked without the model stack.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from deepfake_audio import pretrained
from deepfake_audio.fileio import json_ready, write_text_atomic
from deepfake_audio.scoring.calibration import Calibration, CalibrationError
from deepfake_audio.scoring.fusion import FORMAT as FUSION_FORMAT
from deepfake_audio.scoring.fusion import Fusion, FusionError, fingerprint

FORMAT = "deepfake-audio-panel/1"
#: The panel file of a panel run folder.
PANEL_FILE = "panel.json"
#: Where a panel run keeps its members' ordinary run folders.
MEMBERS_DIR = "members"
#: A member entry's own keys; any others are facts for people (architecture, training...).
MEMBER_KEYS = frozenset({"name", "sha1", "path", "builtin"})


class PanelError(ValueError):
    """A panel file is unusable: not a panel, malformed, or a member missing or changed."""


@dataclass
class PanelMember:
    """One member: a checkpoint beside the panel (``path``) or a built-in model (``builtin``)."""

    name: str  # the member's name in every report
    sha1: str  # of the checkpoint's bytes when the fusion was fitted
    path: str | None = None  # relative to the panel file's folder
    builtin: str | None = None  # a built-in pretrained model's name, used as shipped
    facts: dict[str, Any] = field(default_factory=dict)  # architecture, training, for people

    def location(self, base: Path) -> Path:
        """The member's checkpoint file (``base``: the panel file's folder)."""
        if self.builtin is not None:
            if self.builtin not in pretrained.PRETRAINED:
                known = ", ".join(sorted(pretrained.PRETRAINED))
                raise PanelError(
                    f"member {self.name} is the built-in model {self.builtin!r}, which this "
                    f"version does not ship (built-in: {known})"
                )
            return pretrained.PRETRAINED[self.builtin].path
        return base / str(self.path)

    def to_dict(self) -> dict[str, Any]:
        where = {"builtin": self.builtin} if self.builtin is not None else {"path": self.path}
        return {"name": self.name, **where, "sha1": self.sha1, **self.facts}


@dataclass
class Panel:
    """Members, the fusion of their scores and the calibration of the fused score.

    The panel's score of a file is ``fusion.predict`` of its members' probabilities of fake
    (in member order); its log-likelihood ratio is ``calibration.llr`` of that score, and its
    stored threshold the fusion's validation EER threshold.
    """

    members: list[PanelMember]
    fusion: Fusion
    calibration: Calibration = field(default_factory=Calibration)
    info: dict[str, Any] = field(default_factory=dict)  # data, budget, training, provenance
    path: Path | None = None  # where it was loaded from or saved to

    def __post_init__(self) -> None:
        names = [m.name for m in self.members]
        if not self.members:
            raise PanelError(f"{self._where}: a panel needs at least one member")
        if len(set(names)) != len(names):
            raise PanelError(f"{self._where}: member names repeat ({', '.join(names)})")
        fused = [(m.name, m.sha1) for m in self.fusion.members]
        if fused != [(m.name, m.sha1) for m in self.members]:
            raise PanelError(
                f"{self._where}: the fusion's members ({', '.join(n for n, _ in fused)}) are "
                f"not the panel's ({', '.join(names)}), in the same order and with the same SHA-1"
            )

    @property
    def _where(self) -> str:
        return str(self.path) if self.path else "panel"

    @property
    def threshold(self) -> float:
        """EER threshold of the fused validation scores."""
        return self.fusion.threshold

    @property
    def validation_eer(self) -> float:
        eer = self.fusion.validation.get("eer")
        return math.nan if eer is None else float(eer)

    @property
    def base(self) -> Path:
        """The folder member paths are relative to."""
        return self.path.parent if self.path else Path(".")

    def member_files(self, *, check: bool = True) -> list[Path]:
        """Each member's checkpoint file, in member order; with ``check``, an error naming the
        member unless the file exists and has the SHA-1 the fusion was fitted with."""
        files = []
        for member in self.members:
            file = member.location(self.base)
            if check:
                if not file.is_file():
                    raise PanelError(
                        f"{self._where}: member {member.name}'s checkpoint {file} is missing: a "
                        "panel needs all of its members (keep the run folder together, or train "
                        "the panel again)"
                    )
                found = fingerprint(file)
                if found != member.sha1:
                    raise PanelError(
                        f"{self._where}: member {member.name}'s checkpoint {file} is not the file "
                        f"the panel was fitted with (SHA-1 {found[:12]}, expected "
                        f"{member.sha1[:12]}): it was retrained, replaced or damaged, and the "
                        "fusion weights belong to the old file; train the panel again"
                    )
            files.append(file)
        return files

    def with_calibration(self, calibration: Calibration) -> Panel:
        """The same panel with another calibration of its fused score (not yet saved)."""
        return Panel(list(self.members), self.fusion, calibration, dict(self.info), self.path)

    def _members_from(self, base: Path) -> list[PanelMember]:
        """The members with their paths relative to ``base`` instead of the panel's folder."""
        moved = []
        for member in self.members:
            if member.path is not None:
                absolute = member.location(self.base).absolute()
                relative = Path(os.path.relpath(absolute, base.absolute())).as_posix()
                member = PanelMember(member.name, member.sha1, relative, None, member.facts)
            moved.append(member)
        return moved

    def to_dict(self, base: Path | None = None) -> dict[str, Any]:
        """The file's JSON document; member paths relative to ``base`` (default: its own)."""
        members = self._members_from(base or self.base)
        validation = self.fusion.validation
        return json_ready(
            {
                "format": FORMAT,
                "about": "a panel of detectors fused on validation; give this file or its "
                "folder as one --model to predict, compare, evaluate and calibrate",
                "validation": {
                    "eer": validation.get("eer"),
                    "threshold": self.threshold,
                    "clips": self.fusion.fitted.get("clips"),
                    "roc_auc": validation.get("roc_auc"),
                },
                "members": [m.to_dict() for m in members],
                "fusion": self.fusion.to_dict(),
                "calibration": self.calibration.to_dict(),
                **self.info,
            }
        )

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Write the panel as JSON, atomically; member paths become relative to ``path``'s
        folder, so a panel written elsewhere (``calibrate --output``) still finds them."""
        path = Path(path)
        members = self._members_from(path.parent)
        self.members, self.path = members, path
        text = json.dumps(self.to_dict(), indent=2, allow_nan=False)
        return write_text_atomic(path, text + "\n")

    @classmethod
    def from_dict(cls, document: Any, path: Path | None = None) -> Panel:
        where = path or "panel"
        if not isinstance(document, dict) or document.get("format") != FORMAT:
            found = document.get("format") if isinstance(document, dict) else None
            if found == FUSION_FORMAT:
                raise PanelError(
                    f"{where} is a fusion file, not a panel: give it with --fusion beside the "
                    "models it fuses"
                )
            raise PanelError(f"{where}: not a deepfake-audio panel file (format {found!r})")
        known = {"format", "about", "validation", "members", "fusion", "calibration"}
        try:
            members = []
            for entry in document["members"]:
                facts = {k: v for k, v in entry.items() if k not in MEMBER_KEYS}
                has_path = entry.get("path") is not None
                has_builtin = entry.get("builtin") is not None
                if has_path == has_builtin:
                    raise PanelError(
                        f"{where}: member {entry.get('name')!r} needs either a path or a "
                        "built-in model's name"
                    )
                members.append(
                    PanelMember(
                        name=str(entry["name"]),
                        sha1=str(entry["sha1"]),
                        path=str(entry["path"]) if has_path else None,
                        builtin=str(entry["builtin"]) if has_builtin else None,
                        facts=facts,
                    )
                )
            fusion = Fusion.from_dict(document["fusion"], path)
            stored = document.get("calibration")
            calibration = Calibration() if stored is None else Calibration.from_dict(stored)
        except (KeyError, TypeError, AttributeError) as exc:
            raise PanelError(f"{where}: malformed panel file ({exc!r})") from exc
        except (FusionError, CalibrationError) as exc:
            raise PanelError(f"{where}: malformed panel file ({exc})") from exc
        info = {k: v for k, v in document.items() if k not in known}
        return cls(members, fusion, calibration, info, path)

    @classmethod
    def load(cls, path: str | os.PathLike[str], *, check: bool = True) -> Panel:
        """Read a panel file (or a panel run folder); with ``check`` every member must be
        there with its recorded SHA-1 (see :meth:`member_files`)."""
        file = find_panel(path) or Path(path)
        try:
            document = json.loads(file.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise PanelError(f"{file}: not a JSON panel file ({exc})") from exc
        panel = cls.from_dict(document, file)
        if check:
            panel.member_files(check=True)
        return panel


def find_panel(model: str | os.PathLike[str]) -> Path | None:
    """The panel file ``model`` names, if it names one: a ``.json`` file (checked when read)
    or a folder holding ``panel.json``; None for checkpoints, run folders and built-in names."""
    path = Path(model)
    if path.is_dir():
        file = path / PANEL_FILE
        return file if file.is_file() else None
    if path.suffix.lower() == ".json" and path.is_file():
        return path
    return None
