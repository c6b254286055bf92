"""The built-in AASIST models on the demo corpus: zero-shot, fine-tuned, and from scratch.

One run, four rows, each made by the commands a user types (fresh processes, so start-up is
in the times):

* ``aasist-asvspoof2019`` and ``aasist_l-asvspoof2019`` zero-shot: ``evaluate`` on the demo
  run's test split with the published weights and preprocessing (4.04 s windows, no
  normalisation);
* AASIST-L fine-tuned: ``train --init-from aasist_l-asvspoof2019`` for ``--epochs`` epochs;
* AASIST-L from scratch: ``train --model aasist_l`` with the same epochs, window, batch,
  normalisation and seed (each at its own default learning rate: 1e-4 fine-tuning, 1e-3
  from scratch).

Both trainings use ``--window-seconds`` (1 s by default: the paper's 4 s trains 4-6x slower
on CPU). Every row is evaluated on the same test split, through the same scoring path.

    python bench/bench_pretrained.py                      # after `make demo`
    python bench/bench_pretrained.py --epochs 3 --window-seconds 1 --workdir runs/pretrained
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

from _proc import command, load_average


def evaluate(model: str, split_of: str, out: Path) -> dict:
    seconds = command(
        "evaluate", "--model", model, "--run", split_of, "--output-dir", str(out), "--no-progress"
    )
    document = json.loads((out / "metrics.json").read_text())
    (name,) = document["models"]
    entry = document["models"][name]
    return {"seconds": seconds, **entry}


def pct(value: float | None) -> str:
    return "-" if value is None or math.isnan(value) else f"{100 * value:.1f} %"


def num(value: float | None) -> str:
    return "-" if value is None or math.isnan(value) else f"{value:.3f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", default="demo/corpus", help="corpus (default demo/corpus)")
    parser.add_argument("--split-of", default="demo/run", help="run whose test split to use")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--window-seconds", type=float, default=1.0)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--workdir", default="runs/pretrained")
    args = parser.parse_args()
    work = Path(args.workdir)
    print(f"load average {load_average()}; {args.epochs} epochs, {args.window_seconds:g} s "
          f"windows, batch {args.batch_size}; test split of {args.split_of}")  # fmt: skip
    rows = []
    for name in ("aasist-asvspoof2019", "aasist_l-asvspoof2019"):
        result = evaluate(name, args.split_of, work / f"eval-{name}")
        rows.append((f"`{name}` zero-shot", "-", result))
    common = [
        "--data-root", args.data, "--epochs", str(args.epochs), "--batch-size",
        str(args.batch_size), "--window-seconds", str(args.window_seconds), "--seed", "0",
        "--normalization", "none", "--no-progress",
    ]  # fmt: skip
    runs = {
        "AASIST-L fine-tuned (`--init-from aasist_l-asvspoof2019`)": [
            "--init-from", "aasist_l-asvspoof2019", "--output-dir", str(work / "fine-tuned"),
        ],
        "AASIST-L from scratch (`--model aasist_l`)": [
            "--model", "aasist_l", "--output-dir", str(work / "scratch"),
        ],
    }  # fmt: skip
    for label, extra in runs.items():
        run_dir = Path(extra[extra.index("--output-dir") + 1])
        seconds = command("train", *common, *extra)
        result = evaluate(str(run_dir), args.split_of, work / f"eval-{run_dir.name}")
        rows.append((label, f"{seconds / 60:.1f} min", result))
    generators = sorted({g for _, _, r in rows for g in r["by_generator"]})
    header = ["model", "training", "test EER", "minDCF", "actDCF", "Cllr", "evaluate"]
    header += [f"EER {g}" for g in generators]
    print("| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))
    for label, training, r in rows:
        overall = r["overall"]
        cells = [label, training, pct(overall["eer"]), num(overall["min_dcf"])]
        cells += [num(overall["act_dcf"]), num(overall["cllr"]), f"{r['seconds']:.0f} s"]
        cells += [pct(r["by_generator"].get(g, {}).get("eer")) for g in generators]
        print("| " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
