"""The end-of-run report (report.md in the run directory): reward and accuracy per step,
critic parse and abstain rates, flagged-step rate, time per stage and peak memory, and links
to the metric plots it writes under ``plots/`` (PNG, the inspector's metrics page draws the
same ones; ``capo-ray-inspect RUN_DIR`` adds the per-response credit pages)."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

log = logging.getLogger("capo_ray")

STAGES = ("rollout", "verify", "critic", "credit", "reference", "learner", "sync", "driver_other")
_COLUMNS = (
    ("step", "step", "{:.0f}"),
    ("accuracy", "outcome/accuracy", "{:.3f}"),
    ("mean token reward", "credit/mean_token_reward", "{:.3f}"),
    ("flagged resp.", "critic/flagged_response_rate", "{:.3f}"),
    ("parse rate", "critic/parse_rate", "{:.3f}"),
    ("abstain rate", "critic/abstain_rate", "{:.3f}"),
    ("kl", "learner/kl", "{:.4f}"),
    ("step s", "time/step", "{:.1f}"),
)


def _fmt(row: dict[str, Any], key: str, fmt: str) -> str:
    return fmt.format(row[key]) if key in row else "-"


def write_report(run_dir: Path, history: list[dict[str, Any]], title: str, plots: bool = True) -> Path:
    lines = [f"# {title}", "", f"Run directory: `{run_dir}`", ""]
    lines += ["## Per step", ""]
    lines.append("| " + " | ".join(name for name, _, _ in _COLUMNS) + " |")
    lines.append("|" + "---|" * len(_COLUMNS))
    for row in history:
        lines.append("| " + " | ".join(_fmt(row, key, fmt) for _, key, fmt in _COLUMNS) + " |")
    if history:
        n = len(history)
        lines += ["", "## Time per stage (mean seconds per step)", ""]
        lines += ["| stage | seconds | share |", "|---|---|---|"]
        total = sum(r.get("time/step", 0.0) for r in history) / n
        for stage in STAGES:
            sec = sum(r.get(f"time/{stage}", 0.0) for r in history) / n
            lines.append(f"| {stage} | {sec:.2f} | {sec / total if total else 0:.1%} |")
        flagged = sum(r.get("critic/flagged_step_rate", 0.0) for r in history) / n
        peak = max(r.get("memory/peak_rss_gib", 0.0) for r in history)
        lines += [
            "",
            "## Summary",
            "",
            f"- steps: {n}",
            f"- accuracy: first {history[0].get('outcome/accuracy', 0):.3f}, last {history[-1].get('outcome/accuracy', 0):.3f}",
            f"- flagged-step rate (mean): {flagged:.3f}",
            f"- judge tokens per policy token (mean): "
            f"{sum(r.get('critic/judge_tokens_per_policy_token', 0.0) for r in history) / n:.2f}",
            f"- peak memory (largest process): {peak:.2f} GiB",
        ]
    if plots:
        lines += _plot_section(run_dir, history)
    path = run_dir / "report.md"
    path.write_text("\n".join(lines) + "\n")
    return path


def _plot_section(run_dir: Path, history: list[dict[str, Any]]) -> list[str]:
    if not history:
        return []
    try:
        from capo_ray.inspect.plots import write_plots

        written = write_plots(history, run_dir / "plots")
    except Exception as err:  # noqa: BLE001 - a plotting problem must not lose the report
        log.warning("plots not written: %s: %s", type(err).__name__, err)
        return ["", "## Plots", "", f"(not written: {type(err).__name__}: {err})"]
    lines = ["", "## Plots", "", f"Per-response credit pages: `capo-ray-inspect {run_dir}`.", ""]
    for title, path in written:
        lines.append(f"![{title}]({path.relative_to(run_dir).as_posix()})")
    return lines
