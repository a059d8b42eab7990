"""How often responses hold a wrong step, by the arith critic's noise-free checks.

One counting rule for every place that reports step errors: the organism's build measurement
(models/organism_eval.py) and the trainer's held-out evaluation (driver/periodic_eval.py), so
"wrong step" means there exactly what the critic flags during RL: a step whose arithmetic
fails, or, on a ``chain`` question, one that applies the wrong operation or starts from a value
no step produced (critics/chain_steps.py).
"""

from __future__ import annotations

from collections.abc import Sequence

from capo_ray.core.segment import split_steps
from capo_ray.critics.arith import check_steps
from capo_ray.data.chain import find_question


def wrong_step_spans(response: str, question: str) -> list[tuple[int, int]]:
    """Character spans (``core.segment.split_steps``) of the steps the checks flag."""
    spans = split_steps(response)
    verdicts = check_steps([response[a:b] for a, b in spans], find_question(question))
    return [span for span, (is_wrong, _) in zip(spans, verdicts) if is_wrong]


def has_wrong_step(response: str, question: str) -> bool:
    return bool(wrong_step_spans(response, question))


def step_error_rates(responses: Sequence[str], correct: Sequence[bool], questions: Sequence[str]) -> dict[str, float]:
    """``step_error_rate``: share of responses with a wrong step; ``wrong_step_rate_among_correct``:
    that share among the correct ones (0 when none is correct): the slips an outcome reward
    cannot see."""
    if not len(responses) == len(correct) == len(questions):
        raise ValueError(f"need one flag and one question per response: {len(responses)}, {len(correct)}, {len(questions)}")
    wrong = [has_wrong_step(text, q) for text, q in zip(responses, questions)]
    n_correct = sum(bool(c) for c in correct)
    return {
        "step_error_rate": sum(wrong) / max(1, len(responses)),
        "wrong_step_rate_among_correct": sum(w for w, c in zip(wrong, correct) if c) / n_correct if n_correct else 0.0,
    }
