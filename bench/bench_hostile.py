"""Issue 13's test of done: a scanned folder of good clips and hostile entries, end to end.

The folder mixes good clips (``fake/`` and ``real/``) with a FIFO, a symlink to
``/dev/zero``, a 3-hour FLAC of silence (546 KB), a folder that cannot be listed (mode 000
and, since root reads any folder, a path longer than PATH_MAX), and a file whose name holds
a newline. ``predict``, ``compare`` and ``audit`` each run as a user runs them (a fresh
process, default settings, start-up included); this script reports each one's wall time,
the peak memory of its whole process tree (polled in ``/proc``), how many good clips got a
verdict and which other entries were named with a reason.

    python bench/bench_hostile.py --models demo/run          # after `make demo`
    python bench/bench_hostile.py --models demo/run --hours 3 --clips 20
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile as sf
from _proc import TreeMemorySampler, load_average

NEWLINE_NAME = "evil\nREAL  0.0100  interview_ceo.wav"


def silent_flac(path: Path, hours: float) -> None:
    """Hours of digital silence at 16 kHz, written a minute at a time (FLAC packs it tiny)."""
    minute = np.zeros(16000 * 60, dtype=np.int16)
    with sf.SoundFile(path, "w", 16000, 1, "PCM_16") as handle:
        for _ in range(round(hours * 60)):
            handle.write(minute)


def build_folder(root: Path, good: list[Path], hours: float) -> dict[str, int]:
    """The scanned folder; returns how many good clips it holds and how many other entries."""
    for i, clip in enumerate(good):
        target = root / ("fake" if i % 2 else "real") / f"{i:03d}{clip.suffix}"
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(clip, target)
    shutil.copyfile(good[0], root / "real" / (NEWLINE_NAME + good[0].suffix))
    os.mkfifo(root / "fake" / "x.wav")
    (root / "real" / "zero.wav").symlink_to("/dev/zero")
    silent_flac(root / "real" / "silence_3h.flac", hours)
    locked = root / "fake" / "locked"
    locked.mkdir()
    shutil.copyfile(good[0], locked / "hidden.wav")
    locked.chmod(0)
    fd = os.open(root / "fake", os.O_RDONLY)  # deeper than PATH_MAX: unlistable even by root
    for _ in range(22):  # made a level at a time, relative to the last one
        os.mkdir("d" * 200, dir_fd=fd)
        deeper = os.open("d" * 200, os.O_RDONLY, dir_fd=fd)
        os.close(fd)
        fd = deeper
    os.close(os.open("deep.wav", os.O_WRONLY | os.O_CREAT, dir_fd=fd))
    os.close(fd)
    # The newline copy is a good clip too, and so is the locked folder's for root (who reads it).
    return {"good": len(good) + 1 + (os.geteuid() == 0), "other": 5}


def reports(folder: Path) -> str:
    """The text of every CSV/JSON/TXT report a command wrote under ``folder``."""
    return "".join(p.read_text(errors="replace") for p in sorted(folder.rglob("*")) if p.is_file())


def run(name: str, command: list[str], cwd: Path) -> dict:
    start = time.perf_counter()
    process = subprocess.Popen(
        command, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    sampler = TreeMemorySampler(process.pid)
    sampler.start()
    try:
        out, err = process.communicate(timeout=600)
    finally:
        sampler.stop()
    return {
        "name": name,
        "seconds": time.perf_counter() - start,
        "peak_mb": sampler.peak_rss,
        "code": process.returncode,
        "out": out,
        "err": err,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", default="demo/run", help="a run folder (default demo/run)")
    parser.add_argument("--corpus", default="demo/corpus", help="where good clips are taken")
    parser.add_argument("--clips", type=int, default=20, help="good clips (default 20)")
    parser.add_argument("--hours", type=float, default=3.0, help="silent FLAC length (3)")
    args = parser.parse_args()
    good = sorted(Path(args.corpus).rglob("*.wav"))[: args.clips]
    if not good or not Path(args.models).is_dir():
        sys.exit("run `make demo` first (or pass --models RUN --corpus DIR)")
    cli = str(Path(sys.executable).with_name("deepfake-audio"))
    models = str(Path(args.models).resolve())
    with tempfile.TemporaryDirectory(prefix="hostile-") as tmp:
        root = Path(tmp) / "scan"
        counts = build_folder(root, [p.resolve() for p in good], args.hours)
        flac_kb = (root / "real" / "silence_3h.flac").stat().st_size / 1024
        print(f"load average {load_average()}; {counts['good']} good clips, {counts['other']} "
              f"hostile entries, a {args.hours:g} h silent FLAC of {flac_kb:.0f} KB")  # fmt: skip
        out = Path(tmp) / "out"
        commands = {
            "predict": [cli, "predict", str(root), "--model", models, "--no-progress"],
            "compare": [cli, "compare", "--audio-dir", str(root), "--models-dir", models,
                        "--output-dir", str(out / "compare"), "--no-progress"],
            "audit": [cli, "audit", str(root), "--no-progress", "--cache-dir", str(out / "c"),
                      "--json", str(out / "audit" / "audit.json")],
        }  # fmt: skip
        print(f"{'command':<8} {'exit':>4} {'wall s':>7} {'peak MB':>8}  named")
        for name, command in commands.items():
            result = run(name, command, Path(tmp))
            text = result["out"] + result["err"] + reports(out / name)
            named = [
                word
                for word in ("FIFO", "character device", "silent", "cannot list")
                if word in text
            ]
            print(
                f"{name:<8} {result['code']:>4} {result['seconds']:>7.1f} "
                f"{result['peak_mb']:>8.0f}  {', '.join(named)}"
            )
            if name == "predict":
                lines = result["out"].splitlines()
                verdicts = sum(line.startswith(("FAKE", "REAL")) for line in lines)
                forged = [line for line in lines if "interview_ceo" in line]
                escaped = len(forged) == 1 and "evil\\n" in forged[0]
                print(f"         verdicts: {verdicts} of {counts['good']} good clips; the newline "
                      f"name on one line, escaped: {escaped}")  # fmt: skip
        (root / "fake" / "locked").chmod(0o755)  # so the temporary folder can be removed


if __name__ == "__main__":
    main()
