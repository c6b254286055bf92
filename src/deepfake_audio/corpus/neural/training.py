"""Train the neural vocoder on real speech for a bounded time; resumable; reused when done.

Losses (no discriminators, see :mod:`deepfake_audio.corpus.neural.model`): the L1 distance
between the log-mel spectrograms of the output and of the real segment, plus a
multi-resolution STFT loss (spectral convergence and log-magnitude L1 at 16-128 ms windows;
Yamamoto et al., 2020). The second is what teaches the phase: a phase that does not agree
from frame to frame cancels in the overlap-add and shows at the other resolutions.

Time, not steps, is what a user grants (``--neural-minutes``): the learning rate follows
the share of that time spent (a short warm-up, then a cosine decay), and training stops when
it is spent. The seed fixes the initial weights and the order of the training segments; how
many steps fit in the time depends on the machine, and the file records it.

The folder (``OUT/neural_vocoder/`` in a demo corpus) holds:

- ``vocoder.safetensors``: the trained weights; the metadata says how (config, steps,
  seconds, seed, the training audio, the final losses), so a second build with the same
  settings reuses it;
- ``training_state.safetensors``: weights, optimizer and sampler state of an unfinished run,
  saved about every minute (a stopped build resumes from it; removed once done);
- ``losses.csv`` and ``losses.png``: the loss curves;
- ``samples/``: a few held-out clips next to their resyntheses, and ``spectrograms.png``
  showing both, so a user can hear and see what the vocoder makes.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import math
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load_file, safe_open, save_file
from torch import nn
from tqdm.auto import tqdm

from deepfake_audio.corpus.neural.model import Vocoder, VocoderConfig
from deepfake_audio.fileio import atomic_output, write_text_atomic

VOCODER_FILE = "vocoder.safetensors"
STATE_FILE = "training_state.safetensors"
LOSSES_FILE = "losses.csv"
SEGMENT_SECONDS = 1.0
BATCH = 16
PEAK_LR = 1e-3
WARMUP_FRACTION = 0.02
FINAL_LR_FRACTION = 0.05
SAVE_EVERY_SECONDS = 60.0
STFT_RESOLUTIONS = ((256, 64), (512, 128), (1024, 256), (2048, 512))
_LOSS_COLUMNS = ("step", "seconds", "loss", "mel_l1", "stft", "lr")


@dataclass(frozen=True)
class TrainedVocoder:
    """A trained vocoder file and how it was made (its safetensors metadata)."""

    path: Path
    config: VocoderConfig
    steps: int
    seconds: float
    settings: str  # the key of what it was trained on and how
    reused: bool = False

    def load(self) -> Vocoder:
        return load_vocoder(self.path)


class SpectralLoss(nn.Module):
    """Mel L1 plus multi-resolution STFT loss; returns ``(total, mel_l1, stft)``."""

    def __init__(self, vocoder: Vocoder) -> None:
        super().__init__()
        self.mel = vocoder.mel
        for n_fft, _ in STFT_RESOLUTIONS:
            self.register_buffer(f"window_{n_fft}", torch.hann_window(n_fft), persistent=False)

    def forward(
        self, output: torch.Tensor, target: torch.Tensor, target_mel: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        mel_l1 = (self.mel(output) - target_mel).abs().mean()
        stft = output.new_zeros(())
        for n_fft, hop in STFT_RESOLUTIONS:
            window = getattr(self, f"window_{n_fft}")
            made = torch.stft(output, n_fft, hop, window=window, return_complex=True).abs()
            real = torch.stft(target, n_fft, hop, window=window, return_complex=True).abs()
            convergence = torch.linalg.norm(real - made) / torch.linalg.norm(real).clamp(min=1e-7)
            log_l1 = (torch.log(made.clamp(min=1e-5)) - torch.log(real.clamp(min=1e-5))).abs()
            stft = stft + convergence + log_l1.mean()
        stft = stft / len(STFT_RESOLUTIONS)
        return mel_l1 + stft, mel_l1, stft


def settings_key(
    clips: Sequence[np.ndarray],
    config: VocoderConfig,
    seed: int,
    minutes: float,
    max_steps: int | None = None,
) -> str:
    """What decides a trained vocoder: its shape, seed, budget and the training audio."""
    digest = hashlib.sha256(json.dumps([config.to_dict(), seed, minutes, max_steps]).encode())
    for clip in clips:
        digest.update(np.ascontiguousarray(clip, dtype=np.float32).tobytes())
    return digest.hexdigest()[:16]


def learning_rate(progress: float) -> float:
    """Linear warm-up over the first ``WARMUP_FRACTION`` of the time, then a cosine decay to
    ``FINAL_LR_FRACTION`` of the peak at the end of it (``progress`` in [0, 1])."""
    if progress < WARMUP_FRACTION:
        return PEAK_LR * max(progress / WARMUP_FRACTION, 0.01)
    rest = min(1.0, (progress - WARMUP_FRACTION) / (1.0 - WARMUP_FRACTION))
    low = FINAL_LR_FRACTION
    return PEAK_LR * (low + (1 - low) * 0.5 * (1 + math.cos(math.pi * rest)))


class SegmentSampler:
    """Random ``length``-sample segments of the training clips, a clip drawn in proportion to
    its length (every second of speech equally likely); seeded, its state saved and restored."""

    def __init__(self, clips: Sequence[np.ndarray], length: int, seed: int) -> None:
        usable = [np.asarray(c, dtype=np.float32) for c in clips if len(c) >= length // 4]
        if not usable:
            raise ValueError(f"no training clip is at least {length // 4} samples long")
        self.clips, self.length = usable, length
        sizes = torch.tensor([len(c) for c in usable], dtype=torch.float64)
        self.weights = sizes / sizes.sum()
        self.generator = torch.Generator().manual_seed(seed)

    def batch(self, size: int) -> torch.Tensor:
        picks = torch.multinomial(self.weights, size, replacement=True, generator=self.generator)
        out = torch.zeros(size, self.length)
        for row, index in enumerate(picks.tolist()):
            clip = self.clips[index]
            spare = len(clip) - self.length
            start = (
                int(torch.randint(0, spare + 1, (1,), generator=self.generator)) if spare > 0 else 0
            )
            piece = torch.from_numpy(clip[start : start + self.length])
            out[row, : len(piece)] = piece
        return out


def train_vocoder(
    clips: Sequence[np.ndarray],
    folder: str | os.PathLike[str],
    *,
    minutes: float,
    seed: int = 0,
    samples: Sequence[tuple[str, np.ndarray]] = (),
    config: VocoderConfig | None = None,
    max_steps: int | None = None,
    progress: bool = True,
) -> TrainedVocoder:
    """Train on ``clips`` (float, at ``config.sample_rate``) for about ``minutes`` into
    ``folder``; or reuse the vocoder there when it was trained with the same settings; or
    resume an unfinished run. ``samples`` (name, clip): held-out clips to resynthesize into
    ``folder/samples`` once trained. ``max_steps`` also ends the run after that many steps,
    the schedule then following whichever of time and steps is further along: a recipe
    that does not depend on the machine's speed (tests, benches)."""
    config = config or VocoderConfig()
    folder = Path(folder)
    key = settings_key(clips, config, seed, minutes, max_steps)
    done = folder / VOCODER_FILE
    if done.is_file():
        trained = read_trained(done)
        if trained.settings == key:
            return TrainedVocoder(**{**trained.__dict__, "reused": True})
    folder.mkdir(parents=True, exist_ok=True)
    # Quiet speech drives the spectral losses' gradients into subnormal floats, which x86
    # CPUs handle ~10x slower (measured: 4.8 s a step instead of 0.5); flushing them to zero
    # changes no result that matters. (Process-wide: this is a build's own process.)
    torch.set_flush_denormal(True)
    torch.manual_seed(seed)
    vocoder = Vocoder(config)
    loss_fn = SpectralLoss(vocoder)
    optimizer = torch.optim.AdamW(vocoder.parameters(), lr=PEAK_LR, betas=(0.8, 0.99))
    sampler = SegmentSampler(clips, round(SEGMENT_SECONDS * config.sample_rate), seed)
    step, elapsed = 0, 0.0
    rows: list[dict[str, float]] = []
    state = folder / STATE_FILE
    if state.is_file() and _state_key(state) == key:
        step, elapsed = _load_state(state, vocoder, optimizer, sampler)
        rows = _read_losses(folder / LOSSES_FILE, step)
    budget = minutes * 60.0
    bar = tqdm(total=round(budget), initial=round(elapsed), desc="neural vocoder",
               unit="s", disable=not progress)  # fmt: skip
    last_save = time.monotonic()
    vocoder.train()
    with bar:
        while elapsed < budget and (max_steps is None or step < max_steps):
            started = time.monotonic()
            lr = learning_rate(max(elapsed / budget, step / (max_steps or math.inf)))
            for group in optimizer.param_groups:
                group["lr"] = lr
            target = sampler.batch(BATCH)
            target_mel = vocoder.mel(target)
            output = vocoder(target_mel, length=target.shape[-1])
            loss, mel_l1, stft = loss_fn(output, target, target_mel)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            nn.utils.clip_grad_norm_(vocoder.parameters(), 1.0)
            optimizer.step()
            step += 1
            spent = time.monotonic() - started
            elapsed += spent
            bar.update(min(int(elapsed), round(budget)) - bar.n)  # whole seconds
            if step % 10 == 0 or step == 1:
                values = (loss.item(), mel_l1.item(), stft.item())
                row = (step, round(elapsed, 2), *values, lr)
                rows.append(dict(zip(_LOSS_COLUMNS, row, strict=True)))
                bar.set_postfix(step=step, mel_l1=f"{values[1]:.3f}")
            if time.monotonic() - last_save >= SAVE_EVERY_SECONDS:
                _save_state(state, key, vocoder, optimizer, sampler, step, elapsed)
                _write_losses(folder / LOSSES_FILE, rows)
                last_save = time.monotonic()
    _write_losses(folder / LOSSES_FILE, rows)
    meta = {
        "config": json.dumps(config.to_dict()),
        "steps": str(step),
        "seconds": f"{elapsed:.1f}",
        "seed": str(seed),
        "minutes": str(minutes),
        "settings": key,
        "training_clips": str(len(clips)),
        "training_seconds": f"{sum(len(c) for c in clips) / config.sample_rate:.1f}",
        "final_mel_l1": f"{rows[-1]['mel_l1']:.4f}" if rows else "",
        "final_stft": f"{rows[-1]['stft']:.4f}" if rows else "",
        "format": "deepfake-audio neural vocoder v1",
    }
    with atomic_output(done) as tmp:
        save_file({k: v.contiguous() for k, v in vocoder.state_dict().items()}, str(tmp), meta)
    state.unlink(missing_ok=True)
    from deepfake_audio.corpus.neural.report import write_report

    write_report(folder, vocoder, rows, samples)
    return TrainedVocoder(done, config, step, elapsed, key)


def read_trained(path: str | os.PathLike[str]) -> TrainedVocoder:
    """A vocoder file's description, from its metadata (no weights read)."""
    with safe_open(str(path), framework="pt") as handle:
        meta = handle.metadata() or {}
    if meta.get("format") != "deepfake-audio neural vocoder v1":
        raise ValueError(f"{path} is not a deepfake-audio neural vocoder")
    return TrainedVocoder(
        Path(path),
        VocoderConfig.from_dict(json.loads(meta["config"])),
        int(meta["steps"]),
        float(meta["seconds"]),
        meta["settings"],
    )


def load_vocoder(path: str | os.PathLike[str]) -> Vocoder:
    """The trained vocoder in ``path`` (safetensors: nothing is unpickled), in eval mode."""
    vocoder = Vocoder(read_trained(path).config)
    vocoder.load_state_dict(load_file(str(path)))
    return vocoder.eval()


def _state_key(path: Path) -> str | None:
    try:
        with safe_open(str(path), framework="pt") as handle:
            return (handle.metadata() or {}).get("settings")
    except Exception:  # a torn or foreign file: start again rather than fail
        return None


def _save_state(
    path: Path,
    key: str,
    vocoder: Vocoder,
    optimizer: torch.optim.Optimizer,
    sampler: SegmentSampler,
    step: int,
    elapsed: float,
) -> None:
    tensors = {f"model.{k}": v.contiguous() for k, v in vocoder.state_dict().items()}
    names = {id(p): n for n, p in vocoder.named_parameters()}
    for group in optimizer.param_groups:
        for parameter in group["params"]:
            for slot, value in optimizer.state.get(parameter, {}).items():
                tensors[f"optim.{names[id(parameter)]}.{slot}"] = torch.as_tensor(value).clone()
    tensors["sampler.generator"] = sampler.generator.get_state()
    meta = {"settings": key, "step": str(step), "elapsed": f"{elapsed:.3f}"}
    with atomic_output(path) as tmp:
        save_file(tensors, str(tmp), meta)


def _load_state(
    path: Path, vocoder: Vocoder, optimizer: torch.optim.Optimizer, sampler: SegmentSampler
) -> tuple[int, float]:
    tensors = load_file(str(path))
    with safe_open(str(path), framework="pt") as handle:
        meta = handle.metadata() or {}
    vocoder.load_state_dict({k[6:]: v for k, v in tensors.items() if k.startswith("model.")})
    for name, parameter in vocoder.named_parameters():
        slots = {
            key.rsplit(".", 1)[1]: value
            for key, value in tensors.items()
            if key.startswith(f"optim.{name}.") and key.count(".") == name.count(".") + 2
        }
        if slots:
            optimizer.state[parameter] = slots
    sampler.generator.set_state(tensors["sampler.generator"])
    return int(meta["step"]), float(meta["elapsed"])


def _write_losses(path: Path, rows: Sequence[dict[str, float]]) -> None:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=_LOSS_COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    write_text_atomic(path, buffer.getvalue())


def _read_losses(path: Path, up_to_step: int) -> list[dict[str, float]]:
    if not path.is_file():
        return []
    with path.open(newline="", encoding="utf-8") as handle:
        rows = [{k: float(v) for k, v in row.items()} for row in csv.DictReader(handle)]
    return [row for row in rows if row["step"] <= up_to_step]
