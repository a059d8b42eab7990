"""Metric plots against training steps, drawn with matplotlib (no display needed): written as
PNG files by the trainer at the end of a run (linked from report.md) and embedded in the
inspector's metrics page."""

from __future__ import annotations

import io
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from capo_ray.driver.report import STAGES


@dataclass(frozen=True)
class Plot:
    name: str  # file stem: plots/<name>.png
    title: str
    ylabel: str
    series: tuple[tuple[str, str], ...]  # (metric key, legend label)


PLOTS = (
    Plot("accuracy", "Outcome accuracy", "fraction correct", (("outcome/accuracy", "accuracy"),)),
    Plot("token_reward", "Mean token reward", "reward", (("credit/mean_token_reward", "mean token reward"),)),
    Plot("flagged", "Flagged by the critic's vote", "rate", (
        ("critic/flagged_step_rate", "steps flagged"), ("critic/flagged_response_rate", "responses flagged"))),
    Plot("critic_rates", "Critic parse and abstain rates", "rate", (
        ("critic/parse_rate", "parsed critiques"), ("critic/abstain_rate", "abstained responses"))),
    Plot("judge_cost", "Judge tokens per policy token", "tokens / token", (
        ("critic/judge_tokens_per_policy_token", "judge tokens per policy token"),)),
    Plot("kl", "KL to the reference (k3)", "KL", (("learner/kl", "kl"),)),
)
_POSITION = re.compile(r"^critic/flagged_at_step_(\d+)$")


def _steps_and(history: list[dict[str, Any]], key: str) -> tuple[list[int], list[float]]:
    rows = [r for r in history if key in r]
    return [int(r["step"]) for r in rows], [float(r[key]) for r in rows]


def _figure(title: str, ylabel: str):
    from matplotlib.figure import Figure

    fig = Figure(figsize=(6.4, 3.6), dpi=100, layout="constrained")
    ax = fig.add_subplot()
    ax.set_title(title)
    ax.set_xlabel("training step")
    ax.set_ylabel(ylabel)
    ax.grid(True, alpha=0.3)
    return fig, ax


def _lines(ax, history: list[dict[str, Any]], series) -> bool:
    drawn = False
    for key, label in series:
        xs, ys = _steps_and(history, key)
        if xs:
            ax.plot(xs, ys, marker="o", label=label)
            drawn = True
    if drawn:
        ax.legend(loc="best", fontsize="small")
        ax.xaxis.get_major_locator().set_params(integer=True)
    return drawn


def _by_position(history: list[dict[str, Any]]):
    positions = sorted({int(m.group(1)) for r in history for k in r if (m := _POSITION.match(k))})
    if not positions:
        return None
    fig, ax = _figure("Flagged rate by step position", "rate flagged")
    _lines(ax, history, [(f"critic/flagged_at_step_{p}", f"step {p}") for p in positions])
    return fig


def _time_per_stage(history: list[dict[str, Any]]):
    stages = [s for s in STAGES if any(f"time/{s}" in r for r in history)]
    if not stages:
        return None
    fig, ax = _figure("Time per stage", "seconds")
    steps = [int(r["step"]) for r in history]
    bottom = [0.0] * len(history)
    for stage in stages:
        secs = [float(r.get(f"time/{stage}", 0.0)) for r in history]
        ax.bar(steps, secs, bottom=bottom, label=stage)
        bottom = [b + s for b, s in zip(bottom, secs)]
    ax.legend(loc="upper left", fontsize="x-small", ncol=4)
    ax.xaxis.get_major_locator().set_params(integer=True)
    return fig


def figures(history: list[dict[str, Any]]) -> list[tuple[str, str, Any]]:
    """(name, title, matplotlib Figure) for every plot the history has data for."""
    out = []
    for plot in PLOTS:
        fig, ax = _figure(plot.title, plot.ylabel)
        if _lines(ax, history, plot.series):
            out.append((plot.name, plot.title, fig))
    for name, title, make in (("flagged_by_position", "Flagged rate by step position", _by_position),
                              ("time_per_stage", "Time per stage", _time_per_stage)):
        fig = make(history)
        if fig is not None:
            out.append((name, title, fig))
    return out


def png_bytes(fig) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return buf.getvalue()


def write_plots(history: list[dict[str, Any]], out_dir: Path) -> list[tuple[str, Path]]:
    """Write every plot as ``out_dir/<name>.png``; returns (title, path) in drawing order."""
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for name, title, fig in figures(history):
        path = out_dir / f"{name}.png"
        path.write_bytes(png_bytes(fig))
        written.append((title, path))
    return written
