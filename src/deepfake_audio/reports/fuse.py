"""Fit a score fusion on a ScoreTable of labelled validation files (``deepfake-audio fuse``).

The table comes from the one scoring path, so the fusion is fitted on exactly the scores
evaluate, compare and predict will later feed it; the scoring rule (aggregation and hop) is
stored with it, so those commands can warn when they score another way.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from deepfake_audio.scoring.fusion import Fusion, fit_fusion
from deepfake_audio.scoring.table import ScoreTable


def fit_on_table(
    table: ScoreTable,
    *,
    regularization: float = 1.0,
    fitted: dict[str, Any] | None = None,
) -> Fusion:
    """A fusion of the table's detectors, fitted on its readable, labelled files.

    ``fitted`` describes the data (root, splits...) and is stored with the fusion.
    """
    records = table.records
    if not records:
        raise ValueError("no readable file to fit the fusion on")
    if any(r.label is None for r in records):
        raise ValueError("a fusion is fitted on labelled files only")
    names = table.lineup.names
    paths = [table.lineup.sources[n] for n in names]
    if not all(paths):
        raise ValueError("every fused model needs its checkpoint file: a fusion names its files")
    return fit_fusion(
        table.labels(),
        np.column_stack([table.raw[n] for n in names]),
        names=names,
        paths=paths,
        regularization=regularization,
        fitted={
            **(fitted or {}),
            "aggregate": table.options.aggregation,
            "hop_seconds": table.options.hop_seconds,
            "unreadable": len(table.unreadable),
        },
    )
