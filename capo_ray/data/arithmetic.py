"""The built-in task: seedable, easy arithmetic problems with exact reference answers.

Why this task: no model hub is reachable on CPU machines and the only offline instruct model
(SmolLM2-135M) solves ~20% of one-operation problems with operands 1-10 at temperature 1 —
enough spread inside a group of samples for group-normalized advantages to carry signal.
A few-shot chat prompt keeps its format: one operation per line, then ``\\boxed{}``.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from capo_ray.records import Problem

# Demonstrations shown as prior chat turns. Each line holds one operation, so the step
# segmenter (single-newline fallback) sees one step per operation.
FEW_SHOT: tuple[tuple[str, str], ...] = (
    ("Compute 3 + 4 * 5.", "Step 1: 4 * 5 = 20\nStep 2: 3 + 20 = 23\nThe answer is \\boxed{23}."),
    ("Compute 9 - 2.", "Step 1: 9 - 2 = 7\nThe answer is \\boxed{7}."),
    ("Compute 6 * 3 - 4.", "Step 1: 6 * 3 = 18\nStep 2: 18 - 4 = 14\nThe answer is \\boxed{14}."),
)
SYSTEM_PROMPT = (
    "You solve arithmetic problems. Write one operation per line as 'Step N: a op b = c', "
    "then 'The answer is \\boxed{...}'."
)


@dataclass(frozen=True)
class ArithmeticSpec:
    num_ops: int = 1
    operand_min: int = 1
    operand_max: int = 10
    operators: tuple[str, ...] = ("+", "-", "*")


def _evaluate(operands: list[int], ops: list[str]) -> int:
    """Standard precedence (* before + and -), evaluated on ints: no eval of any string."""
    terms, signs = [operands[0]], []
    for op, value in zip(ops, operands[1:]):
        if op == "*":
            terms[-1] *= value
        else:
            terms.append(value)
            signs.append(op)
    total = terms[0]
    for sign, term in zip(signs, terms[1:]):
        total = total + term if sign == "+" else total - term
    return total


def make_problem(rng: random.Random, spec: ArithmeticSpec, uid: str) -> Problem:
    operands = [rng.randint(spec.operand_min, spec.operand_max) for _ in range(spec.num_ops + 1)]
    ops = [rng.choice(spec.operators) for _ in range(spec.num_ops)]
    expr = " ".join(str(x) for pair in zip(operands, ops + [""]) for x in pair if x != "")
    return Problem(uid=uid, question=f"Compute {expr}.", answer=str(_evaluate(operands, ops)), source=uid)


class ArithmeticStream:
    """An endless, reproducible stream of problems: batch ``i`` depends only on (seed, i), so a
    resumed run sees exactly the problems it would have seen without the crash."""

    def __init__(self, spec: ArithmeticSpec, seed: int) -> None:
        self.spec = spec
        self.seed = seed

    def batch(self, index: int, size: int) -> list[Problem]:
        rng = random.Random(f"{self.seed}:{index}")
        return [make_problem(rng, self.spec, f"arith:{self.seed}:{index}:{j}") for j in range(size)]


def few_shot_messages(question: str) -> list[dict[str, str]]:
    """Chat messages: system instruction, the demonstrations as prior turns, then the question."""
    messages = [{"role": "system", "content": SYSTEM_PROMPT}]
    for demo_q, demo_a in FEW_SHOT:
        messages += [{"role": "user", "content": demo_q}, {"role": "assistant", "content": demo_a}]
    messages.append({"role": "user", "content": question})
    return messages
