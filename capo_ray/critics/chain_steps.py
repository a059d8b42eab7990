"""What a judge who reads a ``chain`` question checks beyond arithmetic (the ``arith`` critic
with ``critic.check_question``).

A chain solution can be wrong with arithmetic that holds: "Step 3: 40 - 5 = 35" when the
question's operation 3 is "+ 1" (an operation copied from elsewhere), a step that starts from
a number no earlier step produced, a skipped or extra step, or an answer given before the last
operation. Sampling the study's organism produces all of these; a judge that only checks
``a op b = c`` passes them, and under group normalization an unflagged wrong step in a wrong
answer then earns a positive advantage. The checks, per ``Step N: a op b = c`` line:

- N is the next step (1, 2, ... in order) and the question has an operation N;
- ``op b`` is the question's operation N;
- ``a`` is the previous line's result as written or as it should have been (a step that goes
  on from the right value after a slip is itself right; the slip is the arithmetic check's),
  or the true running value; for step 1, the start value;

and the answer line is wrong unless it states the question's answer. Lines of any other shape
are left to the arithmetic check.
"""

from __future__ import annotations

import re

from capo_ray.data.chain import Chain, apply

_STEP = re.compile(r"\s*Step (\d+): (\d+) ([-+*]) (\d+) = (-?\d+)\s*$")
_ANSWER = re.compile(r"\\boxed\{\s*(-?\d+)\s*\}")


def chain_step_errors(chain: Chain, steps: list[str]) -> list[str | None]:
    """Per step text: why it is wrong against ``chain``, or None (right, or not checkable)."""
    truth = [chain.start, *chain.values()]  # truth[n]: the value after n operations
    out: list[str | None] = []
    label, written, right = 0, chain.start, chain.start  # the previous line's result, as written and as it should be
    for text in steps:
        step = _STEP.match(text)
        if step is None:
            answer = _ANSWER.search(text)
            wrong = answer is not None and int(answer.group(1)) != chain.answer
            out.append(f"the answer is {chain.answer}, not {answer.group(1)}" if wrong else None)
            continue
        n, a, op, b, c = int(step.group(1)), int(step.group(2)), step.group(3), int(step.group(4)), int(step.group(5))
        if n != label + 1:
            reason = f"comes after step {label}: expected step {label + 1}"
        elif n > len(chain.ops):
            reason = f"the problem has only {len(chain.ops)} operations"
        elif (op, b) != chain.ops[n - 1]:
            reason = f"applies {op} {b}, but operation {n} is {chain.ops[n - 1][0]} {chain.ops[n - 1][1]}"
        elif a not in (written, right, truth[n - 1]):
            reason = f"starts from {a}, not from the previous result {written}"
        else:
            reason = None
        out.append(reason)
        label, written, right = n, c, apply(a, op, b)
    return out
