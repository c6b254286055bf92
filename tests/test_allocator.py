"""Kept freed memory: large blocks are reused instead of mapped and zero-filled again."""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys

import pytest

from deepfake_audio.allocator import ENV_SWITCH
from deepfake_audio.memory_budget import LIMIT_ENV

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


# Makes the setting under a memory limit, then pretends the process grew to ``grown`` bytes.
_BUDGET_PROBE = """
import json, resource, sys
import numpy as np
import deepfake_audio.allocator as allocator
kept = allocator.keep_freed_memory()
allocator.resident_memory = lambda: int(sys.argv[1])
fell_back = allocator.enforce_budget()
block = np.ones(2**25); del block
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
block = np.ones(2**25); del block
faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before
decision = allocator.decision()
print(json.dumps({"kept": kept, "fell_back": fell_back, "enabled": decision.enabled,
                  "budget": decision.budget, "reason": decision.reason, "faults": faults}))
"""


def _budget_probe(limit: str, grown: int) -> dict:
    env = dict(os.environ, **{ENV_SWITCH: "1", LIMIT_ENV: limit})
    done = subprocess.run(
        [sys.executable, "-c", _BUDGET_PROBE, str(grown)],
        env=env, capture_output=True, text=True, check=True,
    )  # fmt: skip
    return json.loads(done.stdout)


def test_freed_memory_is_kept_within_half_the_available_memory() -> None:
    within = _budget_probe("8G", 2**30)  # budget 4 GB, the process at 1 GB
    assert within["kept"] and within["enabled"] and within["budget"] == 4 * 2**30
    assert not within["fell_back"] and "kept within 4.0 GB" in within["reason"]
    assert within["faults"] < FRESH_MAPPING // 10


def test_past_the_budget_it_falls_back_to_glibc() -> None:
    grown = _budget_probe("8G", 5 * 2**30)  # the process past its 4 GB budget
    assert grown["kept"] and grown["fell_back"] and not grown["enabled"]
    assert "fell back to glibc's default" in grown["reason"]
    assert grown["faults"] > FRESH_MAPPING  # freed blocks go back to the kernel again


def test_too_little_memory_keeps_glibc_default() -> None:
    small = _budget_probe("1G", 0)  # half of 1 GB is under the 2 GB minimum
    assert not small["kept"] and not small["enabled"]
    assert "under 2.0 GB" in small["reason"]
