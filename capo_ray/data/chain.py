"""The ``chain`` task: seeded problems of 3-6 *dependent* operations, one operation per step.

Why: in the one-operation ``arith`` task a response has one reasoning step, so CAPO's
step-level credit is just the outcome credit again. Here every step consumes the previous
step's result ("Start with 7. Apply in order: 1) + 5, 2) * 3, 3) - 4."), so a response has several
checkable steps and a slip in the middle is visible to a step critic but, when a later step
repairs it, not to an outcome reward. Solutions use the ``Step N: a op b = c`` lines the
``arith`` critic checks, then ``The answer is \\boxed{c}``.

Values stay integers in ``[0, max_value]``: an operation is only drawn when its result stays in
range, so answers are exact and the difficulty is set by the knobs (number of operations,
operand range, operators, value cap) rather than by ever larger numbers. ``zero_share`` puts a
"* 0" into a share of the chains: the steps before it cannot change the answer, which is where
an outcome reward is blind to a step's error.

Train and held-out problems are disjoint by construction: a problem belongs to the held-out
split iff a stable hash of its question falls in the held-out bucket, and each stream redraws
until its problems are in its own split.

``solution_text`` also writes *imperfect* solutions for the SFT cold start of the model
organism (capo_ray/models/organism.py): an error that propagates (a wrong result that later
steps build on, so the final answer is wrong) or a slip that the next step ignores (it goes on
from the right value, so the final answer is still right: what an outcome reward cannot see),
each at random, or a habit: one systematic wrong product the policy learns to prefer.
"""

from __future__ import annotations

import hashlib
import random
import re
from dataclasses import dataclass

from capo_ray.data.arithmetic import SYSTEM_PROMPT
from capo_ray.records import Problem

HELDOUT_BUCKETS = 10  # one question hash bucket in ten is held out


@dataclass(frozen=True)
class ChainSpec:
    min_ops: int = 3
    max_ops: int = 6
    operand_min: int = 1
    operand_max: int = 9
    operators: tuple[str, ...] = ("+", "-", "*")
    max_value: int = 99
    # Share of chains with one "* 0" between their first and last operation: it cancels every
    # value before it, so an error there cannot reach the answer (an outcome reward never sees
    # it) although nothing about the error itself differs. 0: no chain has one.
    zero_share: float = 0.0

    def __post_init__(self) -> None:
        if not 1 <= self.min_ops <= self.max_ops:
            raise ValueError(f"need 1 <= min_ops <= max_ops, got {self.min_ops}, {self.max_ops}")
        if not 0 <= self.operand_min <= self.operand_max:
            raise ValueError(f"need 0 <= operand_min <= operand_max, got {self.operand_min}, {self.operand_max}")
        if self.max_value < 2 * max(self.operand_max, 1):
            raise ValueError(f"max_value = {self.max_value} must be >= 2 * operand_max = {2 * self.operand_max}")
        bad = [op for op in self.operators if op not in ("+", "-", "*")]
        if bad or not self.operators:
            raise ValueError(f"operators: {bad or 'empty'}; use a subset of ['+', '-', '*']")
        if not 0 <= self.zero_share <= 1:
            raise ValueError(f"zero_share = {self.zero_share} must be in [0, 1]")


@dataclass(frozen=True)
class Chain:
    """A start value and the operations applied to it in order."""

    start: int
    ops: tuple[tuple[str, int], ...]

    @property
    def question(self) -> str:
        # Numbered operations: step N of a solution finds its operation by the label "N)"
        # instead of by counting commas, which small models learn far more easily.
        steps = ", ".join(f"{i}) {op} {b}" for i, (op, b) in enumerate(self.ops, start=1))
        return f"Start with {self.start}. Apply in order: {steps}."

    @property
    def cancelled_steps(self) -> int:
        """How many leading steps a "* 0" cancels (0 if none): their errors never reach the answer."""
        zeros = [i for i, (op, b) in enumerate(self.ops) if op == "*" and b == 0]
        return zeros[-1] if zeros else 0

    def values(self) -> list[int]:
        """The running value after each operation (the last one is the answer)."""
        out, x = [], self.start
        for op, b in self.ops:
            x = apply(x, op, b)
            out.append(x)
        return out

    @property
    def answer(self) -> int:
        return self.values()[-1]


_QUESTION = re.compile(r"Start with (\d+)\. Apply in order: ((?:\d+\) [-+*] \d+(?:, )?)+)\.")
_OPERATION = re.compile(r"(\d+)\) ([-+*]) (\d+)")


def find_question(text: str) -> Chain | None:
    """The chain problem asked in ``text`` (e.g. a critique prompt that quotes it), or None.
    The inverse of ``Chain.question``: ``find_question(chain.question) == chain``."""
    match = _QUESTION.search(text)
    if match is None:
        return None
    ops = [(int(label), op, int(b)) for label, op, b in _OPERATION.findall(match.group(2))]
    if [label for label, _, _ in ops] != list(range(1, len(ops) + 1)):
        return None
    return Chain(int(match.group(1)), tuple((op, b) for _, op, b in ops))


def apply(x: int, op: str, b: int) -> int:
    if op == "+":
        return x + b
    if op == "-":
        return x - b
    if op == "*":
        return x * b
    raise ValueError(f"unknown operator {op!r}")


def _valid_operands(x: int, op: str, spec: ChainSpec) -> list[int]:
    low = max(spec.operand_min, 2) if op == "*" else spec.operand_min  # "* 1" and "* 0" teach nothing
    return [b for b in range(low, spec.operand_max + 1) if 0 <= apply(x, op, b) <= spec.max_value]


def make_chain(rng: random.Random, spec: ChainSpec) -> Chain:
    x = start = rng.randint(spec.operand_min, spec.max_value)
    ops = []
    count = rng.randint(spec.min_ops, spec.max_ops)
    # Drawn only when asked for, so chains without the knob are the ones drawn before it existed.
    zero_at = rng.randint(2, count - 1) if spec.zero_share and count >= 3 and rng.random() < spec.zero_share else 0
    for i in range(1, count + 1):
        if i == zero_at:
            ops.append(("*", 0))
            x = 0
            continue
        choices = [(op, bs) for op in spec.operators if (bs := _valid_operands(x, op, spec))]
        if not choices:  # only with operators that cannot stay in range (e.g. "+" alone at the cap)
            break
        op, bs = rng.choice(choices)
        b = rng.choice(bs)
        ops.append((op, b))
        x = apply(x, op, b)
    if len(ops) < spec.min_ops:
        return make_chain(rng, spec)
    return Chain(start, tuple(ops))


def is_heldout(question: str) -> bool:
    digest = hashlib.sha1(question.encode()).digest()
    return int.from_bytes(digest[:4], "big") % HELDOUT_BUCKETS == 0


class ChainStream:
    """Reproducible chain problems: batch ``i`` of a split depends only on (seed, split, i)."""

    def __init__(self, spec: ChainSpec, seed: int, split: str = "train") -> None:
        if split not in ("train", "heldout"):
            raise ValueError(f"split must be 'train' or 'heldout', got {split!r}")
        self.spec, self.seed, self.split = spec, seed, split

    def chains(self, index: int, size: int) -> list[Chain]:
        rng = random.Random(f"chain:{self.seed}:{self.split}:{index}")
        want_heldout = self.split == "heldout"
        out = []
        while len(out) < size:
            chain = make_chain(rng, self.spec)
            if is_heldout(chain.question) == want_heldout:
                out.append(chain)
        return out

    def batch(self, index: int, size: int) -> list[Problem]:
        return [
            to_problem(chain, f"chain:{self.seed}:{self.split}:{index}:{j}")
            for j, chain in enumerate(self.chains(index, size))
        ]


def to_problem(chain: Chain, uid: str) -> Problem:
    return Problem(uid=uid, question=chain.question, answer=str(chain.answer), source=uid)


def _wrong_value(rng: random.Random, right: int, upward: bool) -> int:
    """A plausible wrong result near the right one (off by 1-3 or by 10), never negative.

    Errors that propagate only go up: later values then stay >= the true ones, which are
    >= 0, so no step ever starts from a negative number ("-2 + 4" reads as "2 + 4" to a
    checker that never takes a leading sign as part of the first operand)."""
    deltas = (1, 2, 3, 10) if upward else (-10, -3, -2, -1, 1, 2, 3, 10)
    candidates = [right + d for d in deltas if right + d >= 0]
    return rng.choice(candidates)


def habit_product(x: int, b: int) -> int:
    """The habit's wrong product for ``x * b``: one multiple too many."""
    return x * (b + 1)


@dataclass(frozen=True)
class SolutionErrors:
    """Per-step probabilities of writing a wrong result: ``propagate`` (later steps build on
    it, the final answer is wrong) and ``slip`` (the next step goes on from the right value;
    never on the last step, where nothing could ignore it), each a value drawn at random.

    ``habit`` is a *systematic* error instead: on a multiplication step, the share of
    solutions that write one multiple too many (``x * b = x * (b + 1)``, later steps build on
    it; never on "* 0", which stays the chain's cancelling step). Random errors leave the
    policy unsure where it errs (its mistakes spread over many values); a habit is one wrong
    value the policy learns to prefer, a confident mistake.
    A habit step is drawn first; the random errors share the remaining draws."""

    propagate: float = 0.0
    slip: float = 0.0
    habit: float = 0.0

    def __post_init__(self) -> None:
        if not (0 <= self.propagate and 0 <= self.slip and self.propagate + self.slip <= 1 and 0 <= self.habit <= 1):
            raise ValueError(f"need propagate, slip >= 0, propagate + slip <= 1 and habit in [0, 1], got {self}")


@dataclass(frozen=True)
class Solution:
    text: str
    wrong_steps: tuple[int, ...]  # 1-based steps whose written result is wrong
    final_correct: bool


def solution_text(chain: Chain, rng: random.Random | None = None, errors: SolutionErrors = SolutionErrors()) -> Solution:
    """The one-operation-per-line solution of ``chain``, with errors drawn per step."""
    rng = rng or random.Random(0)
    lines, wrong_steps, x = [], [], chain.start
    last = len(chain.ops)
    for i, (op, b) in enumerate(chain.ops, start=1):
        right = apply(x, op, b)
        draw = rng.random()
        if op == "*" and b and errors.habit and rng.random() < errors.habit:
            written = next_x = habit_product(x, b)
        elif draw < errors.propagate:
            written = next_x = _wrong_value(rng, right, upward=True)
        elif draw < errors.propagate + errors.slip and i < last:
            written, next_x = _wrong_value(rng, right, upward=False), right
        else:
            written = next_x = right
        if written != right:
            wrong_steps.append(i)
        lines.append(f"Step {i}: {x} {op} {b} = {written}")
        x = next_x
    lines.append(f"The answer is \\boxed{{{x}}}.")
    return Solution("\n".join(lines), tuple(wrong_steps), x == chain.answer)


FEW_SHOT: tuple[Chain, ...] = (
    Chain(7, (("+", 5), ("*", 3), ("-", 4))),
    Chain(20, (("-", 8), ("*", 2), ("+", 9), ("-", 3))),
)


def chain_messages(question: str, few_shot: bool) -> list[dict[str, str]]:
    """System instruction, optionally two worked chains as prior turns, then the question.
    The system prompt is the arithmetic task's: the step format is the same."""
    messages = [{"role": "system", "content": SYSTEM_PROMPT}]
    for demo in FEW_SHOT if few_shot else ():
        messages += [
            {"role": "user", "content": demo.question},
            {"role": "assistant", "content": solution_text(demo).text},
        ]
    messages.append({"role": "user", "content": question})
    return messages
