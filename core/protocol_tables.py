"""The "others" protocol's command-line side, shared by the two CLIs that run it (the web side's for the fast
model, the worker's for LoRA and the encoder; neither may import the other): the `--language-power` list and the
Markdown tables of a run and of paired comparisons."""

import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from core.crossval import METRICS, paired_difference


def _cell(scores_: dict[str, Any], metric: str) -> str:
    low, high = scores_[f"{metric}_ci95"]
    return f"{scores_[metric]:.3f} [{low:.2f}, {high:.2f}]"


def format_protocol_table(name: str, report: dict[str, Any]) -> str:
    """Markdown: the pooled other-language scores with intervals, then one row per language."""
    pooled, folds = report["pooled"], report["folds"]
    lines = [
        f"| {name} | n | 4-class [95%] | topic [95%] | stance [95%] |",
        "| --- | ---: | ---: | ---: | ---: |",
        f"| **other ten** | {pooled['n']} | "
        + " | ".join(_cell(pooled, metric) for metric in METRICS)
        + " |",
    ]
    for language, row in report["languages"].items():
        lines.append(f"| {language} | {row['n']} | " + " | ".join(_cell(row, m) for m in METRICS) + " |")
    lines.append(
        f"\nFolds (k={folds['k']}): "
        + ", ".join(f"{m} {folds['mean'][m]:.3f} +- {folds['sd'][m]:.3f} (sd)" for m in METRICS)
    )
    return "\n".join(lines)


def compare_runs(names: Sequence[str], reports: Sequence[dict[str, Any]]) -> str:
    """Markdown: each run after the first against the first, on the same posts (paired_difference)."""
    if len(reports) < 2:
        return ""
    base = reports[0]["posts"]
    lines = [
        f"| against {names[0]} | 4-class [95%] | topic [95%] | stance [95%] |",
        "| --- | ---: | ---: | ---: |",
    ]
    for name, report in zip(names[1:], reports[1:], strict=True):
        posts = report["posts"]
        if posts["gold"] != base["gold"]:
            raise ValueError("runs evaluated on different posts cannot be compared pairwise")
        difference = paired_difference(base["gold"], base["predicted"], posts["predicted"])
        cells = [
            f"{d['difference']:+.3f} [{d['ci95'][0]:+.2f}, {d['ci95'][1]:+.2f}]"
            for d in (difference[m] for m in METRICS)
        ]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def parse_powers(text: str | None, default: float) -> list[float]:
    """`--language-power 0,0.5,1`: the values to run (the default alone when not given)."""
    if not text:
        return [default]
    try:
        powers = [float(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise ValueError(
            f"--language-power takes numbers separated by commas, such as 0,0.5,1; got '{text}'"
        ) from None
    if not powers or any(p < 0 for p in powers):
        raise ValueError(f"--language-power takes numbers of 0 or more; got '{text}'")
    return powers


def compare_powers(
    model: str,
    powers: Sequence[float],
    run: Callable[[float], dict[str, Any]],
    log: Callable[[str], None],
    out: Path | None,
) -> list[dict[str, Any]]:
    """One protocol run per language power: each run's table as it ends (and the JSON so far in `out`), then the
    paired comparison of every run with the first."""
    reports: list[dict[str, Any]] = []
    for power in powers:
        reports.append(run(power))
        log(format_protocol_table(f"{model}, language power {power:g}", reports[-1]))
        if out is not None:
            results = dict(zip(map(str, powers), reports, strict=False))
            out.write_text(json.dumps(results, indent=2), encoding="utf-8")
    if len(reports) > 1:
        log(compare_runs([f"language power {p:g}" for p in powers], reports))
    if out is not None:
        log(f"Results written to {out}.")
    return reports
