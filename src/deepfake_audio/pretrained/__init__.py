"""Pretrained detectors that ship inside the package, usable by name wherever a model is.

The AASIST paper's two published models (Jung et al., ICASSP 2022; github.com/clovaai/aasist,
MIT licence, Copyright (c) 2021-present NAVER Corp., whose text is ``LICENSE-clovaai-aasist``
beside this file), converted to our checkpoint format by ``deepfake-audio import-weights``:
safetensors weights with their provenance in the metadata, loaded without unpickling. Every
``--model`` option takes these names (``predict --model aasist_l-asvspoof2019 clip.wav``), and
``train --init-from`` fine-tunes from them. Torch-free: listing them costs no import.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

#: Where the converted files and the licence lie (package data).
FOLDER = Path(__file__).resolve().parent
LICENCE_FILE = "LICENSE-clovaai-aasist"


@dataclass(frozen=True)
class Pretrained:
    """One built-in model: what it is, where it came from and what it was reported to do."""

    name: str
    architecture: str  # our registry name
    file: str  # in this folder
    parameters: int
    window_samples: int
    sample_rate: int
    training_data: str
    reported: str
    licence: str
    source: str
    source_sha1: str  # of the published .pth the file was converted from

    @property
    def path(self) -> Path:
        return FOLDER / self.file

    def to_dict(self) -> dict[str, Any]:
        return asdict(self) | {"path": str(self.path), "licence_file": str(FOLDER / LICENCE_FILE)}


_SOURCE = "github.com/clovaai/aasist @ a04c986, models/weights/"
_LICENCE = "MIT, Copyright (c) 2021-present NAVER Corp."

PRETRAINED: dict[str, Pretrained] = {
    spec.name: spec
    for spec in (
        Pretrained(
            name="aasist-asvspoof2019",
            architecture="aasist",
            file="aasist-asvspoof2019.safetensors",
            parameters=297_866,
            window_samples=64_600,
            sample_rate=16_000,
            training_data="ASVspoof 2019 LA train",
            reported="EER 0.83 %, min t-DCF 0.0275 on ASVspoof 2019 LA eval",
            licence=_LICENCE,
            source=_SOURCE + "AASIST.pth",
            source_sha1="ce675d040fae709e3e6c23b5d9531c399ccbad70",
        ),
        Pretrained(
            name="aasist_l-asvspoof2019",
            architecture="aasist_l",
            file="aasist_l-asvspoof2019.safetensors",
            parameters=85_306,
            window_samples=64_600,
            sample_rate=16_000,
            training_data="ASVspoof 2019 LA train",
            reported="EER 0.99 %, min t-DCF 0.0309 on ASVspoof 2019 LA eval",
            licence=_LICENCE,
            source=_SOURCE + "AASIST-L.pth",
            source_sha1="a7260102e0e19281412cf33c2ac9f7518df46c90",
        ),
    )
}


def resolve(model: str | Path) -> Path:
    """A built-in model's file for its name; anything else comes back as the path it is."""
    spec = PRETRAINED.get(str(model))
    if spec is not None and not Path(model).exists():  # a real file of that name wins
        return spec.path
    return Path(model)
