"""Step logging: a JSONL file in the run directory always, wandb when enabled (offline default),
and a sample log showing what each critique said, how the vote went and which tokens were
penalized (judge observability)."""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Any

log = logging.getLogger("capo_ray")


class RunLogger:
    def __init__(self, run_dir: Path, wandb_mode: str, project: str, config: dict[str, Any]) -> None:
        self.run_dir = run_dir
        self.metrics_path = run_dir / "metrics.jsonl"
        self.samples_path = run_dir / "samples.jsonl"
        self._wandb = None
        if wandb_mode != "disabled":
            self._wandb = self._start_wandb(wandb_mode, project, config)

    def _start_wandb(self, mode: str, project: str, config: dict[str, Any]):
        try:
            import wandb

            os.environ.setdefault("WANDB_SILENT", "true")
            return wandb.init(
                project=project, mode=mode, dir=str(self.run_dir), config=config,
                name=self.run_dir.name, resume="allow", id=self.run_dir.name.replace(":", "-"),
            )
        except Exception as err:  # logging must never take a training run down
            log.warning("wandb disabled: %s", err)
            return None

    def log_step(self, step: int, metrics: dict[str, float]) -> None:
        with open(self.metrics_path, "a") as f:
            f.write(json.dumps({"step": step, **metrics}) + "\n")
        if self._wandb is not None:
            try:
                self._wandb.log(metrics, step=step)
            except Exception as err:
                log.warning("wandb log failed at step %d: %s", step, err)

    def log_samples(self, step: int, samples: list[dict[str, Any]]) -> None:
        with open(self.samples_path, "a") as f:
            for sample in samples:
                f.write(json.dumps({"step": step, **sample}) + "\n")

    def close(self) -> None:
        if self._wandb is not None:
            try:
                self._wandb.finish()
            except Exception as err:
                log.warning("wandb finish failed: %s", err)


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    """Rows of a run's JSONL log. A driver killed mid-write leaves a torn last line: it is
    dropped (that step is redone on resume); a bad line anywhere else is an error."""
    if not path.exists():
        return []
    lines = [line for line in path.read_text().splitlines() if line.strip()]
    rows = []
    for i, line in enumerate(lines):
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError:
            if i == len(lines) - 1:
                log.warning("%s: dropping a torn last line (the run was killed while writing it)", path)
                break
            raise ValueError(f"{path}:{i + 1}: not a JSON row: {line[:80]!r}") from None
    return rows


def read_metrics(run_dir: Path) -> list[dict[str, Any]]:
    return read_jsonl(run_dir / "metrics.jsonl")


def truncate_metrics(run_dir: Path, last_step: int) -> None:
    """Keep only rows with step <= ``last_step`` in metrics.jsonl and samples.jsonl."""
    for name in ("metrics.jsonl", "samples.jsonl"):
        path = run_dir / name
        if not path.exists():
            continue
        keep = [row for row in read_jsonl(path) if row["step"] <= last_step]
        path.write_text("".join(json.dumps(row) + "\n" for row in keep))
