"""Leave-one-generator-out: how a recipe copes with a generator it has never heard.

For each fake generator G of the corpus, one model is trained with
``--exclude-generators G`` (G's fakes leave training and validation, stay in test) and
evaluated on the test split; one more is trained on every generator. From each test
``scores.csv`` (every fake of a generator against every real test clip):

* **unseen**: the EER on G's fakes of the model that never heard G;
* **seen**: the EER on G's fakes of the model trained on every generator (the same test
  clips; the gap between the two is what not having heard G costs);
* **others**: the EER on the other generators' fakes (pooled) of the model without G.

``--model panel`` trains the recommended panel instead (``train --recipe panel`` within
``--budget-minutes``): its table then has one more block, the unseen-generator EER of the
panel and of each of its members, read from the same ``scores.csv`` (the members' own
columns), so the panel is compared with its members on exactly the same clips.

Every row is made by the commands a user types (``train``, ``evaluate``), in fresh
processes; a finished run in ``--workdir`` is reused, so the bench can be stopped and
started again.

    python bench/bench_generalisation.py --data demo-neural/corpus --model seed_cnn
    python bench/bench_generalisation.py --data demo-neural/corpus --model lcnn_lfcc \\
        --augment rawboost,codec --epochs 4 --workdir runs/logo
    python bench/bench_generalisation.py --data demo-neural/corpus --model panel \\
        --budget-minutes 10
"""

from __future__ import annotations

import argparse
import csv
import math
import sys
import time
from pathlib import Path

import numpy as np

_ROOT = Path(__file__).resolve().parent.parent
if str(_ROOT / "src") not in sys.path:
    sys.path.insert(0, str(_ROOT / "src"))

from _proc import command  # noqa: E402

from deepfake_audio.metrics import equal_error_rate  # noqa: E402

FINAL = "fake_or_real_classifier.safetensors"
ALL = "(none)"


def generators_of(data: Path) -> list[str]:
    """The corpus's fake generators, from its metadata.csv or its fake/<generator>/ folders."""
    metadata = data / "metadata.csv"
    if metadata.is_file():
        with metadata.open(newline="", encoding="utf-8") as handle:
            rows = csv.DictReader(handle)
            return sorted({r["generator"] for r in rows if r.get("label") == "fake"})
    return sorted({p.parent.name for p in data.glob("*/*/fake/*/*") if p.is_file()})


def trained(run: Path, args: argparse.Namespace, held_out: str | None) -> float:
    """Train (or reuse) the run without ``held_out``; its training seconds (0 if reused)."""
    if (run / FINAL).is_file():
        return 0.0
    options = [
        "train",
        "--data-root",
        str(args.data),
        "--output-dir",
        str(run),
        "--epochs",
        str(args.epochs),
        "--seed",
        str(args.seed),
        "--no-progress",
    ]
    if args.model == "panel":
        options += ["--recipe", "panel", "--budget-minutes", str(args.budget_minutes)]
        if (run / "panel.json").is_file():
            return 0.0
    else:
        options += ["--model", args.model]  # fmt: skip
    if args.augment:
        options += ["--augment", args.augment]
    if held_out:
        options += ["--exclude-generators", held_out]
    return command(*options)


def test_scores(run: Path) -> list[dict[str, str]]:
    evaluation = run / "evaluation"
    if not (evaluation / "scores.csv").is_file():
        command("evaluate", "--run", str(run), "--output-dir", str(evaluation), "--no-progress")
    with (evaluation / "scores.csv").open(newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def eer(rows: list[dict[str, str]], fakes_of: set[str], column: str = "p_fake") -> float:
    """EER of the fakes of ``fakes_of`` against every real clip, scored by ``column``."""
    chosen = [r for r in rows if r["label"] == "real" or r["generator"] in fakes_of]
    labels = np.array([0 if r["label"] == "fake" else 1 for r in chosen])
    if labels.min(initial=1) == labels.max(initial=0):
        return math.nan
    return equal_error_rate(labels, np.array([float(r[column]) for r in chosen]))[0]


def model_columns(rows: list[dict[str, str]]) -> dict[str, str]:
    """A panel's scores.csv: each scored model (members, panel) -> its P(fake) column."""
    columns = [c for c in rows[0] if c.endswith("_p_fake") and c != "ensemble_p_fake"]
    return {c.removesuffix("_p_fake"): c for c in columns}


def pct(value: float) -> str:
    return "-" if math.isnan(value) else f"{100 * value:.1f} %"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, required=True, help="corpus root (FoR layout)")
    parser.add_argument("--model", default="seed_cnn")
    parser.add_argument("--augment", help="e.g. rawboost,codec (default: off)")
    parser.add_argument("--epochs", type=int, default=6, help="most epochs per model")
    parser.add_argument(
        "--budget-minutes", type=float, default=10.0, help="with --model panel (default 10)"
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--generators", help="G1,G2: hold out only these (default: every one)")
    parser.add_argument("--workdir", type=Path, default=Path("runs/generalisation"))
    args = parser.parse_args()

    generators = generators_of(args.data)
    held = args.generators.split(",") if args.generators else generators
    recipe = f"{args.model}{'+' + args.augment.replace(',', '+') if args.augment else ''}"
    base = args.workdir / recipe
    started = time.perf_counter()
    seconds = trained(base / "all", args, None)
    seen = test_scores(base / "all")
    print(f"{recipe}, {args.epochs} epochs, seed {args.seed}; corpus {args.data}")
    print(f"trained on every generator: pooled test EER {pct(eer(seen, set(generators)))}"
          f"{f' ({seconds:.0f} s)' if seconds else ' (reused)'}")  # fmt: skip
    print()
    print("| generator held out | EER on it, unseen | EER on it, seen | EER on the others |")
    print("|---|---:|---:|---:|")
    for generator in held:
        run = base / f"without-{generator}"
        trained(run, args, generator)
        rows = test_scores(run)
        others = set(generators) - {generator}
        print(
            f"| {generator} | {pct(eer(rows, {generator}))} | {pct(eer(seen, {generator}))} "
            f"| {pct(eer(rows, others))} |",
            flush=True,
        )
    if args.model == "panel":
        models = model_columns(seen)
        print("\nEER on the held-out generator, unseen, by model of the panel run:")
        print("| generator held out | " + " | ".join(models) + " |")
        print("|---|" + "---:|" * len(models))
        for generator in held:
            rows = test_scores(base / f"without-{generator}")
            cells = [pct(eer(rows, {generator}, column)) for column in models.values()]
            print(f"| {generator} | " + " | ".join(cells) + " |")
    print(f"\n{time.perf_counter() - started:.0f} s in all; runs in {base}")


if __name__ == "__main__":
    main()
