"""Render the inspector's pages with Jinja2: ``index.html`` (the metrics page: summary and
plots) and ``step_NNNNNN.html`` per logged step. Every page is self-contained: the CSS is
inline and the plots are embedded as PNG data URIs, so a page can be mailed or opened from
any folder."""

from __future__ import annotations

import base64
import json
from collections import defaultdict
from pathlib import Path
from typing import Any

from capo_ray.driver.logger import read_jsonl
from capo_ray.inspect.plots import figures, png_bytes
from capo_ray.inspect.views import response_view

SUMMARY_KEYS = (
    ("accuracy", "outcome/accuracy"),
    ("mean token reward", "credit/mean_token_reward"),
    ("flagged-step rate", "critic/flagged_step_rate"),
    ("flagged-response rate", "critic/flagged_response_rate"),
    ("parse rate", "critic/parse_rate"),
    ("abstain rate", "critic/abstain_rate"),
    ("judge tokens / policy token", "critic/judge_tokens_per_policy_token"),
    ("kl", "learner/kl"),
    ("grad norm", "learner/grad_norm"),
    ("step seconds", "time/step"),
)


def step_page_name(step: int) -> str:
    return f"step_{step:06d}.html"


def _environment():
    from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape

    env = Environment(
        loader=PackageLoader("capo_ray.inspect", "templates"),
        autoescape=select_autoescape(["html"]),
        undefined=StrictUndefined,  # a template naming a missing field fails loudly
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["num"] = lambda v, fmt="{:.3f}": "-" if v is None else fmt.format(v)
    return env


def load_run(run_dir: Path) -> tuple[list[dict[str, Any]], dict[int, list[dict[str, Any]]], dict[str, Any]]:
    if not (run_dir / "metrics.jsonl").is_file() and not (run_dir / "samples.jsonl").is_file():
        raise FileNotFoundError(f"{run_dir} holds neither metrics.jsonl nor samples.jsonl: not a capo-ray run directory")
    history = read_jsonl(run_dir / "metrics.jsonl")
    by_step: dict[int, list[dict[str, Any]]] = defaultdict(list)
    for row in read_jsonl(run_dir / "samples.jsonl"):
        by_step[int(row["step"])].append(row)
    config_path = run_dir / "config.json"
    config = json.loads(config_path.read_text()) if config_path.is_file() else {}
    return history, dict(by_step), config


def _data_uri(png: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def render_run(run_dir: Path, out_dir: Path, steps: list[int] | None = None) -> list[Path]:
    """Write the metrics page and the step pages (``steps``: only those; None: every logged
    step). Returns the written paths, the metrics page first."""
    history, by_step, config = load_run(run_dir)
    if steps is not None:
        missing = [s for s in steps if s not in by_step]
        if missing:
            raise ValueError(f"no samples logged for step(s) {missing}; logged steps: {sorted(by_step)}")
    chosen = sorted(by_step) if steps is None else sorted(steps)
    env = _environment()
    out_dir.mkdir(parents=True, exist_ok=True)
    metrics_by_step = {int(r["step"]): r for r in history}
    common = {"run_name": run_dir.name, "run_dir": str(run_dir), "steps": chosen, "page_of": step_page_name, "config": config}
    plots = [(title, _data_uri(png_bytes(fig))) for _, title, fig in figures(history)]
    written = [out_dir / "index.html"]
    written[0].write_text(env.get_template("metrics.html").render(
        **common, current=None, history=history, summary_keys=SUMMARY_KEYS, plots=plots,
        samples_per_step={s: len(v) for s, v in by_step.items()},
    ))
    for step in chosen:
        page = out_dir / step_page_name(step)
        page.write_text(env.get_template("step.html").render(
            **common, current=step, metrics=metrics_by_step.get(step, {}), summary_keys=SUMMARY_KEYS,
            responses=[response_view(i, s) for i, s in enumerate(by_step[step])],
        ))
        written.append(page)
    return written
