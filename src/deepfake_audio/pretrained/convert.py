"""Write a published model's weights as a checkpoint of ours, with its provenance inside."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

from deepfake_audio.pretrained import LICENCE_FILE, PRETRAINED

#: How the AASIST authors fed their models: 16 kHz, 64,600 samples, no normalisation (a
#: shorter clip is repeated, as our windows are).
CLOVAAI_SAMPLE_RATE = 16_000
CLOVAAI_WINDOW = 64_600


def import_clovaai_aasist(
    weights: str | os.PathLike[str],
    config: str | os.PathLike[str],
    output: str | os.PathLike[str],
) -> tuple[Path, dict[str, Any]]:
    """Convert clovaai/aasist's ``.pth`` and model config into our checkpoint at ``output``.

    The state dict is read with ``weights_only=True`` (tensors only, nothing executable), its
    names mapped onto our ``aasist``/``aasist_l`` (:mod:`deepfake_audio.models.clovaai`), and
    the model is loaded strictly before anything is written. A file whose SHA-1 is one of the
    published ones gets that model's facts (training data, reported result) as provenance.
    Returns the path written and those facts.
    """
    import torch

    from deepfake_audio.checkpoints import save_checkpoint
    from deepfake_audio.models.clovaai import convert_clovaai_aasist
    from deepfake_audio.models.registry import build_model
    from deepfake_audio.preprocess import PreprocessConfig

    raw = Path(weights).read_bytes()
    sha1 = hashlib.sha1(raw).hexdigest()
    state = torch.load(weights, map_location="cpu", weights_only=True)
    settings = json.loads(Path(config).read_text())
    name, model_config, tensors = convert_clovaai_aasist(state, settings)
    if int(settings.get("nb_samp", CLOVAAI_WINDOW)) != CLOVAAI_WINDOW:
        raise ValueError(f"{config}: nb_samp {settings['nb_samp']} is not {CLOVAAI_WINDOW}")
    model = build_model(name, model_config)
    model.load_state_dict(tensors, strict=True)
    known = next((s for s in PRETRAINED.values() if s.source_sha1 == sha1), None)
    facts: dict[str, Any] = {
        "architecture": name,
        "parameters": sum(p.numel() for p in model.parameters()),
        "source_file": Path(weights).name,
        "source_sha1": sha1,
        "source_config": settings,
        "converted_by": "deepfake-audio import-weights --format clovaai-aasist",
    }
    if known is not None:
        facts |= {
            "name": known.name,
            "source": known.source,
            "licence": known.licence,
            "licence_file": LICENCE_FILE,
            "training_data": known.training_data,
            "reported": known.reported,
        }
    preprocess = PreprocessConfig(
        sample_rate=CLOVAAI_SAMPLE_RATE,
        window_seconds=CLOVAAI_WINDOW / CLOVAAI_SAMPLE_RATE,
        normalization="none",
    )
    written = save_checkpoint(
        output,
        model,
        model_name=name,
        preprocess=preprocess,
        threshold=0.5,  # the logits' own decision (bona fide logit above spoof), uncalibrated
        extra={"imported": facts, "threshold_rule": "the published model's own: P(fake) >= 0.5"},
    )
    return written, facts
