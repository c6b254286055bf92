"""Training and inference throughput of ``seed_cnn`` on this machine, with and without the cache.

On generated WAV clips (``bench/_corpus.py``: 1-6 s, 22.05/44.1/48 kHz, a quarter stereo),
preprocessed as in training (2 s windows at 16 kHz, peak-normalized):

* ``data only``: clips/s the Dataset delivers, without a model;
* ``train``: clips/s through DataLoader -> forward -> cross-entropy -> backward -> Adam step
  (batch 32; the step is what ``DetectorModule.training_step`` does, without Lightning);
* ``inference``: clips/s scored as validation (and ``predict``) scores them, every window of
  each clip through :func:`deepfake_audio.scoring.engine.score_prepared` in batches of 64
  windows, and the real-time factor: seconds of audio scored per wall-clock second.

``cache``: audio read from the decode cache (memory-mapped; built once beforehand, as
``train`` does); ``decode``: every clip decoded and resampled from its file each time it is
used (``audio.load_audio``), as a pipeline without a cache would.

Figures are the best of ``--repeats`` runs, the sources alternating.

    python bench/bench_train.py                       # 160 clips, about 3 minutes on 2 cores
    python bench/bench_train.py --clips 400 --train-batches 10 --num-workers 2
"""

from __future__ import annotations

import argparse
import functools
import os
import platform
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from _corpus import make_corpus
from torch.utils.data import DataLoader

from deepfake_audio.allocator import keep_freed_memory
from deepfake_audio.audio import load_audio
from deepfake_audio.data.loading import ClipDataset, ShardSampler, TrainSampler
from deepfake_audio.data.pipeline import DataOptions, prepare
from deepfake_audio.models.registry import build_model
from deepfake_audio.preprocess import PreprocessConfig
from deepfake_audio.scoring.engine import Scorer, score_prepared, score_windows
from deepfake_audio.scoring.options import ScoringOptions
from deepfake_audio.training.validation import ValidationClips, collate_items

PRE = PreprocessConfig()  # 2 s at 16 kHz, peak


def data_only(dataset: ClipDataset, num_workers: int) -> float:
    loader = DataLoader(
        dataset, batch_size=32, sampler=TrainSampler(len(dataset)), num_workers=num_workers
    )
    start = time.perf_counter()
    count = sum(len(batch["label"]) for batch in loader)
    return count / (time.perf_counter() - start)


def train_throughput(dataset: ClipDataset, batches: int, num_workers: int) -> float:
    torch.manual_seed(0)
    model = build_model("seed_cnn", {"input_samples": PRE.window_samples})
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    loader = DataLoader(
        dataset, batch_size=32, sampler=TrainSampler(len(dataset)), num_workers=num_workers
    )
    model.train()
    clips, start = 0, 0.0
    for step, batch in enumerate(loader):
        if step == 1:  # the first step (allocations, oneDNN set-up) is not timed
            clips, start = 0, time.perf_counter()
        logits = model(batch["audio"])  # (32, 2)
        loss = torch.nn.functional.cross_entropy(logits, batch["label"])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        clips += len(batch["label"])
        if step == batches:
            break
    return clips / (time.perf_counter() - start)


def inference_throughput(records, source, num_workers: int) -> tuple[float, float]:
    """Validation's path: every window of each clip, through the scoring engine.

    Returns clips per second and seconds of audio scored per second (x real time).
    """
    torch.manual_seed(0)
    model = build_model("seed_cnn", {"input_samples": PRE.window_samples}).eval()
    score_windows(model, np.zeros((2, PRE.window_samples), np.float32))  # warm-up
    loader = DataLoader(
        ValidationClips(records, source, PRE),
        batch_size=64,
        sampler=ShardSampler(len(records)),
        num_workers=num_workers,
        collate_fn=collate_items,
    )
    scorer, options = Scorer("seed_cnn", model, 0), ScoringOptions(batch_size=64)
    start, clips, seconds = time.perf_counter(), 0, 0.0
    for batch in loader:
        for item, _ in score_prepared([scorer], [item for _, item in batch], options):
            clips += 1
            seconds += item.duration or 0.0
    elapsed = time.perf_counter() - start
    return clips / elapsed, seconds / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--clips", type=int, default=160, help="generated clips")
    parser.add_argument("--train-batches", type=int, default=4, help="timed batches of 32")
    parser.add_argument("--num-workers", type=int, default=0, help="DataLoader workers")
    parser.add_argument("--repeats", type=int, default=2, help="best of N alternating runs")
    parser.add_argument("--root", help="corpus folder (default: a temporary one)")
    args = parser.parse_args()
    keep_freed_memory()  # as the deepfake-audio command does

    work = Path(args.root or tempfile.mkdtemp(prefix="bench_train_"))
    make_corpus(work / "corpus", args.clips, "wav")
    prepared = prepare(
        work / "corpus",
        DataOptions(balance="none", cache_dir=str(work / "cache")),
        sample_rate=PRE.sample_rate,
        progress=False,
    )  # builds the cache (this is the one decode a training run pays)
    records = prepared.records
    sources = {
        "cache": prepared.cache.audio,
        "decode": functools.partial(load_audio, sample_rate=PRE.sample_rate),
    }
    print(
        f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
        f"torch {torch.__version__} with {torch.get_num_threads()} threads; {len(records)} clips, "
        f"seed_cnn on {PRE.window_samples}-sample windows, {args.num_workers} loader workers; "
        f"load average {os.getloadavg()[0]:.1f} at start"
    )
    print(f"{'source':<8} {'data only':>12} {'train':>12} {'inference':>12} {'RTF':>8}")
    best: dict[str, list[float]] = {name: [0.0, 0.0, 0.0, 0.0] for name in sources}
    for _ in range(args.repeats):  # alternate the sources so load from others hits both alike
        for name, source in sources.items():
            dataset = ClipDataset(records, source, PRE)
            figures = (
                data_only(dataset, args.num_workers),
                train_throughput(dataset, args.train_batches, args.num_workers),
                *inference_throughput(records, source, args.num_workers),
            )
            best[name] = [max(a, b) for a, b in zip(best[name], figures, strict=True)]
    for name, (loading, training, inference, rtf) in best.items():
        print(
            f"{name:<8} {loading:>8.0f} c/s {training:>8.1f} c/s {inference:>8.1f} c/s {rtf:>7.0f}x"
        )


if __name__ == "__main__":
    main()
