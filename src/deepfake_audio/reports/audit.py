"""A readable summary of the report made by :func:`deepfake_audio.data.pipeline.prepare`."""

from __future__ import annotations

from deepfake_audio.data.shortcuts import shortcut_warnings
from deepfake_audio.reports.safe import printable


def _table(rows: list[list[str]]) -> list[str]:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return ["  " + "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) for row in rows]


def _counts_table(before: dict, after: dict) -> list[str]:
    rows = [["split", "dataset type", "fake", "real", "fake (balanced)", "real (balanced)"]]
    for split, types in before.items():
        for dataset_type, counts in types.items():
            balanced = after.get(split, {}).get(dataset_type, {"fake": 0, "real": 0})
            rows.append(
                [
                    split,
                    dataset_type,
                    str(counts["fake"]),
                    str(counts["real"]),
                    str(balanced["fake"]),
                    str(balanced["real"]),
                ]
            )
    return _table(rows)


def format_report(report: dict, examples: int = 5) -> str:
    """Counts per type/split/label, leaks by kind with examples, unreadable files, statistics."""
    lines = [f"Dataset: {report['root']} (layout: {report['layout']})"]
    lines.append(f"Files discovered: {report['discovered']}")
    skipped = report["skipped_during_discovery"]
    if skipped:
        lines.append(f"Passed over during discovery: {len(skipped)}")
        lines += [f"  {s['path']}: {s['reason']}" for s in skipped[:examples]]
    unreadable = report["unreadable"]
    lines.append(f"Unreadable files: {len(unreadable)}")
    lines += [f"  {u['path']}: {u['reason']}" for u in unreadable[:examples]]
    if len(unreadable) > examples:
        lines.append(f"  ... and {len(unreadable) - examples} more (see the JSON report)")
    if report["silent"]:
        lines.append(f"Silent files (flagged, kept): {len(report['silent'])}")
        lines += [f"  {p}" for p in report["silent"][:examples]]

    sep = report["separation"]
    lines.append(
        f"Separation ({', '.join(sep['detectors'])}): {sep['leaks']} leak finding(s) between "
        f"splits, {sep['duplicates']} duplicate group(s) inside a split; "
        f"{sep['dropped_records']} file(s) dropped from the evaluation side"
    )
    for detector, counts in sep["by_detector"].items():
        lines.append(f"  {detector}: {counts['leak']} leak(s), {counts['duplicate']} duplicate(s)")
        shown = [f for f in sep["findings"] if f["detector"] == detector][:examples]
        for finding in shown:
            where = " / ".join(finding["splits"])
            lines.append(f"    {finding['kind']} [{where}]: " + "  <->  ".join(finding["paths"]))

    grouping = report.get("grouping", {})
    if grouping:
        lines.append(
            f"Groups kept on one side of a split (by {grouping['by']}): {grouping['groups']}"
        )
        if grouping.get("warning"):
            lines.append(f"  warning: {grouping['warning']}")

    if report.get("excluded_generators"):
        lines.append(_exclusion_line(report["excluded_generators"]))

    bal = report["balance"]
    lines.append(f"Counts per split and dataset type (balance: {bal['mode']}):")
    if bal["before"]:
        lines += _counts_table(bal["before"], bal["after"])
    lines.append("Audio per label:")
    for label, stats in report["audio_statistics"].items():
        d = stats["duration_seconds"]
        rates = ", ".join(f"{rate} Hz: {n}" for rate, n in stats["sample_rates"].items())
        if d["count"]:
            lines.append(
                f"  {label}: {d['count']} files, duration min {d['min']} s / median "
                f"{d['median']} s / max {d['max']} s; rates {rates}"
            )
    lines += _shortcut_lines(report.get("shortcuts", {}))
    lines.append(f"Records after separation and balancing: {report['final_count']}")
    return "\n".join(printable(line) for line in lines)  # a file name cannot forge a line


def _exclusion_line(exclusion: dict) -> str:
    """``--exclude-generators``: how many fakes left training and validation, what test kept."""
    removed = "; ".join(
        f"{split}: " + ", ".join(f"{g} {n}" for g, n in counts.items())
        for split, counts in exclusion["removed"].items()
    )
    kept = ", ".join(f"{g} {n}" for g, n in exclusion["kept_in_test"].items())
    return (
        f"Excluded generators ({', '.join(exclusion['generators'])}): "
        f"{exclusion['removed_total']} fake(s) removed before balancing ({removed}); "
        f"kept in test: {kept}"
    )


def _shortcut_lines(shortcuts: dict) -> list[str]:
    """The shortcut audit: each fact's oriented AUC, flagged ones with their remedy."""
    if not shortcuts:
        return []
    if "skipped" in shortcuts:
        return [f"Shortcut audit: skipped ({shortcuts['skipped']})"]
    lines = [
        f"Shortcut audit (fitted on {shortcuts['fitted_on']}, ROC-AUC on "
        f"{', '.join(shortcuts['evaluated_on'])}; 0.5 = chance, flagged at "
        f">= {shortcuts['threshold']:g}):"
    ]
    rows = [["feature", "AUC", ""]]
    for row in shortcuts["shortcuts"]:
        rows.append([row["feature"], f"{row['auc']:.3f}", "FLAGGED" if row["flagged"] else ""])
    lines += _table(rows)
    lines += ["  " + line for line in shortcut_warnings(shortcuts)]
    return lines
