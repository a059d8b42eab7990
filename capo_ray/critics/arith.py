"""The ``arith`` critic: an exact checker of the arithmetic in each step.

It plays the GenPRM's role where no offline LLM can (SmolLM2 judges steps at chance): for each
step it checks every ``expression = value`` it contains, writes a short note per step and ends
with the same ``Wrong step list: [...]`` verdict an LLM critic would, so its output goes
through exactly the same parse -> vote -> credit path. With ``flip_noise`` each critique flips
each step's verdict with that probability, which exercises voting and lets one study how
critic noise hurts training.

Equations are read and evaluated exactly by ``capo_ray.critics.calculator`` (a small
recursive-descent parser: numbers, + - * / x and parentheses; nothing is passed to eval).

With ``check_question`` (``critic.check_question``, on by default) and a critique prompt that
quotes a ``chain`` question, it also checks each step against that question, as a judge who
reads it would (``capo_ray.critics.chain_steps``): the operation, the number it starts from,
the step order, and the answer. Other problems get the arithmetic check alone.
"""

from __future__ import annotations

import random
from fractions import Fraction

from capo_ray.core.critique import format_verdict
from capo_ray.critics.calculator import equation_holds, try_evaluate, visible_equations
from capo_ray.critics.chain_steps import chain_step_errors
from capo_ray.data.chain import Chain, find_question
from capo_ray.records import CritiqueResult


def check_step(step: str) -> tuple[bool | None, str]:
    """(is_wrong, note): None when the step holds no checkable arithmetic.

    Every visible equation chain ("4 * 60 / 5 = 4 * 12 = 48") must hold exactly; a chain with
    a side that is not plain arithmetic is skipped rather than judged.
    """
    checked, wrong = 0, []
    for sides in visible_equations(step):
        holds = equation_holds(sides)
        if holds is None:
            continue
        checked += 1
        if not holds:
            wrong.append(f"{' = '.join(sides)} does not hold ({sides[0]} = {_show(try_evaluate(sides[0]))})")
    if wrong:
        return True, "wrong: " + "; ".join(wrong)
    if checked:
        return False, "correct."
    return None, "no arithmetic to check."


def _show(value: Fraction | None) -> str:
    if value is None:
        return "?"
    return str(value.numerator) if value.denominator == 1 else f"{float(value):g}"


def check_steps(steps: list[str], chain: Chain | None = None) -> list[tuple[bool | None, str]]:
    """(is_wrong, note) per step: ``check_step``, plus the checks against ``chain`` (the question
    the steps answer) when given. The one noise-free judgement, shared with the step-error
    counts (critics/step_errors.py)."""
    verdicts = [check_step(step) for step in steps]
    if chain is None:
        return verdicts
    return [_with_question(verdict, reason) for verdict, reason in zip(verdicts, chain_step_errors(chain, steps))]


def critique_steps(steps: list[str], k: int, flip_noise: float, rng: random.Random, chain: Chain | None = None) -> list[str]:
    """K critique texts for one response; each flips each step's verdict with ``flip_noise``.
    ``chain``: the question the steps answer, checked too (module docstring)."""
    verdicts = check_steps(steps, chain)
    texts = []
    for _ in range(k):
        lines, wrong = [], []
        for idx, (is_wrong, note) in enumerate(verdicts, start=1):
            flagged = bool(is_wrong)
            if flip_noise and rng.random() < flip_noise:
                flagged = not flagged
                note = f"{note} (judged {'wrong' if flagged else 'right'})"
            lines.append(f"Step {idx}: {note}")
            if flagged:
                wrong.append(idx)
        lines.append(format_verdict(wrong))
        texts.append("\n".join(lines))
    return texts


def _with_question(verdict: tuple[bool | None, str], reason: str | None) -> tuple[bool | None, str]:
    if reason is None:
        return verdict
    is_wrong, note = verdict
    return True, (f"{note}; {reason}" if is_wrong else f"wrong: {reason}")


def quoted_question(messages: list[dict[str, str]] | None) -> Chain | None:
    """The chain question a critique prompt quotes (its user turns), if any."""
    if not messages:
        return None
    return find_question("\n".join(m["content"] for m in messages if m.get("role") == "user"))


class ArithCritic:
    """Driver-side backend with the same ``critique`` call as the LLM critic pool. It reads
    the step texts directly, and from the chat messages only a quoted chain question, and
    costs microseconds, so it runs in the driver process rather than in an actor."""

    def __init__(self, k: int, flip_noise: float, seed: int, check_question: bool = True) -> None:
        self.k = k
        self.flip_noise = flip_noise
        self.check_question = check_question
        self.rng = random.Random(seed)

    def critique(
        self, messages: list[list[dict[str, str]]] | None, step_texts: list[list[str]]
    ) -> list[CritiqueResult]:
        chains = [quoted_question(m) if self.check_question else None for m in (messages or [None] * len(step_texts))]
        return [
            CritiqueResult(texts=list(critique_steps(steps, self.k, self.flip_noise, self.rng, chain)))
            for steps, chain in zip(step_texts, chains)
        ]

    def state_dict(self) -> dict:
        """The flip-noise generator's state: saved in checkpoints so a resumed run flips the
        same verdicts as one that never stopped."""
        return {"rng": self.rng.getstate()}

    def load_state_dict(self, state: dict) -> None:
        self.rng.setstate(_as_state(state["rng"]))

    def shutdown(self) -> None:
        pass


def _as_state(state):
    # random.setstate wants tuples; a state that went through JSON comes back as lists.
    return tuple(tuple(x) if isinstance(x, list) else x for x in state)
