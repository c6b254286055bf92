"""Kept freed memory: large blocks are reused instead of mapped and zero-filled again."""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys

import pytest

from deepfake_audio.allocator import ENV_SWITCH

pytestmark = pytest.mark.skipif(
    platform.system() != "Linux" or platform.libc_ver()[0] != "glibc",
    reason="the setting is glibc's; other C libraries are left alone",
)

# Allocates, fills and frees a 256 MB array twice; prints whether the setting was made and
# the page faults of the second round (the first round maps the memory either way).
_PROBE = """
import json, resource
import numpy as np
from deepfake_audio.allocator import keep_freed_memory
kept = keep_freed_memory()
def faults():
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt
block = np.ones(2**25); del block
before = faults()
block = np.ones(2**25); del block
print(json.dumps({"kept": kept, "faults": faults() - before}))
"""
# 256 MB is 65,536 pages of 4 KB, or 128 transparent huge pages of 2 MB where the kernel
# uses them: either way well over 100 faults when the block is mapped afresh.
FRESH_MAPPING = 100


def _probe(switch: str) -> dict:
    env = dict(os.environ, **{ENV_SWITCH: switch})
    done = subprocess.run(
        [sys.executable, "-c", _PROBE], env=env, capture_output=True, text=True, check=True
    )
    return json.loads(done.stdout)


def test_a_freed_large_block_is_reused_without_page_faults() -> None:
    kept = _probe("1")
    assert kept["kept"] is True
    assert kept["faults"] < FRESH_MAPPING // 10  # reused: no fresh pages to fault in


def test_the_switch_leaves_glibc_defaults() -> None:
    default = _probe("0")
    assert default["kept"] is False
    assert default["faults"] > FRESH_MAPPING  # glibc unmapped it: it is mapped afresh
