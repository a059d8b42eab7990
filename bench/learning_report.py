"""What bench/learning.py reports from its runs: per-cell summaries, the headline, the markdown
table and the plots (mean line, min-max band over seeds)."""

from __future__ import annotations

import statistics
from collections import defaultdict
from pathlib import Path


def _final(values: list[float], last: int = 2) -> float | None:
    """The mean of the last ``last`` evaluations: one eval of a few hundred problems moves by a
    few points between neighbouring checkpoints."""
    return statistics.fmean(values[-last:]) if values else None


def steps_to(curve: dict, target: float) -> int | None:
    for step, acc in zip(curve["eval_step"], curve["heldout_accuracy"]):
        if acc >= target - 1e-9:
            return step
    return None


def _by_cell(runs: list[dict]) -> dict[str, list[dict]]:
    cells: dict[str, list[dict]] = defaultdict(list)
    for run in runs:
        if run["ok"]:
            cells[run["cell"]].append(run)
    return cells


def summarize(runs: list[dict]) -> dict:
    """Per cell: seeds, final held-out accuracy, wrong steps among correct answers, seconds per
    step, judge tokens per policy token, and steps to the target.

    The target is paired by seed: GRPO's final held-out accuracy *of the same seed* (same
    problems, same critic draws). GRPO always reaches its own final accuracy by its last
    evaluation (one of the last two is at least their mean), so no seed drops out of the ratio;
    with one target for all seeds (the mean of GRPO's finals), a seed whose GRPO ended below
    the mean had no GRPO steps and left the median, and those are the seeds where GRPO was slow."""
    cells = _by_cell(runs)
    targets = {r["seed"]: f for r in cells.get("grpo", []) if (f := _final(r["curves"]["heldout_accuracy"])) is not None}
    out: dict = {"target": statistics.fmean(targets.values()) if targets else None, "targets": targets, "cells": {},
                 "failed_runs": [f"{r['cell']}-seed{r['seed']}" for r in runs if not r["ok"]]}
    for name, members in cells.items():
        finals = [f for f in (_final(r["curves"]["heldout_accuracy"]) for r in members) if f is not None]
        wrong = [f for f in (_final(r["curves"]["wrong_steps_among_correct"]) for r in members) if f is not None]
        greedy = [f for f in (_final(r["curves"]["heldout_greedy_accuracy"]) for r in members) if f is not None]
        steps = [steps_to(r["curves"], targets[r["seed"]]) if r["seed"] in targets else None for r in members]
        step_s = [statistics.fmean(r["curves"]["step_s"][1:] or r["curves"]["step_s"]) for r in members]
        judge = [statistics.fmean(r["curves"]["judge_tokens_per_policy_token"]) for r in members]
        out["cells"][name] = {
            "algo": members[0]["algo"], "seeds": len(members), "overrides": members[0]["overrides"],
            "final_accuracy": statistics.fmean(finals) if finals else None,
            "final_accuracy_sd": statistics.pstdev(finals) if len(finals) > 1 else 0.0,
            "wrong_steps_among_correct": statistics.fmean(wrong) if wrong else None,
            "final_greedy_accuracy": statistics.fmean(greedy) if greedy else None,
            "start_accuracy": statistics.fmean(r["curves"]["heldout_accuracy"][0] for r in members)
            if members[0]["curves"].get("eval_step", [None])[:1] == [0] else None,
            "steps_to_target": steps, "step_s": statistics.fmean(step_s), "judge_tokens_per_policy_token": statistics.fmean(judge),
            "total_steps": members[0]["curves"]["step"][-1] if members[0]["curves"]["step"] else 0,
        }
    out["ratio"] = _ratio(cells, targets)
    return out


def _ratio(cells: dict[str, list[dict]], targets: dict[int, float]) -> dict | None:
    """Median over seeds of CAPO's over GRPO's steps to that seed's target. A CAPO run that
    never reaches it counts with its total steps and the ratio is reported as a lower bound."""
    if not targets or "capo" not in cells or "grpo" not in cells:
        return None
    grpo = {r["seed"]: steps_to(r["curves"], targets[r["seed"]]) for r in cells["grpo"] if r["seed"] in targets}
    if grpo and all(g == 0 for g in grpo.values()):
        # GRPO ended no higher than it started: the target needs no training, a ratio would say nothing.
        return {"median": None, "per_seed": [], "lower_bound": False, "no_gain": True}
    ratios, censored = [], False
    for run in cells["capo"]:
        g = grpo.get(run["seed"])
        if not g:  # no GRPO run of this seed, or its target needed no training (0)
            continue
        c = steps_to(run["curves"], targets[run["seed"]])
        if c is None:
            c, censored = run["curves"]["step"][-1], True
        ratios.append(c / g)
    if not ratios:
        return None
    return {"median": statistics.median(ratios), "per_seed": ratios, "lower_bound": censored}


def headline(summary: dict) -> str:
    cells, ratio = summary["cells"], summary["ratio"]
    if ratio is None or "capo" not in cells or "grpo" not in cells:
        return "CAPO/GRPO steps to target: n/a (a CAPO or GRPO run is missing or failed)"
    capo, grpo = cells["capo"], cells["grpo"]
    seeds = min(capo["seeds"], grpo["seeds"])
    finals = f"final accuracy CAPO {capo['final_accuracy']:.2f}, GRPO {grpo['final_accuracy']:.2f}; "
    if capo["wrong_steps_among_correct"] is not None and grpo["wrong_steps_among_correct"] is not None:
        # The issue's second target: CAPO should also end with fewer slips behind right answers.
        finals += (f"wrong steps among correct CAPO {capo['wrong_steps_among_correct']:.2f}, "
                   f"GRPO {grpo['wrong_steps_among_correct']:.2f}; ")
    finals += f"{seeds} seed{'s' if seeds != 1 else ''}"
    if ratio.get("no_gain"):
        return f"CAPO/GRPO steps to target: n/a (GRPO ended no higher than its start, so no target; {finals})"
    bound = ">=" if ratio["lower_bound"] else ""
    return f"CAPO/GRPO steps to target: {bound}{ratio['median']:.2f}x ({finals})"


def _fmt(value, spec: str = ".3f") -> str:
    return "-" if value is None else format(value, spec)


def write_table(path: Path, result: dict) -> None:
    s = result["summary"]
    lines = [
        f"# Learning study ({result['mode']})", "",
        f"Machine: {result['machine'].get('cpu', '?')}, {result['machine'].get('cpus')} CPUs, flags "
        f"{' '.join(result['machine'].get('flags', []))}, load at the end {' '.join(result['machine'].get('load', []))}. "
        f"Study wall-clock {result['study_wall_s'] / 60:.1f} min.", "",
        f"Settings: {result['settings']}, RL lr {result['lr']}.", "",
        "Target accuracy: GRPO's final held-out accuracy of the same seed ("
        + ", ".join(f"seed {seed}: {_fmt(t)}" for seed, t in sorted(s["targets"].items())) + f"; mean {_fmt(s['target'])})", "",
        "Held-out accuracy: samples at the rollout temperature (avg@k, the policy RL trains); greedy: pass@1. "
        "Wrong steps among correct: sampled correct answers with a step the noise-free checks flag.", "",
        "| cell | seeds | start acc | final held-out acc | sd | final greedy acc | steps to target (per seed) | wrong steps among correct | s/step | judge tok / policy tok |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name, c in s["cells"].items():
        steps = ", ".join("never" if x is None else str(x) for x in c["steps_to_target"])
        lines.append(f"| {name} | {c['seeds']} | {_fmt(c['start_accuracy'])} | {_fmt(c['final_accuracy'])} | "
                     f"{_fmt(c['final_accuracy_sd'])} | {_fmt(c['final_greedy_accuracy'])} | "
                     f"{steps} (of {c['total_steps']}) | {_fmt(c['wrong_steps_among_correct'])} | "
                     f"{_fmt(c['step_s'], '.1f')} | {_fmt(c['judge_tokens_per_policy_token'], '.2f')} |")
    if s["failed_runs"]:
        lines += ["", f"Failed runs (left out): {', '.join(s['failed_runs'])}"]
    lines += ["", headline(s), ""]
    path.write_text("\n".join(lines))


def _band(ax, runs: list[dict], x_key: str, y_key: str, label: str) -> None:
    """Mean over seeds with a min-max band, on the grid of the first run's x values."""
    series = [(r["curves"][x_key], r["curves"][y_key]) for r in runs if r["curves"][y_key]]
    if not series:
        return
    n = min(len(y) for _, y in series)
    xs = [statistics.fmean(x[i] for x, _ in series) for i in range(n)]
    ys = [[y[i] for _, y in series] for i in range(n)]
    mean = [statistics.fmean(v) for v in ys]
    line, = ax.plot(xs, mean, marker="o", markersize=3, label=f"{label} ({len(series)} seeds)")
    if len(series) > 1:
        ax.fill_between(xs, [min(v) for v in ys], [max(v) for v in ys], alpha=0.2, color=line.get_color())


def write_plots(out: Path, runs: list[dict]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cells = _by_cell(runs)
    figures = [
        ("accuracy_vs_steps.png", "eval_step", "heldout_accuracy", "RL step", "held-out accuracy (sampled, avg@k)"),
        ("accuracy_vs_time.png", "eval_wall_s", "heldout_accuracy", "wall-clock (s)", "held-out accuracy (sampled, avg@k)"),
        ("wrong_steps_among_correct.png", "eval_step", "wrong_steps_among_correct", "RL step",
         "correct sampled answers with a wrong step"),
        ("greedy_accuracy_vs_steps.png", "eval_step", "heldout_greedy_accuracy", "RL step", "held-out accuracy (greedy)"),
    ]
    for filename, x_key, y_key, x_label, y_label in figures:
        fig, ax = plt.subplots(figsize=(6.4, 4.0))
        for name, members in cells.items():
            _band(ax, members, x_key, y_key, name)
        ax.set_xlabel(x_label)
        ax.set_ylabel(y_label)
        ax.grid(alpha=0.3)
        if cells:
            ax.legend(fontsize=7)
        fig.tight_layout()
        fig.savefig(out / filename, dpi=110)
        plt.close(fig)
