"""``python -m deepfake_audio`` runs the CLI."""

import sys

from deepfake_audio.cli import main

sys.exit(main())
