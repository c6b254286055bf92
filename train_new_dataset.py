#!/usr/bin/env python3
"""Train a fake/real speech detector (the original command).

    python3 train_new_dataset.py [--data-root ./dataset_root] [--epochs 10] [--output-dir RUN]

A thin wrapper over ``deepfake-audio train`` (same options; ``--help`` lists them all). The
data root defaults to ./dataset_root and the run folder to ./runs/YYYYmmdd_HHMMSS. Install
first with ``pip install -r requirements.txt``.
"""

import sys

from deepfake_audio.cli import main

if __name__ == "__main__":
    sys.exit(main(["train", *sys.argv[1:]]))
