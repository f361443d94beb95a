"""What a chaos run writes into ``--report DIR``: a JSON record per run, a Markdown table, one plot.

``runs.jsonl``: every `Verdict`, one JSON object a line. ``report.md``: per scenario and
broker, the runs passed and failed (with the first reason of each failure), recovery
time, peak RSS and records in and out. ``report.svg``: recovery time per run, per
scenario (no plotting library: a few SVG bars).
"""

from __future__ import annotations

from pathlib import Path

import orjson

from chaos.suite import Verdict


def write(verdicts: list[Verdict], into: Path) -> None:
    into.mkdir(parents=True, exist_ok=True)
    (into / "runs.jsonl").write_bytes(b"".join(orjson.dumps(v.as_dict()) + b"\n" for v in verdicts))
    (into / "report.md").write_text(markdown(verdicts))
    (into / "report.svg").write_text(svg(verdicts))


def markdown(verdicts: list[Verdict]) -> str:
    rows = [
        "| scenario | broker | runs | passed | failed (first reason) | recovery s (max) | peak RSS MiB "
        "| records in | out |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    groups: dict[tuple[str, str], list[Verdict]] = {}
    for v in verdicts:
        groups.setdefault((v.scenario, v.broker), []).append(v)
    for (name, broker), runs in groups.items():
        failed = [v for v in runs if not v.passed]
        reason = f"{len(failed)}: {failed[0].problems[0][:80]}" if failed else "0"
        if all(v.skipped for v in runs):
            reason = f"skipped: {runs[0].skipped}"
        recovery = [v.recovery_s for v in runs if v.recovery_s is not None]
        rss = [v.peak_rss_kib for v in runs if v.peak_rss_kib is not None]
        recovery_text = f"{max(recovery):.2f}" if recovery else "-"
        rss_text = f"{max(rss) / 1024:.0f}" if rss else "-"
        records = f"{sum(v.records_in for v in runs):,} | {sum(v.records_out for v in runs):,}"
        rows.append(
            f"| {name} | {broker} | {len(runs)} | {len(runs) - len(failed)} | {reason} "
            f"| {recovery_text} | {rss_text} | {records} |"
        )
    return "\n".join(rows) + "\n"


def svg(verdicts: list[Verdict]) -> str:
    """Recovery time of each run that measured one, a bar each, grouped by scenario."""
    measured = [v for v in verdicts if v.recovery_s is not None]
    top = max((v.recovery_s or 0.0 for v in measured), default=1.0) or 1.0
    width, bar = 760, 18
    height = 30 + bar * len(measured)
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" font-family="sans-serif">']
    parts.append('<text x="4" y="14">recovery time per run (s)</text>')
    for i, v in enumerate(measured):
        y = 24 + i * bar
        length = (width - 260) * (v.recovery_s or 0.0) / top
        colour = "#3b6fd8" if v.passed else "#b3261e"
        parts.append(f'<text x="4" y="{y + 12}">{v.scenario} {v.broker} #{v.run}</text>')
        parts.append(f'<rect x="200" y="{y}" width="{length:.1f}" height="{bar - 4}" fill="{colour}"/>')
        parts.append(f'<text x="{204 + length:.1f}" y="{y + 12}">{v.recovery_s:.2f}</text>')
    parts.append("</svg>")
    return "\n".join(parts) + "\n"
