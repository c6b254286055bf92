"""``deepfake-audio serve`` as a user runs it: start-up, answer time and memory.

For each ``--model``, the installed ``deepfake-audio serve --model M`` starts in a fresh
process on a free local port; the script waits for ``GET /api/health``, then posts one
generated speech-like clip (``bench/_corpus.py``: ``--clip-seconds`` at 16 kHz, WAV) to
``POST /api/analyze`` ``--requests`` times, one at a time, as the page does. Printed per
model: the start-up (spawn to the first healthy answer: imports, model loading, the batch
measurement), the first answer and the median of the others with their range, and the
memory of the server's process tree (summed RSS, polled in ``/proc``): when healthy, and its
peak over the whole run. The server is then stopped.

    python bench/bench_serve.py --model demo/run                # after `make demo`
    python bench/bench_serve.py --model demo/run --model aasist_l-asvspoof2019 --requests 20
"""

from __future__ import annotations

import argparse
import json
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path

import numpy as np
import soundfile as sf
from _corpus import synth_clip
from _proc import TreeMemorySampler, descendants, load_average, memory_mb


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def tree_rss_mb(root: int) -> float:
    return sum(memory_mb(pid).get("VmRSS", 0.0) for pid in descendants(root))


def analyze(url: str, clip: Path) -> tuple[float, dict]:
    """Seconds from sending the upload to the whole answer, and the answer."""
    boundary = uuid.uuid4().hex
    body = (
        (
            f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="{clip.name}"'
            "\r\nContent-Type: audio/wav\r\n\r\n"
        ).encode()
        + clip.read_bytes()
        + f"\r\n--{boundary}--\r\n".encode()
    )
    request = urllib.request.Request(
        url + "/api/analyze",
        data=body,
        headers={"Content-Type": f"multipart/form-data; boundary={boundary}"},
    )
    start = time.perf_counter()
    with urllib.request.urlopen(request, timeout=600) as answer:
        document = json.loads(answer.read())
    return time.perf_counter() - start, document


def wait_healthy(url: str, process: subprocess.Popen, limit: float = 600.0) -> None:
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"serve exited {process.returncode}: {process.stderr.read()[-3000:]}")
        try:
            with urllib.request.urlopen(url + "/api/health", timeout=5) as answer:
                if answer.status == 200:
                    return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        time.sleep(0.05)
    raise SystemExit(f"serve did not answer /api/health within {limit:.0f} s")


def bench_model(model: str, clip: Path, requests: int) -> dict[str, object]:
    script = Path(sys.executable).with_name("deepfake-audio")
    cli = [str(script)] if script.exists() else [sys.executable, "-m", "deepfake_audio"]
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    start = time.perf_counter()
    process = subprocess.Popen(
        [*cli, "serve", "--model", model, "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    sampler = TreeMemorySampler(process.pid)
    sampler.start()
    try:
        wait_healthy(url, process)
        startup = time.perf_counter() - start
        healthy_mb = tree_rss_mb(process.pid)
        first, document = analyze(url, clip)
        others = [analyze(url, clip)[0] for _ in range(requests - 1)]
    finally:
        process.terminate()
        process.wait(timeout=60)
        sampler.stop()
    entry = document["files"][0]
    return {
        "startup": startup,
        "first": first,
        "others": others,
        "healthy_mb": healthy_mb,
        "peak_mb": sampler.peak_rss,
        "verdict": f"{entry['verdict']} {entry['p_fake']:.4f}",
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", action="append", help="as serve takes it (repeatable)")
    parser.add_argument("--clip-seconds", type=float, default=3.0, help="clip length (3 s)")
    parser.add_argument("--requests", type=int, default=10, help="uploads per model (10)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    models = args.model or ["demo/run"]
    with tempfile.TemporaryDirectory(prefix="bench-serve-") as tmp:
        clip = Path(tmp) / "clip.wav"
        rng = np.random.default_rng(args.seed)
        sf.write(clip, synth_clip(rng, 16000, args.clip_seconds, 1), 16000, subtype="PCM_16")
        print(
            f"python {sys.version.split()[0]}; a {args.clip_seconds:g} s WAV clip, "
            f"{args.requests} uploads one at a time; load average {load_average()}\n"
        )
        print(
            "| model | start-up s | first answer s | answer s, median (range) | "
            "memory when healthy, MB | peak memory, MB | verdict |"
        )
        print("|---|---:|---:|---:|---:|---:|---|")
        for model in models:
            r = bench_model(model, clip, args.requests)
            others = r["others"] or [r["first"]]
            spread = f"{statistics.median(others):.3f} ({min(others):.3f}-{max(others):.3f})"
            print(
                f"| `{model}` | {r['startup']:.1f} | {r['first']:.3f} | {spread} | "
                f"{r['healthy_mb']:.0f} | {r['peak_mb']:.0f} | {r['verdict']} |",
                flush=True,
            )
    print(f"\nload average at end: {load_average()}")


if __name__ == "__main__":
    main()
