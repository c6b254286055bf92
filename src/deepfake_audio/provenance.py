"""Where an output came from: the package version, the command line, the model files used.

Every report, JSON output and run folder carries this, so a number found weeks later can be
traced to the code, the command and the exact checkpoints (by SHA-256) that produced it.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from deepfake_audio import __version__


def file_sha256(path: str | os.PathLike[str]) -> str:
    """SHA-256 of a file's bytes."""
    with open(path, "rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()


def provenance(command: str, models: Sequence[str | os.PathLike[str]] = ()) -> dict[str, Any]:
    """``{"package_version", "command_line", "models": [{"name", "path", "sha256"}]}``."""
    return {
        "package_version": __version__,
        "command_line": command,
        "models": [
            {"name": Path(p).name, "path": str(p), "sha256": file_sha256(p)} for p in models if p
        ],
    }
