"""Wall time, CPU time and peak memory of whole command lines, as a user runs them.

Each COMMAND (one quoted string) runs ``--repeats`` times in a fresh process, start-up
included; with several commands the runs alternate (A B A B ...), so load from other jobs
falls on all of them alike. A command starting with ``deepfake-audio`` runs the console
script beside this Python. Printed per command, as the median with the range over the
repeats: the wall time; the CPU seconds (user + system) of the process and every process
it waited for; the peak memory of its largest single process (the "maximum resident set
size" ``/usr/bin/time -v`` reports) and of its whole process tree (the sum of the RSS of
every process below it, polled in ``/proc`` every 20 ms: worker processes count, and pages
they share with their parent count once per process, so it overstates); with ``--size
PATH``, the size on disk of a file or folder the command wrote.

``--fresh-cache`` gives every run an empty ``$DEEPFAKE_AUDIO_CACHE`` (a cold run: nothing
decoded before); ``--remove PATH`` deletes PATH before every run (a build from nothing).

    python bench/bench_command.py "deepfake-audio export --model demo/run /tmp/m.onnx" \\
        --size /tmp/m.onnx
    python bench/bench_command.py --fresh-cache --repeats 3 \\
        "deepfake-audio audit demo/corpus --no-progress" \\
        "deepfake-audio audit demo/corpus --no-progress --near-duplicates off"
    python bench/bench_command.py --repeats 1 "make demo"
"""

from __future__ import annotations

import argparse
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _proc import TreeMemorySampler, load_average, spread


def argv_of(command: str) -> list[str]:
    """The command's words; ``deepfake-audio`` becomes the console script beside this Python."""
    words = shlex.split(command)
    script = Path(sys.executable).with_name("deepfake-audio")
    if words and words[0] == "deepfake-audio" and script.exists():
        words[0] = str(script)
    return words


def size_mb(path: Path) -> float:
    """Size on disk of a file, or of every file below a folder, in MB (0 when absent)."""
    if path.is_file():
        return path.stat().st_size / 1e6
    if path.is_dir():
        return sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) / 1e6
    return 0.0


def run_once(argv: list[str], env: dict[str, str]) -> dict[str, float]:
    """One fresh process of ``argv``: wall s, CPU s of it and every process it waited for,
    the largest single process's peak RSS and the peak of the tree's summed RSS, in MB."""
    with tempfile.TemporaryFile("w+") as stderr:
        start = time.perf_counter()
        process = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=stderr)
        sampler = TreeMemorySampler(process.pid)
        sampler.start()
        _, status, usage = os.wait4(process.pid, 0)
        wall = time.perf_counter() - start
        sampler.stop()
        process.returncode = os.waitstatus_to_exitcode(status)
        if process.returncode != 0:
            stderr.seek(0)
            raise SystemExit(
                f"{shlex.join(argv)} exited {process.returncode}:\n{stderr.read()[-3000:]}"
            )
    return {
        "wall": wall,
        "cpu": usage.ru_utime + usage.ru_stime,
        "largest": usage.ru_maxrss / 1024,  # kB on Linux
        "tree": sampler.peak_rss,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("commands", nargs="+", metavar="COMMAND", help="a quoted command line")
    parser.add_argument("--repeats", type=int, default=3, help="runs of each (default 3)")
    parser.add_argument(
        "--fresh-cache", action="store_true", help="an empty $DEEPFAKE_AUDIO_CACHE every run"
    )
    parser.add_argument(
        "--remove", type=Path, action="append", default=[], help="delete before every run"
    )
    parser.add_argument("--size", type=Path, help="print the size of this file or folder")
    args = parser.parse_args()

    print(f"{os.cpu_count()} cores, python {sys.version.split()[0]}; load average {load_average()}")
    print(f"{args.repeats} fresh process(es) per command, alternating; median (range)\n")
    results: dict[str, list[dict[str, float]]] = {c: [] for c in args.commands}
    sizes: dict[str, float] = {}
    for _ in range(args.repeats):
        for command in args.commands:
            for path in args.remove:
                if path.is_dir():
                    shutil.rmtree(path)
                else:
                    path.unlink(missing_ok=True)
            env = dict(os.environ)
            with tempfile.TemporaryDirectory(prefix="bench-cache-") as cache:
                if args.fresh_cache:
                    env["DEEPFAKE_AUDIO_CACHE"] = cache
                results[command].append(run_once(argv_of(command), env))
            if args.size is not None:
                sizes[command] = size_mb(args.size)

    size_header = f" | size of {args.size}, MB" if args.size else ""
    print(f"| command | wall s | CPU s | largest process, MB | process tree, MB{size_header} |")
    print("|---|---:|---:|---:|---:|" + ("---:|" if args.size else ""))
    for command, runs in results.items():
        cells = [f"`{command}`"]
        cells += [spread([r[key] for r in runs], "{:.1f}") for key in ("wall", "cpu")]
        cells += [spread([r[key] for r in runs], "{:.0f}") for key in ("largest", "tree")]
        if args.size:
            cells.append(f"{sizes[command]:.1f}")
        print("| " + " | ".join(cells) + " |")
    print(f"\nload average at end: {load_average()}")


if __name__ == "__main__":
    main()
