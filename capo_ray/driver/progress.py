"""A progress bar with ETA over training steps, one summary line per step, and a warning on
the terminal for each step whose numbers need a person's attention (judge failures, verifier
timeouts, responses left out of the update)."""

from __future__ import annotations

import logging
from typing import Any

from tqdm import tqdm

log = logging.getLogger("capo_ray")

_SUMMARY = (
    ("acc", "outcome/accuracy", "{:.2f}"),
    ("reward", "credit/mean_token_reward", "{:+.2f}"),
    ("flagged", "critic/flagged_response_rate", "{:.2f}"),
    ("parse", "critic/parse_rate", "{:.2f}"),
    ("kl", "learner/kl", "{:.4f}"),
    ("loss", "learner/loss", "{:+.4f}"),
    ("s", "time/step", "{:.1f}"),
)
# (metric, what a non-zero value means): counted every step, and said once when it happens.
_ALERTS = (
    ("critic/failed_requests", "critique request(s) failed (those responses abstain)"),
    ("critic/failed_critiques", "critique(s) came back empty (they abstain)"),
    ("credit/dropped_responses", "response(s) left out of the update (every critique abstained)"),
    ("outcome/verify_failures", "answer check(s) timed out or failed (counted as incorrect)"),
)


def summary_line(step: int, metrics: dict[str, Any]) -> str:
    parts = [f"step {step}"]
    parts += [f"{name} {fmt.format(metrics[key])}" for name, key, fmt in _SUMMARY if key in metrics]
    return " | ".join(parts)


def alerts(metrics: dict[str, Any]) -> list[str]:
    return [f"{int(metrics[key])} {what}" for key, what in _ALERTS if metrics.get(key, 0) > 0]


class Progress:
    def __init__(self, total: int, start: int, enabled: bool, stream: Any = None) -> None:
        """``stream``: the terminal (driver/console.py); None: stderr."""
        self.bar = tqdm(total=total, initial=start, desc="capo-ray", unit="step", disable=not enabled,
                        dynamic_ncols=True, file=stream)
        self.enabled = enabled
        self.stream = stream

    def update(self, step: int, metrics: dict[str, Any]) -> None:
        line = summary_line(step, metrics)
        found = alerts(metrics)
        if found:
            log.warning("step %d: %s", step, "; ".join(found))
        if self.enabled:
            self.bar.write(line, file=self.stream)
            self.bar.update(1)
        else:
            print(line, flush=True, file=self.stream)

    def close(self) -> None:
        self.bar.close()
