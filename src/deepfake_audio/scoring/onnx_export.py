"""Detectors as ONNX files: exported once, checked against torch, and self-describing.

:func:`export_onnx` writes a detector as an ONNX model that takes ``(batch, window_samples)``
float32 windows, each normalised as its preprocessing says, and returns ``(batch,)``
probabilities of fake (the softmax of :func:`~deepfake_audio.scoring.inference.fake_probability`
is inside the graph), so a deployer needs onnxruntime and nothing of ours. Everything needed to
feed it, and to read its output as our commands do (rate, window, hop, normalisation,
threshold, calibration, source checkpoint), is in the model's ``metadata_props``
(:func:`read_onnx_metadata`).

The exporter is torch's dynamo-based one (``torch.onnx.export(dynamo=True)``): it exports
every registered architecture, where the older TorchScript exporter (``dynamo=False``) fails
on LFCC-LCNN's complex ``torch.stft``. Before anything is written, onnxruntime runs the
exported graph on probe windows (noise, tones, a chirp; batches of several windows and of one,
so a batch size frozen into the graph is caught) and must agree with torch within
:data:`TOLERANCE` on every window.

:class:`OnnxRunner` is the engine's side: an onnxruntime session that scores windows as
:func:`~deepfake_audio.scoring.inference.score_windows` does (see
:mod:`deepfake_audio.scoring.backends`). onnx, onnxscript and onnxruntime are the ``onnx``
extra, imported only when used.
"""

from __future__ import annotations

import contextlib
import copy
import hashlib
import json
import logging
import os
import time
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from deepfake_audio import __version__
from deepfake_audio.checkpoints import Detector
from deepfake_audio.fileio import atomic_output, decode_json_values
from deepfake_audio.preprocess import PreprocessConfig, normalize
from deepfake_audio.scoring.inference import fake_probability
from deepfake_audio.scoring.options import ONNX_INSTALL_HINT, onnx_missing

FORMAT = "deepfake-audio-onnx/1"
INPUT, OUTPUT = "audio", "p_fake"
#: Largest |P(fake) from onnxruntime - P(fake) from torch| on any probe window for an export
#: to count as the same model (float32 kernels differ in summation order: 1e-6 is typical).
TOLERANCE = 0.01
EXPORTER = "torch.onnx.export(dynamo=True)"
#: Windows the export is checked on.
PROBE_WINDOWS = 6

log = logging.getLogger(__name__)


class OnnxError(ValueError):
    """A model cannot be exported to ONNX, its export disagrees with torch, or an ONNX file is
    not a deepfake-audio export (the message names the file and says why)."""


class OnnxUnavailableError(OnnxError):
    """onnx, onnxscript or onnxruntime is not installed."""


def require_onnx(purpose: str) -> None:
    """Raise :class:`OnnxUnavailableError` (with the pip command) unless the ONNX stack is
    installed; ``purpose`` says what needed it."""
    missing = onnx_missing()
    if missing:
        raise OnnxUnavailableError(f"{purpose} needs {', '.join(missing)}: {ONNX_INSTALL_HINT}")


@dataclass(frozen=True)
class ExportReport:
    """What :func:`export_onnx` wrote and how well the export agrees with torch."""

    path: Path
    model: str  # architecture
    source: str  # the checkpoint file, or the detector's name when it has none
    source_sha1: str
    window_samples: int
    sample_rate: int
    exporter: str
    opset: int
    seconds: float  # export and check
    max_delta: float  # max |P(fake) onnxruntime - torch| over the probe windows
    probe_windows: int
    size_bytes: int

    def describe(self) -> str:
        """One line for people."""
        return (
            f"wrote {self.path}: {self.model} ({self.window_samples} samples at "
            f"{self.sample_rate} Hz, any batch), {self.size_bytes / 1e6:.1f} MB, ONNX opset "
            f"{self.opset}, in {self.seconds:.1f} s; onnxruntime agrees with torch within "
            f"{self.max_delta:.1e} P(fake) on {self.probe_windows} probe windows"
        )


class FakeProbability(nn.Module):
    """A detector whose output is P(fake) per window: what the ONNX graph computes."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, audio: torch.Tensor) -> torch.Tensor:
        # (batch, samples) -> (batch, 2) logits -> (batch,) P(fake)
        return fake_probability(self.model(audio))


def detector_sha1(detector: Detector) -> str:
    """SHA-1 of the detector's checkpoint file, or of its weights and metadata when it was
    not loaded from one: what names its export and its backend decision in the cache."""
    if detector.path is not None and Path(detector.path).is_file():
        with open(detector.path, "rb") as handle:
            return hashlib.file_digest(handle, "sha1").hexdigest()
    digest = hashlib.sha1(detector.model_name.encode())
    digest.update(json.dumps(detector.preprocess.to_dict(), sort_keys=True).encode())
    for key, value in sorted(detector.model.state_dict().items()):
        digest.update(key.encode())
        digest.update(value.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()


def probe_windows(
    preprocess: PreprocessConfig, count: int = PROBE_WINDOWS, seed: int = 0
) -> np.ndarray:
    """``(count, window_samples)`` float32 windows that exercise a model as audio does: white
    noise, pure and harmonic tones, a chirp and a tone in noise, at levels from 0 to -30 dB,
    each normalised as ``preprocess`` says. Deterministic, so a check is repeatable."""
    rng = np.random.default_rng(seed)
    samples, rate = preprocess.window_samples, preprocess.sample_rate
    t = np.arange(samples) / rate
    nyquist = rate / 2
    windows = []
    for k in range(count):
        freq = min(0.8 * nyquist, 110.0 * 2 ** (k % 6) * (1 + 0.1 * rng.random()))
        kind = k % 5
        if kind == 0:
            signal = rng.standard_normal(samples)
        elif kind == 1:
            signal = np.sin(2 * np.pi * freq * t + rng.random() * 6)
        elif kind == 2:
            signal = sum(np.sin(2 * np.pi * h * freq * t) / h for h in range(1, 6))
        elif kind == 3:  # 100 Hz up to 0.8 of Nyquist over the window
            span = max(t[-1], 1e-9) if samples > 1 else 1.0
            top = 0.8 * nyquist
            signal = np.sin(2 * np.pi * (100 * t + (top - 100) * t**2 / (2 * span)))
        else:
            signal = np.sin(2 * np.pi * freq * t) + 0.2 * rng.standard_normal(samples)
        level = 10 ** (-rng.uniform(0, 30) / 20)
        window, _ = normalize((0.5 * level * signal).astype(np.float32), preprocess.normalization)
        windows.append(window)
    return np.stack(windows).astype(np.float32, copy=False)


def onnx_metadata(detector: Detector, source_sha1: str) -> dict[str, str]:
    """The ``metadata_props`` of a detector's export: everything a deployer needs to cut,
    normalise and judge windows as our commands do. Values are strings; the structured ones
    (preprocess, calibration, scoring rule) are JSON."""
    pre = detector.preprocess
    rule = detector.stored_rule
    hop = None if rule is None else rule.get("hop_seconds")
    return {
        "format": FORMAT,
        "model": detector.model_name,
        "name": detector.name,
        "input": f"{INPUT}: (batch, window_samples) float32, one normalised window a row",
        "output": f"{OUTPUT}: (batch,) float32, probability that the window is fake",
        "sample_rate": str(pre.sample_rate),
        "window_samples": str(pre.window_samples),
        "window_seconds": repr(pre.window_seconds),
        # Validation's hop (the window, no overlap, unless the stored rule says otherwise).
        "hop_samples": str(pre.window_samples if hop is None else round(hop * pre.sample_rate)),
        "normalization": pre.normalization,
        "trim_silence": json.dumps(pre.trim_silence),
        "preprocess": json.dumps(pre.to_dict()),
        "aggregation": "mean" if rule is None else str(rule.get("aggregation", "mean")),
        "scoring_rule": json.dumps(rule),
        "threshold": repr(float(detector.threshold)),
        "calibration": json.dumps(detector.metadata.get("calibration")),
        "labels": json.dumps(detector.metadata.get("labels")),
        "package_version": __version__,
        "torch_version": torch.__version__,
        "exporter": EXPORTER,
        "source_file": detector.path.name if detector.path else "",
        "source_sha1": source_sha1,
    }


def read_onnx_metadata(path: str | os.PathLike[str]) -> dict[str, Any]:
    """An export's metadata with JSON values decoded (numbers as numbers); :class:`OnnxError`
    when the file is not an ONNX model or not one of ours."""
    require_onnx("reading an ONNX model")
    import onnx

    try:
        proto = onnx.load(str(path), load_external_data=False)
    except Exception as exc:  # protobuf raises several types for a file that is not ONNX
        raise OnnxError(f"{path}: not an ONNX model ({exc})") from exc
    raw = {prop.key: prop.value for prop in proto.metadata_props}
    if raw.get("format") != FORMAT:
        raise OnnxError(f"{path}: not a deepfake-audio ONNX export (format {raw.get('format')!r})")
    return decode_json_values(raw)


@contextlib.contextmanager
def _quiet_exporter() -> Iterator[None]:
    """torch's exporter warns about optional op libraries (torchvision) and its own tracing,
    and its optimiser (onnxscript) logs every pass; none of it is the user's business when
    the export then passes its check."""
    loggers = [logging.getLogger(name) for name in ("torch.onnx", "onnxscript", "onnx_ir")]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        for logger, level in zip(loggers, levels, strict=True):
            logger.setLevel(level)


def _reason(exc: BaseException) -> str:
    """The first informative line of an exporter's (often very long) error."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    text = lines[0] if lines else ""
    return f"{type(exc).__name__}: {text[:300]}"


def export_onnx(
    detector: Detector,
    path: str | os.PathLike[str],
    *,
    tolerance: float = TOLERANCE,
    source_sha1: str | None = None,
) -> ExportReport:
    """Export ``detector`` to ``path`` as ONNX (fixed window, any batch; output P(fake)),
    check it against torch on probe windows, then write it atomically (temp name, rename).

    Raises :class:`OnnxError` naming the model and the reason when the exporter fails (the
    operator it could not translate is in the message) or when onnxruntime's P(fake) differs
    from torch's by more than ``tolerance`` on any probe window; nothing is written then.
    """
    require_onnx("exporting to ONNX")
    source = str(detector.path) if detector.path else detector.name
    sha1 = source_sha1 or detector_sha1(detector)
    model = detector.model
    if any(p.device.type != "cpu" for p in model.parameters()):
        model = copy.deepcopy(model).cpu()  # exported and checked on the CPU
    wrapper = FakeProbability(model)
    was_training = model.training
    wrapper.eval()
    started = time.perf_counter()
    probe = probe_windows(detector.preprocess)
    try:
        with _quiet_exporter():
            # An example batch of 2: a batch of 1 would be specialised into the graph.
            program = torch.onnx.export(
                wrapper,
                (torch.from_numpy(probe[:2]),),
                None,
                input_names=[INPUT],
                output_names=[OUTPUT],
                dynamic_shapes=({0: torch.export.Dim("batch")},),
                dynamo=True,
                optimize=True,
                verify=False,
                verbose=False,
            )
    except Exception as exc:  # the exporter raises many types; all mean "cannot export"
        raise OnnxError(
            f"{source}: model {detector.model_name} cannot be exported to ONNX by "
            f"{EXPORTER} ({_reason(exc)}); score it with --backend torch"
        ) from exc
    finally:
        model.train(was_training)
    proto = program.model_proto
    for key, value in onnx_metadata(detector, sha1).items():
        entry = proto.metadata_props.add()
        entry.key, entry.value = key, value
    proto.doc_string = (
        f"deepfake-audio {detector.model_name} detector: {INPUT} (batch, "
        f"{detector.preprocess.window_samples}) normalised windows at "
        f"{detector.preprocess.sample_rate} Hz -> {OUTPUT} (batch,) probability of fake. "
        "See metadata_props."
    )
    data = proto.SerializeToString()
    delta = check_export(data, wrapper, probe, tolerance=tolerance, source=source)
    with atomic_output(path) as tmp:
        tmp.write_bytes(data)
        tmp.chmod(0o644)
    opset = next((o.version for o in proto.opset_import if o.domain in ("", "ai.onnx")), 0)
    log.info("exported %s to %s (max |delta P(fake)| %.2g)", source, path, delta)
    return ExportReport(
        path=Path(path),
        model=detector.model_name,
        source=source,
        source_sha1=sha1,
        window_samples=detector.preprocess.window_samples,
        sample_rate=detector.preprocess.sample_rate,
        exporter=EXPORTER,
        opset=opset,
        seconds=time.perf_counter() - started,
        max_delta=delta,
        probe_windows=len(probe),
        size_bytes=len(data),
    )


@torch.inference_mode()
def torch_probabilities(wrapper: nn.Module, windows: np.ndarray) -> np.ndarray:
    """P(fake) of each window from torch, on the model's own device."""
    device = next(wrapper.parameters()).device
    batch = torch.from_numpy(np.ascontiguousarray(windows)).to(device)
    return wrapper(batch).float().cpu().numpy()


def check_export(
    model: bytes | str | os.PathLike[str],
    wrapper: nn.Module,
    probe: np.ndarray,
    *,
    tolerance: float = TOLERANCE,
    source: str = "model",
) -> float:
    """The largest |P(fake)| difference between onnxruntime on ``model`` and torch's
    ``wrapper`` over ``probe``, scored as one batch and the first window alone (a batch size
    frozen into the graph fails the second); :class:`OnnxError` above ``tolerance``."""
    wrapper.eval()
    expected = torch_probabilities(wrapper, probe)
    try:
        runner = OnnxRunner(model, threads=torch.get_num_threads())
        got = [runner(probe, len(probe)), runner(probe[:1], 1)]
    except Exception as exc:  # onnxruntime's errors are its own types
        raise OnnxError(
            f"{source}: onnxruntime cannot run the ONNX export ({_reason(exc)}); "
            "score it with --backend torch"
        ) from exc
    deltas = np.abs(np.concatenate([got[0] - expected, got[1] - expected[:1]]))
    delta = float(np.max(deltas)) if np.all(np.isfinite(deltas)) else float("inf")
    if not delta <= tolerance:
        raise OnnxError(
            f"{source}: the ONNX export disagrees with torch: max |delta P(fake)| {delta:.3g} "
            f"on {len(probe)} probe windows, above the tolerance {tolerance:g}; score it "
            "with --backend torch"
        )
    return delta


class OnnxRunner:
    """An onnxruntime session on a detector's export: normalised windows in, P(fake) out.

    CPU only; ``threads`` intra-op threads (default: torch's, so both backends get the same
    cores and one run of them is compared with the other fairly) and none between ops. Runs
    may come from several threads at once (onnxruntime's sessions allow it), as the service's
    workers do.
    """

    def __init__(self, model: bytes | str | os.PathLike[str], threads: int | None = None) -> None:
        require_onnx("--backend onnx")
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads = threads or torch.get_num_threads()
        options.inter_op_num_threads = 1
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.log_severity_level = 3  # errors only: its warnings are about graph fusions
        source = model if isinstance(model, bytes) else str(model)
        self.session = ort.InferenceSession(
            source, sess_options=options, providers=["CPUExecutionProvider"]
        )
        self.input = self.session.get_inputs()[0].name

    def __call__(self, windows: np.ndarray, batch_size: int = 64) -> np.ndarray:
        """P(fake) of each row of ``windows`` ``(n, samples)``, in batches."""
        out = []
        for start in range(0, len(windows), batch_size):
            batch = np.ascontiguousarray(windows[start : start + batch_size], dtype=np.float32)
            out.append(self.session.run(None, {self.input: batch})[0].astype(np.float32))
        return np.concatenate(out) if out else np.zeros(0, dtype=np.float32)


def onnxruntime_version() -> str:
    """The installed onnxruntime's version (part of every cache key: kernels change)."""
    import onnxruntime

    return str(onnxruntime.__version__)
