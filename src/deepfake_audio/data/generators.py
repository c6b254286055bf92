"""Leaving generators out of training: ``--exclude-generators G1,G2``.

A leave-one-generator-out bench trains a model that never saw generator G and tests it on G:
the fakes of the excluded generators are removed from the training and validation splits and
kept in the test split. Real clips are never removed, nor fakes whose generator is unknown.

Names match a fake's ``generator`` exactly (case-sensitive, as the layout or metadata.csv
spells it). Generators come from ``fake/<generator>/`` folders in a folder tree, a
``generator`` column of ``ROOT/metadata.csv`` or of a CSV manifest, the attack id of an
ASVspoof protocol, or the ``generator`` field of a JSONL manifest.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

from deepfake_audio.data.records import FAKE, TEST, TRAIN, VALIDATION, ClipRecord

#: The splits the excluded generators' fakes are removed from.
EXCLUDED_FROM = (TRAIN, VALIDATION)

HOW_TO_NAME_GENERATORS = (
    "put each generator's fakes in its own folder below the label folder "
    "(ROOT/<type>/<split>/fake/<generator>/x.wav), or add a generator column to "
    "ROOT/metadata.csv (columns path,generator; paths relative to ROOT) or to a CSV manifest"
)


def fake_generators(records: Sequence[ClipRecord]) -> Counter[str]:
    """How many fakes each named generator has (fakes without a generator are not counted)."""
    return Counter(r.generator for r in records if r.label == FAKE and r.generator is not None)


def check_generators(records: Sequence[ClipRecord], names: Sequence[str]) -> None:
    """Raise ValueError unless every name in ``names`` is the generator of some fake in
    ``records``; the message lists the generators the data has, or says how to name them."""
    if not names:
        return
    known = fake_generators(records)
    if not known:
        raise ValueError(
            f"--exclude-generators {','.join(names)}: no fake in this data has a generator "
            f"name (the layout gives none): {HOW_TO_NAME_GENERATORS}"
        )
    unknown = [name for name in names if name not in known]
    if not unknown:
        return
    hints = []
    for name in unknown:
        alike = sorted(g for g in known if g.lower() == name.lower())
        if alike:
            hints.append(f"{name!r} -> {alike[0]!r}")
    hint = f" (names are case-sensitive: {', '.join(hints)}?)" if hints else ""
    has = ", ".join(f"{g} ({n} fakes)" for g, n in sorted(known.items()))
    raise ValueError(
        f"--exclude-generators: unknown generator(s) {unknown}{hint}; the data's fakes have: {has}"
    )


def exclude_generators(
    records: Sequence[ClipRecord], names: Sequence[str]
) -> tuple[list[ClipRecord], dict]:
    """``records`` without the fakes of generators ``names`` in the training and validation
    splits, and the report of what was removed.

    The report: ``generators`` (the names), ``removed`` (``{split: {generator: n}}`` for
    train and validation, zeros included), ``removed_total``, ``kept_in_test``
    (``{generator: n}``) and ``fakes_without_generator`` (never removed).
    """
    wanted = set(names)
    kept: list[ClipRecord] = []
    removed: dict[str, Counter[str]] = {split: Counter() for split in EXCLUDED_FROM}
    in_test: Counter[str] = Counter()
    for record in records:
        generator = record.generator if record.label == FAKE else None
        if generator in wanted and record.split in removed:
            removed[str(record.split)][str(generator)] += 1
            continue
        if generator in wanted and record.split == TEST:
            in_test[str(generator)] += 1
        kept.append(record)
    report = {
        "generators": list(names),
        "removed": {
            split: {name: counts[name] for name in names} for split, counts in removed.items()
        },
        "removed_total": sum(sum(counts.values()) for counts in removed.values()),
        "kept_in_test": {name: in_test[name] for name in names},
        "fakes_without_generator": sum(
            1 for r in records if r.label == FAKE and r.generator is None
        ),
    }
    return kept, report
