"""What a model's stored calibration is worth on its run's test split: Cllr and actDCF with
the calibration and without it.

Runs ``deepfake-audio evaluate --run RUN`` (fresh process, into a temporary folder unless
``--output-dir`` is given), then reads its ``scores.csv`` and ``metrics.json``. Each
checkpoint stores ``llr = scale * logit(raw) + offset``, fitted on validation; inverting it
gives the raw log-odds, which are scored as if they were the llr (the identity calibration).
Printed for both: Cllr and minCllr (bits), actDCF and minDCF at ASVspoof 5's operating
point, with the metrics of ``deepfake_audio.metrics`` that ``evaluate`` uses. The "min"
figures measure ranking alone and do not change with the calibration; the gap to them is what
miscalibration costs.

    python bench/bench_calibration.py --run demo/run          # after `make demo`
"""

from __future__ import annotations

import argparse
import csv
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

from deepfake_audio.data.records import FAKE, REAL
from deepfake_audio.metrics import act_dcf, cllr, min_cllr, min_dcf


def evaluate(run: str, out: Path) -> None:
    script = Path(sys.executable).with_name("deepfake-audio")
    cli = [str(script)] if script.exists() else [sys.executable, "-m", "deepfake_audio"]
    command = [*cli, "evaluate", "--run", run, "--output-dir", str(out), "--no-progress"]
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed:\n{done.stderr[-3000:]}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--run", default="demo/run", help="a training run (default demo/run)")
    parser.add_argument("--output-dir", type=Path, help="keep evaluate's outputs here")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-calibration-") as tmp:
        out = args.output_dir or Path(tmp)
        evaluate(args.run, out)
        metrics = json.loads((out / "metrics.json").read_text(encoding="utf-8"))
        with open(out / "scores.csv", newline="", encoding="utf-8") as handle:
            rows = list(csv.DictReader(handle))
    name = metrics["deciding_model"]
    calibration = metrics["models"][name]["calibration"]
    scale, offset = float(calibration["scale"]), float(calibration["offset"])
    labels = np.array([FAKE if r["label"] == "fake" else REAL for r in rows])
    llr = np.array([float(r[f"{name}_llr"]) for r in rows])
    raw = (llr - offset) / scale
    fakes, reals = int(np.sum(labels == FAKE)), int(np.sum(labels == REAL))
    print(
        f"{args.run}: model {name}, {fakes} fake and {reals} real test files; stored "
        f"calibration llr = {scale:.4g} x logit(raw) {offset:+.4g}\n"
    )
    print("| scores taken as the llr | Cllr, bits | minCllr | actDCF | minDCF |")
    print("|---|---:|---:|---:|---:|")
    for label, values in (("calibrated (as stored)", llr), ("raw log-odds (identity)", raw)):
        print(
            f"| {label} | {cllr(labels, values):.3f} | {min_cllr(labels, values):.3f} | "
            f"{act_dcf(labels, values):.3f} | {min_dcf(labels, values):.3f} |"
        )
    reported = metrics["models"][name].get("overall", {})
    if "cllr" in reported:
        print(
            f"\n(evaluate's metrics.json: Cllr {reported['cllr']:.3f}, actDCF "
            f"{reported['act_dcf']:.3f}; the first row must match it)"
        )


if __name__ == "__main__":
    main()
