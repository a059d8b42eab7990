"""A progress bar with ETA over training steps, and one summary line per step."""

from __future__ import annotations

from typing import Any

from tqdm import tqdm

_SUMMARY = (
    ("acc", "outcome/accuracy", "{:.2f}"),
    ("reward", "credit/mean_token_reward", "{:+.2f}"),
    ("flagged", "critic/flagged_response_rate", "{:.2f}"),
    ("parse", "critic/parse_rate", "{:.2f}"),
    ("kl", "learner/kl", "{:.4f}"),
    ("loss", "learner/loss", "{:+.4f}"),
    ("s", "time/step", "{:.1f}"),
)


def summary_line(step: int, metrics: dict[str, Any]) -> str:
    parts = [f"step {step}"]
    parts += [f"{name} {fmt.format(metrics[key])}" for name, key, fmt in _SUMMARY if key in metrics]
    return " | ".join(parts)


class Progress:
    def __init__(self, total: int, start: int, enabled: bool) -> None:
        self.bar = tqdm(total=total, initial=start, desc="capo-ray", unit="step", disable=not enabled, dynamic_ncols=True)
        self.enabled = enabled

    def update(self, step: int, metrics: dict[str, Any]) -> None:
        line = summary_line(step, metrics)
        if self.enabled:
            self.bar.write(line)
            self.bar.update(1)
        else:
            print(line, flush=True)

    def close(self) -> None:
        self.bar.close()
