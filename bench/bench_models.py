"""Inference speed of the registered models on CPU: real-time factor and work per second.

For each model: parameters, multiply-accumulates (MACs) per second of audio (counted by
``torch.utils.flop_counter`` on one window), and the real-time factor of batched inference
on random audio (seconds of audio scored per second of wall time; best of ``--repeats``
after one warm-up batch), with ``torch.set_num_threads(--threads)``.

The real-time factor is measured twice per model, each in a fresh process: with glibc's
default allocator settings (the baseline) and with the freed memory kept, as the
``deepfake-audio`` command runs (:mod:`deepfake_audio.allocator`); the last column is
their ratio, and each process's peak memory is printed too.

Then the inference paths (``--paths``), each model at its own window, in this process with
the freed memory kept: ``eager`` (the model as the scoring engine runs it), ``compile``
(``torch.compile``, its compile time in the setup column), ``channels_last`` (models with 2D
convolutions), ``int8`` (``quantize_dynamic`` of Linear/LSTM/GRU), ``int8_conv`` (the
convolutions too, where torch has a dynamic int8 kernel) and ``onnx`` (ONNX Runtime on the
exported graph). Paths are timed interleaved, batch by batch, in the same run as eager: the
ratio to eager is the figure to trust on a busy machine, and ``--rounds`` repeats the whole
measurement: each cell is the median of the rounds, their range in brackets. ``% peak`` is
the model's FLOPs per second over a large float32 matrix product's on the same threads.
``max |dp|`` compares each path's P(fake) with eager's on random windows, or with ``--data``
on every window of the test split, which each path also scores through the scoring engine:
for a model given trained weights (``--checkpoint``), each path's EER on the test split too
(an untrained model's scores all sit near 0.5, where a 1e-8 change reorders them: its EER is
left out). A path is *valid* when every |dp| <= 0.01 and the EER moves by at most 0.1
points. On a machine shared with other jobs, ``OMP_WAIT_POLICY=PASSIVE`` keeps torch's idle
threads from spinning against them (all paths gain alike; the ratios hold either way).

    python bench/bench_models.py                          # all models, 2 threads, batch 8
    python bench/bench_models.py --models aasist_l --batch 4 --threads 2
    python bench/bench_models.py --models aasist_l,lcnn_lfcc --train   # training steps too
    python bench/bench_models.py --models seed_cnn,aasist_l --skip-allocator \\
        --checkpoint seed_cnn=demo/run --checkpoint aasist_l=aasist_l-asvspoof2019 \\
        --data demo/corpus
    python bench/bench_models.py --paths eager,onnx --rounds 3      # two paths, 3 rounds
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import json
import logging
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
import warnings
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from _proc import spread
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from deepfake_audio.allocator import ENV_SWITCH, keep_freed_memory
from deepfake_audio.models.registry import build_model, model_names

PATHS = ("eager", "compile", "channels_last", "int8", "int8_conv", "onnx")
#: A path is valid when every window's P(fake) moves by at most this, and the EER by at most
#: MAX_EER_CHANGE (a fraction: 0.001 is 0.1 points).
MAX_P_CHANGE, MAX_EER_CHANGE = 0.01, 0.001


def macs_per_second(model: torch.nn.Module, samples: int, rate: int) -> float:
    with FlopCounterMode(display=False) as counter:  # (needs autograd on: no no_grad)
        model(torch.randn(1, samples))
    return counter.get_total_flops() / 2 / (samples / rate)


def real_time_factor(model: torch.nn.Module, samples: int, rate: int, batch: int, repeats: int):
    audio = torch.randn(batch, samples)
    with torch.inference_mode():
        model(audio)  # warm-up: allocator, oneDNN kernel selection
        best = min(_timed(model, audio) for _ in range(repeats))
    return batch * samples / rate / best


def _timed(model: Callable[[torch.Tensor], torch.Tensor], audio: torch.Tensor) -> float:
    start = time.perf_counter()
    model(audio)
    return time.perf_counter() - start


def _measure_in_child(name: str, args: argparse.Namespace, keep: bool) -> dict:
    """Real-time factor and peak memory of ``name`` in a fresh process (allocator state is
    process-wide and cannot be reset)."""
    command = [sys.executable, __file__, "--child", name, "--batch", str(args.batch),
               "--threads", str(args.threads), "--repeats", str(args.repeats)]  # fmt: skip
    command += ["--train"] if args.train else []
    env = dict(os.environ, **{ENV_SWITCH: "1" if keep else "0"})
    done = subprocess.run(command, env=env, capture_output=True, text=True, check=True)
    return json.loads(done.stdout.splitlines()[-1])


def train_clips_per_second(model: torch.nn.Module, samples: int, batch: int, repeats: int):
    """Clips/s of training steps (forward, cross-entropy, backward, Adam) on random audio."""
    model.train()
    audio, labels = torch.randn(batch, samples), torch.randint(0, 2, (batch,))
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-4)

    def step() -> float:
        start = time.perf_counter()
        optimizer.zero_grad()
        torch.nn.functional.cross_entropy(model(audio), labels).backward()
        optimizer.step()
        return time.perf_counter() - start

    step()  # warm-up
    return batch / min(step() for _ in range(repeats))


def _child(name: str, args: argparse.Namespace) -> None:
    kept = keep_freed_memory()
    torch.set_num_threads(args.threads)
    model = build_model(name).eval()
    samples = model.config.input_samples
    rate = getattr(model.config, "sample_rate", 16000)
    result = {"kept": kept, "rtf": real_time_factor(model, samples, rate, args.batch, args.repeats)}
    if args.train:
        result["train"] = train_clips_per_second(model, samples, args.batch, args.repeats)
    result["peak_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps(result))


def allocator_table(args: argparse.Namespace) -> None:
    """The first table: each model's RTF with glibc's allocator and with freed memory kept."""
    print(
        f"{'model':<10} {'window':>8} {'params':>12} {'GMAC/s audio':>13} "
        f"{'x RT glibc':>11} {'x RT kept':>10} {'ratio':>6} {'MB glibc':>9} {'MB kept':>8}"
    )
    for name in args.models.split(","):
        model = build_model(name).eval()
        samples = model.config.input_samples
        rate = getattr(model.config, "sample_rate", 16000)
        params = sum(p.numel() for p in model.parameters())
        gmacs = macs_per_second(model, samples, rate) / 1e9
        base = _measure_in_child(name, args, keep=False)
        kept = _measure_in_child(name, args, keep=True)
        if not kept["kept"]:
            print("(this C library is not glibc: both columns use its default allocator)")
        print(
            f"{name:<10} {samples / rate:>7.2f}s {params:>12,} {gmacs:>13.2f} "
            f"{base['rtf']:>11.1f} {kept['rtf']:>10.1f} {kept['rtf'] / base['rtf']:>5.2f}x "
            f"{base['peak_mb']:>9.0f} {kept['peak_mb']:>8.0f}"
        )
        if args.train:
            print(
                f"{'':<10} training, clips/s: glibc {base['train']:.2f}, kept "
                f"{kept['train']:.2f} ({kept['train'] / base['train']:.2f}x)"
            )


# --- inference paths -------------------------------------------------------------------------


@dataclass
class InferencePath:
    """One way of running a model: ``model`` maps audio ``(batch, samples)`` to logits
    ``(batch, 2)``, or is None with ``note`` saying why the path could not be built."""

    name: str
    model: nn.Module | None
    setup_seconds: float = 0.0  # building it: compiling, quantising, exporting
    note: str = ""
    times: list[float] = field(default_factory=list)  # best batch time of each round


class OnnxRuntimeModel(nn.Module):
    """The project's ONNX export of a detector, run by onnxruntime, as a module that returns
    logits, so the scoring engine runs it like any model (the export outputs P(fake): the
    logits ``(log p, log(1 - p))`` give it back through the engine's softmax). The engine asks
    a model for its parameters' device: a zero-size one says CPU."""

    def __init__(self, runner) -> None:
        super().__init__()
        self.runner = runner
        self.device_marker = nn.Parameter(torch.zeros(0), requires_grad=False)

    def forward(self, audio: torch.Tensor) -> torch.Tensor:
        windows = audio.detach().cpu().numpy()
        p_fake = torch.from_numpy(self.runner(windows, len(windows))).double()
        return torch.stack([p_fake.log(), (-p_fake).log1p()], dim=1)  # (batch, 2)


@contextlib.contextmanager
def _quiet(*loggers: str) -> Iterator[None]:
    """Silence these loggers: a failing ``torch.compile`` logs its whole generated code, and
    the table's note says what failed."""
    levels = [(logging.getLogger(name), logging.getLogger(name).level) for name in loggers]
    for logger, _ in levels:
        logger.setLevel(logging.CRITICAL + 1)
    try:
        yield
    finally:
        for logger, level in levels:
            logger.setLevel(level)


def _failure(exc: BaseException) -> str:
    """The start of an error, on one line, fit for a table cell."""
    text = " ".join(str(exc).split()).replace("|", "/")
    return f"failed: {type(exc).__name__}: {text[:160]}"


def _onnx_path(detector, threads: int, folder: Path) -> tuple[nn.Module, str]:
    """The detector exported by the project's exporter (checked against torch on probe
    windows as it exports) and an onnxruntime session on it."""
    from deepfake_audio.scoring.onnx_export import OnnxRunner, export_onnx

    report = export_onnx(detector, folder / "model.onnx")
    note = f"{report.exporter}, opset {report.opset}"
    return OnnxRuntimeModel(OnnxRunner(report.path, threads)), note


def _int8(model: nn.Module, with_convs: bool) -> tuple[nn.Module, str]:
    from torch.ao.nn.quantized import dynamic as quantized_dynamic
    from torch.ao.quantization import quantize_dynamic
    from torch.ao.quantization.quantization_mappings import (
        get_default_dynamic_quant_module_mappings,
    )

    mapping = get_default_dynamic_quant_module_mappings()
    kinds: set[type[nn.Module]] = {nn.Linear, nn.LSTM, nn.GRU}
    if with_convs:
        convs = {nn.Conv1d: quantized_dynamic.Conv1d, nn.Conv2d: quantized_dynamic.Conv2d}
        mapping = {**mapping, **convs}
        kinds |= set(convs)
    present = {type(m) for m in model.modules()} & kinds
    if with_convs and not present & {nn.Conv1d, nn.Conv2d}:
        raise ValueError("no convolutions")
    model = copy.deepcopy(model)
    for conv in model.modules():  # int8 kernels take only numbers: "same" as its numbers
        if isinstance(conv, (nn.Conv1d, nn.Conv2d)) and conv.padding == "same" and with_convs:
            if any(k % 2 == 0 for k in conv.kernel_size):
                raise ValueError("'same' padding of an even kernel: no int8 equivalent")
            pairs = zip(conv.kernel_size, conv.dilation, strict=True)
            conv.padding = tuple(d * (k - 1) // 2 for k, d in pairs)
    with warnings.catch_warnings():  # torch.ao.quantization's deprecation notice
        warnings.simplefilter("ignore")
        quantized = quantize_dynamic(model, present, dtype=torch.qint8, mapping=mapping)
    names = ", ".join(sorted(k.__name__ for k in present))
    return quantized, names


def build_paths(
    detector, names: Sequence[str], audio: torch.Tensor, threads: int, folder: Path
) -> list[InferencePath]:
    """Each path of ``names`` for ``detector``'s model (unbuildable ones carry their reason)."""
    model = detector.model
    paths = []
    for name in names:
        start = time.perf_counter()
        note = ""
        try:
            if name == "eager":
                built: nn.Module = model
            elif name == "compile":
                built = torch.compile(model)
                with torch.inference_mode(), _quiet("torch._inductor", "torch._dynamo"):
                    built(audio)  # compiles for this batch shape
            elif name == "channels_last":
                if not any(isinstance(m, nn.Conv2d) for m in model.modules()):
                    paths.append(InferencePath(name, None, note="n/a: no 2D convolutions"))
                    continue
                built = copy.deepcopy(model).to(memory_format=torch.channels_last)
            elif name in ("int8", "int8_conv"):
                built, note = _int8(model, with_convs=name == "int8_conv")
                with torch.inference_mode():
                    built(audio)  # dynamic quantised convolutions may fail only when run
            else:  # onnx
                built, note = _onnx_path(detector, threads, folder)
        except Exception as exc:  # a path that cannot be built is a result: reported
            paths.append(InferencePath(name, None, note=_failure(exc)))
            continue
        if next(built.parameters(), None) is None:  # all int8: the engine asks for a device
            built.register_parameter("device_marker", nn.Parameter(torch.zeros(0), False))
        paths.append(InferencePath(name, built.eval(), time.perf_counter() - start, note))
    return paths


def time_paths(
    paths: Sequence[InferencePath], audio: torch.Tensor, repeats: int, peak_size: int = 2048
) -> float:
    """One round: each buildable path's best batch time over ``repeats``, the paths taking
    turns batch by batch with a large matrix product, so that a busy machine slows them all
    alike; returns the matrix product's FLOP/s (its best) in this round."""
    runnable = [p for p in paths if p.model is not None]
    best = {p.name: float("inf") for p in runnable}
    a, b = torch.randn(peak_size, peak_size), torch.randn(peak_size, peak_size)
    matmul = float("inf")
    with torch.inference_mode():
        for path in runnable:
            path.model(audio)  # warm-up: allocator, kernel selection
        a @ b
        for _ in range(repeats):
            for path in runnable:
                best[path.name] = min(best[path.name], _timed(path.model, audio))
            matmul = min(matmul, _timed(lambda x: x @ b, a))
    for path in runnable:
        path.times.append(best[path.name])
    return 2 * peak_size**3 / matmul


def fake_probabilities(model: nn.Module, windows: torch.Tensor, batch: int) -> np.ndarray:
    from deepfake_audio.scoring.engine import score_windows

    return score_windows(model, windows.numpy(), batch)


@dataclass
class TestScores:
    """Each path's window scores and EER on the test split."""

    windows: dict[str, np.ndarray]
    eer: dict[str, float]


def score_test_split(
    paths: Sequence[InferencePath], detector, records: Sequence, batch: int, workers: int
) -> TestScores:
    """Score ``records`` with every runnable path through the scoring engine (each file
    decoded and windowed once, with ``detector``'s preprocessing; the paths take turns on
    each pooled batch of windows), and each path's file-level EER."""
    from deepfake_audio.metrics import equal_error_rate
    from deepfake_audio.scoring.engine import Scorer, score_prepared
    from deepfake_audio.scoring.options import ScoringOptions
    from deepfake_audio.scoring.windows import prepare_files

    runnable = [p for p in paths if p.model is not None]
    prepared = prepare_files([r.path for r in records], [detector.preprocess], workers=workers)
    scorers = [Scorer(p.name, p.model, 0) for p in runnable]
    options = ScoringOptions(batch_size=batch)
    windows: dict[str, list[np.ndarray]] = {p.name: [] for p in runnable}
    scores: dict[str, list[float]] = {p.name: [] for p in runnable}
    labels = []
    for record, (item, clips) in zip(
        records, score_prepared(scorers, prepared, options), strict=True
    ):
        if item.error is not None or record.label is None:
            continue
        labels.append(record.label)
        for name, clip in clips.items():
            windows[name].append(clip.window_scores)
            scores[name].append(clip.score)
    label_array = np.asarray(labels)
    return TestScores(
        {name: np.concatenate(w) if w else np.zeros(0) for name, w in windows.items()},
        {name: equal_error_rate(label_array, np.asarray(s))[0] for name, s in scores.items()},
    )


def _detector(name: str, checkpoints: dict[str, str]):
    """The detector to bench: a checkpoint's where ``--checkpoint`` names one, else the
    architecture with random weights at its own window (its preprocessing the default's)."""
    from deepfake_audio.checkpoints import Detector, final_model_path, load_checkpoint
    from deepfake_audio.preprocess import PreprocessConfig

    if name in checkpoints:
        detector = load_checkpoint(final_model_path(checkpoints[name]))
        if detector.model_name != name:
            raise SystemExit(f"{checkpoints[name]} holds a {detector.model_name}, not a {name}")
        detector.model.eval()
        return detector
    torch.manual_seed(0)
    model = build_model(name).eval()
    rate = getattr(model.config, "sample_rate", 16000)
    window = PreprocessConfig(sample_rate=rate, window_seconds=model.config.input_samples / rate)
    return Detector(model, name, window, 0.5, {})


@dataclass
class ModelPaths:
    """One model's paths, measured: the rows of the table."""

    name: str
    window_seconds: float
    weights: str
    flops: float  # per second of audio
    peaks: list[float]  # the matrix product's FLOP/s in each round
    paths: list[InferencePath]
    windows: dict[str, np.ndarray]  # each path's P(fake) per window checked
    eers: dict[str, float]  # each path's EER on the test split (empty without --data)


def paths_table(args: argparse.Namespace) -> None:
    """The second table: every inference path of every model, against eager."""
    keep_freed_memory()  # as the deepfake-audio command runs the models
    torch.set_num_threads(args.threads)
    names = [p for p in args.paths.split(",") if p]
    unknown = set(names) - set(PATHS)
    if unknown:
        raise SystemExit(f"unknown path(s) {sorted(unknown)}; choose from {', '.join(PATHS)}")
    if "eager" not in names:
        names.insert(0, "eager")  # the baseline every ratio and |dp| refers to
    checkpoints = dict(_name_value(item) for item in args.checkpoint)
    unused = set(checkpoints) - set(args.models.split(","))
    if unused:
        raise SystemExit(f"--checkpoint names {sorted(unused)}, not among --models")
    test_records = []
    if args.data:
        from deepfake_audio.data.listing import dataset_records
        from deepfake_audio.data.pipeline import DataOptions

        test_records = dataset_records(args.data, DataOptions(), ["test"]).records
    print(
        f"\ninference paths: batch {args.batch}, {args.threads} threads, {args.repeats} timed "
        f"batches per path per round, {args.rounds} round(s); % peak against a float32 "
        "2048x2048 matrix product timed between them"
        + (f"; test split of {args.data}: {len(test_records)} files" if args.data else "")
    )
    results = []
    for name in args.models.split(","):
        detector = _detector(name, checkpoints)
        model = detector.model
        samples = model.config.input_samples
        rate = getattr(model.config, "sample_rate", 16000)
        flops = 2 * macs_per_second(model, samples, rate)
        torch.manual_seed(0)
        audio = torch.randn(args.batch, samples)
        with tempfile.TemporaryDirectory() as folder:
            paths = build_paths(detector, names, audio, args.threads, Path(folder))
            peaks = [time_paths(paths, audio, args.repeats) for _ in range(args.rounds)]
            if args.data:  # every window of the test split, through the scoring engine
                test = score_test_split(paths, detector, test_records, args.batch, args.workers)
                windows, eers = test.windows, (test.eer if name in checkpoints else {})
            else:  # random windows
                check = torch.randn(max(args.batch, 16), samples)
                windows = {
                    p.name: fake_probabilities(p.model, check, args.batch)
                    for p in paths if p.model is not None
                }  # fmt: skip
                eers = {}
        weights = checkpoints.get(name, "random")
        results.append(
            ModelPaths(name, samples / rate, weights, flops, peaks, paths, windows, eers)
        )
        print(f"{name}: measured", file=sys.stderr, flush=True)
    _print_paths(results, args.batch)


def _name_value(item: str) -> tuple[str, str]:
    name, sep, value = item.partition("=")
    if not sep or not name or not value:
        raise SystemExit(f"--checkpoint wants NAME=PATH, got {item!r}")
    return name, value


def _print_paths(results: Sequence[ModelPaths], batch: int) -> None:
    header = ["model", "window", "weights", "path", "x RT", "vs eager", "% peak", "setup s",
              "max \\|dp\\|", "EER", "dEER (pts)", "valid", "note"]  # fmt: skip
    print("\n| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))
    for result in results:
        eager = next(p for p in result.paths if p.name == "eager")
        first = [result.name, f"{result.window_seconds:.2f} s", result.weights]
        for path in result.paths:
            if path.model is None:
                print("| " + " | ".join([*first, path.name, *["-"] * 8, path.note]) + " |")
                continue
            rtfs = [batch * result.window_seconds / t for t in path.times]
            ratios = [e / t for e, t in zip(eager.times, path.times, strict=True)]
            shares = [100 * result.flops * r / p for r, p in zip(rtfs, result.peaks, strict=True)]
            got, base = result.windows[path.name], result.windows["eager"]
            delta = float(np.max(np.abs(got - base), initial=0.0))
            eer = result.eers.get(path.name)
            d_eer = None if eer is None else eer - result.eers["eager"]
            valid = delta <= MAX_P_CHANGE and (d_eer is None or abs(d_eer) <= MAX_EER_CHANGE)
            cells = [
                *first,
                path.name,
                spread(rtfs, "{:.0f}"),
                spread(ratios, "{:.2f}x"),
                spread(shares, "{:.0f}"),
                f"{path.setup_seconds:.1f}",
                f"{delta:.1e}",
                "-" if eer is None else f"{100 * eer:.2f} %",
                "-" if d_eer is None else f"{100 * d_eer:+.2f}",
                "yes" if valid else "**no**",
                path.note,
            ]
            print("| " + " | ".join(cells) + " |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default=",".join(model_names()))
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument(
        "--train", action="store_true", help="also time training steps (slow for AASIST)"
    )
    parser.add_argument(
        "--paths",
        default=",".join(PATHS),
        help=f"inference paths to compare (default all: {','.join(PATHS)}; '' for none)",
    )
    parser.add_argument(
        "--rounds", type=int, default=2, help="times the paths are timed, for their spread"
    )
    parser.add_argument(
        "--checkpoint",
        action="append",
        default=[],
        metavar="NAME=PATH",
        help="bench model NAME with these weights (a checkpoint, a run folder or a built-in "
        "model's name, e.g. aasist_l=aasist_l-asvspoof2019); repeatable",
    )
    parser.add_argument("--data", help="score this dataset's test split with every path")
    parser.add_argument("--workers", type=int, default=1, help="decoding processes for --data")
    parser.add_argument(
        "--skip-allocator", action="store_true", help="leave out the allocator table"
    )
    parser.add_argument("--child", help=argparse.SUPPRESS)  # one measurement, as JSON
    args = parser.parse_args()
    if args.child:
        _child(args.child, args)
        return
    torch.set_num_threads(args.threads)
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(
        f"{platform.processor() or platform.machine()}, torch {torch.__version__}, "
        f"{args.threads} threads, batch {args.batch}, load average {load:.1f}"
    )
    if not args.skip_allocator:
        allocator_table(args)
    if args.paths:
        paths_table(args)


if __name__ == "__main__":
    main()
