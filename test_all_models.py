#!/usr/bin/env python3
"""Compare every model of a training run on a folder of audio (the original command).

    python3 test_all_models.py --audio_dir DIR --output_dir OUT [--models_dir RUN]

A thin wrapper over ``deepfake-audio compare`` (same options; ``--help`` lists them all).
``--models_dir`` defaults to the newest run folder under ./runs/. Install first with
``pip install -r requirements.txt``.
"""

import sys

from deepfake_audio.cli import main

if __name__ == "__main__":
    sys.exit(main(["compare", *sys.argv[1:]]))
