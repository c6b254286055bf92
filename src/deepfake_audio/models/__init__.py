"""Detector architectures: one file per model, registered in :mod:`deepfake_audio.models.registry`.

Every model takes raw audio ``(batch, samples)`` and returns logits ``(batch, 2)`` with
index 0 = fake and 1 = real; feature front-ends live inside the model. Each has a frozen
dataclass config (``model.config``) that checkpoints store so the model can be rebuilt from
the file alone.

This package's root imports no torch, so the command line can list the models in ``--help``
without loading it; the registry checks at import that :data:`MODEL_NAMES` lists it exactly.
"""

#: The registered architectures, sorted (``--model`` choices).
MODEL_NAMES = ("aasist", "aasist_l", "lcnn_lfcc", "rawnet2", "seed_cnn")
