"""Start-up time of the ``deepfake-audio`` command against a bare ``python -c pass``.

Each contender runs ``--repeats`` times (default 7) in a fresh process, and the median wall
time counts (spawn to exit). A second set of fresh processes runs the same command line
through ``deepfake_audio.cli.main`` and reports which heavy libraries (torch, lightning,
scikit-learn) it imported: ``--help`` should import none of them.

    python bench/bench_startup.py
    python bench/bench_startup.py --repeats 15
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path

from _proc import load_average, time_process

HEAVY = ("torch", "lightning", "sklearn", "scipy", "matplotlib", "av")

#: Runs the CLI in-process, then prints which of HEAVY ended up imported.
PROBE = """
import json, sys
from deepfake_audio.cli import main
try:
    main(json.loads(sys.argv[1]))
except SystemExit:
    pass
sys.stdout.flush()
print("HEAVY " + json.dumps(sorted(m for m in json.loads(sys.argv[2]) if m in sys.modules)))
"""


def cli() -> list[str]:
    """The command a user runs: the installed console script beside this Python, else -m."""
    script = Path(sys.executable).parent / "deepfake-audio"
    return [str(script)] if script.exists() else [sys.executable, "-m", "deepfake_audio"]


def heavy_imports(argv: list[str]) -> list[str]:
    """Which of ``HEAVY`` the CLI imports for ``argv``."""
    _, out = time_process([sys.executable, "-c", PROBE, json.dumps(argv), json.dumps(HEAVY)])
    line = next(x for x in out.splitlines() if x.startswith("HEAVY "))
    return json.loads(line[len("HEAVY ") :])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=7, help="median of N runs (default 7)")
    args = parser.parse_args()
    contenders: list[tuple[str, list[str], list[str] | None]] = [
        ("python -c pass", [sys.executable, "-c", "pass"], None),
        ("deepfake-audio --help", [*cli(), "--help"], ["--help"]),
        ("deepfake-audio audit --help", [*cli(), "audit", "--help"], ["audit", "--help"]),
        ("deepfake-audio predict --help", [*cli(), "predict", "--help"], ["predict", "--help"]),
    ]
    print(f"python {sys.version.split()[0]}; load average at start: {load_average()}")
    print(f"median of {args.repeats} fresh processes each\n")
    print("| command | median s | vs python -c pass | imported |")
    print("|---|---:|---:|---|")
    base = None
    for name, command, argv in contenders:
        time_process(command)  # one untimed run: .pyc files written, the OS caches warm
        median = statistics.median(time_process(command)[0] for _ in range(args.repeats))
        base = base or median
        heavy = "n/a" if argv is None else ", ".join(heavy_imports(argv)) or "none of them"
        print(f"| `{name}` | {median:.3f} | {median / base:.1f}x | {heavy} |", flush=True)
    print(f"\n(imported: which of {', '.join(HEAVY)} the command loaded)")
    print(f"load average at end: {load_average()}")


if __name__ == "__main__":
    main()
