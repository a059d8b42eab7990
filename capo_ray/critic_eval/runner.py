"""The critic evaluation core: judge every benchmark solution once with K = max(ks) critiques,
then score every (voting rule, k) from the first k of them.

Why one K-critique request serves every k: the K samples of one request (vLLM ``n = K``, the
trainer's own way of asking, docs/algorithm.md, step 4) are independent draws given the prompt, so its
first k critiques are distributed exactly like a request with ``n = k`` (not bit-identical to
one: the engine's random stream differs). One run thus prices k = 1, 2, 4, 8 at the cost of
k = 8, and the rows of a table differ only by k, not by which samples were drawn.

Votes use the trainer's rules (``capo_ray.core.voting``). ``average`` gives a weight in [0, 1];
to score it as flags, a step counts as flagged when its weight is >= ``FLAG_THRESHOLD`` (at
least half of the valid critiques flag it; unlike ``majority``, a tie counts). Binary rules
give weights of 0 or 1, so the same threshold reads them unchanged.

No ray, vllm, transformers or hydra here: the critic is any ``CritiqueFn`` (the in-process
arith checker, a vLLM ``CriticWorker``, a pool of them behind Ray, or a test's script).

Legend: N solutions, S steps of a solution, K critiques per solution (K = max(ks)).
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from typing import Any, Callable, Sequence

from capo_ray.core.critique import build_critique_messages, parse_critique
from capo_ray.core.voting import vote
from capo_ray.critic_eval.metrics import CriticScores, score_critic
from capo_ray.critic_eval.step_errors import StepErrorExample
from capo_ray.records import CritiqueResult

log = logging.getLogger(__name__)

FLAG_THRESHOLD = 0.5  # "average": flagged when at least half of the valid critiques flag the step

# critique_fn(messages [N chat prompts], step_texts [N lists of S steps]) -> [N results of K texts]:
# the call every critic backend offers (ArithCritic, LLMCriticPool), with K fixed by the backend.
CritiqueFn = Callable[[list[list[dict[str, str]]], list[list[str]]], list[CritiqueResult]]
Verdict = frozenset[int] | None  # one critique's wrong steps (1-based); None: failed or unreadable


@dataclass(frozen=True)
class JudgedExample:
    """One benchmark solution, its K critiques and their parsed verdicts (K entries)."""

    example: StepErrorExample
    critique: CritiqueResult
    verdicts: tuple[Verdict, ...]


@dataclass(frozen=True)
class CellScore:
    """The scores of one (voting rule, k) over the whole benchmark."""

    rule: str
    k: int
    scores: CriticScores
    critic_tokens_per_solution: float  # prompt (prefilled once) + k critiques' completions


@dataclass(frozen=True)
class CritiqueStats:
    """What the judge returned, over all N x K critiques (independent of rule and k)."""

    solutions: int
    critiques_per_solution: int
    failed_requests: int  # whole requests that errored or timed out (all K texts None)
    failed_critiques: int  # texts that are None
    unparseable_critiques: int  # texts with no readable verdict
    parse_rate: float  # readable verdicts / all critiques
    prompt_tokens: int
    completion_tokens: int
    seconds: float  # judge compute time as the backend reports it (0 for arith)
    example_error: str | None  # one failed request's message, for the report


@dataclass(frozen=True)
class EvalSetup:
    """What was evaluated, for the report header."""

    judge: str  # a label, e.g. "arith (flip_noise=0.2)"
    split: str
    seed: int
    error_fraction: float
    use_reference_answer: bool
    dataset: str | None = None  # an outside step-labelled file (its name and format); None: GSM8K


@dataclass
class CriticEvalResult:
    setup: EvalSetup
    ks: list[int]
    rules: list[str]
    cells: list[CellScore]  # rules in the given order, k ascending within a rule
    stats: CritiqueStats
    judged: list[JudgedExample]
    fixed_voters: int = 0  # trailing verdicts of each solution that vote with every k

    @property
    def n_erroneous(self) -> int:
        return sum(j.example.first_error is not None for j in self.judged)


def critique_messages(example: StepErrorExample, use_reference_answer: bool, template: Any = None) -> list[dict[str, str]]:
    """``template``: a ``PromptTemplate`` (critics/prompt_template.py); None: the built-in prompt."""
    reference = example.reference_answer if use_reference_answer else None
    build = build_critique_messages if template is None else template.messages
    return build(example.question, example.steps, reference)


def judge_examples(
    examples: Sequence[StepErrorExample],
    critique_fn: CritiqueFn,
    k_max: int,
    use_reference_answer: bool,
    batch_size: int,
    template: Any = None,
    fixed_voters: int = 0,
) -> list[JudgedExample]:
    """K = ``k_max`` critiques of every example (plus ``fixed_voters``: see ``vote_first_k``),
    in batches of ``batch_size`` calls, parsed."""
    judged: list[JudgedExample] = []
    for lo in range(0, len(examples), batch_size):
        batch = examples[lo : lo + batch_size]
        messages = [critique_messages(e, use_reference_answer, template) for e in batch]
        results = critique_fn(messages, [list(e.steps) for e in batch])
        _check_results(results, len(batch), k_max, fixed_voters)
        for example, result in zip(batch, results):
            verdicts = tuple(None if t is None else parse_critique(t, len(example.steps)) for t in result.texts)
            judged.append(JudgedExample(example, result, verdicts))
        log.info("judged %d/%d solutions", len(judged), len(examples))
    return judged


def _check_results(results: list[CritiqueResult], n: int, k_max: int, fixed: int = 0) -> None:
    # A backend set up with another k would silently score the wrong thing: refuse instead.
    if len(results) != n:
        raise ValueError(f"the critic returned {len(results)} results for {n} solutions")
    sizes = sorted({len(r.texts) for r in results})
    if sizes != [k_max + fixed]:
        extra = f" plus {fixed} fixed voters" if fixed else ""
        raise ValueError(f"the critic returned {sizes} critiques per solution; expected K = max(ks) = {k_max}{extra}")


def vote_first_k(verdicts: Sequence[Verdict], num_steps: int, k: int, rule: str, fixed: int = 0) -> list[float] | None:
    """Per-step weights [S] from the first ``k`` verdicts under ``rule``; None if all abstain.

    The last ``fixed`` verdicts vote with every k: a hybrid judge's checker in voter mode is
    one deterministic voter beside the k sampled critiques, whatever k is.
    """
    sampled = len(verdicts) - fixed
    if not 1 <= k <= sampled:
        raise ValueError(f"k = {k} needs 1 <= k <= {sampled} (the critiques sampled)")
    return vote(list(verdicts[:k]) + list(verdicts[sampled:]), num_steps, rule)


def flagged_steps(weights: list[float] | None) -> frozenset[int] | None:
    """The 1-based steps whose weight reaches ``FLAG_THRESHOLD``; None (abstained) stays None."""
    if weights is None:
        return None
    return frozenset(i for i, w in enumerate(weights, start=1) if w >= FLAG_THRESHOLD)


def tokens_for_k(critique: CritiqueResult, k: int, k_max: int) -> float:
    """Judge tokens one request with n = k would cost: the prompt once (the k samples share its
    prefill) plus k critiques of the mean completion length measured over the K sampled."""
    return critique.prompt_tokens + critique.completion_tokens * k / k_max


def score_cells(
    judged: Sequence[JudgedExample], ks: Sequence[int], rules: Sequence[str], fixed_voters: int = 0
) -> list[CellScore]:
    """Scores of every (rule, k): rules in the given order, k ascending within each."""
    if not judged:
        raise ValueError("score_cells: no judged solutions")
    k_max = len(judged[0].verdicts) - fixed_voters
    labels = [j.example for j in judged]
    cells = []
    for rule in rules:
        for k in sorted(ks):
            predictions = [
                flagged_steps(vote_first_k(j.verdicts, len(j.example.steps), k, rule, fixed_voters)) for j in judged
            ]
            tokens = sum(tokens_for_k(j.critique, k, k_max) for j in judged) / len(judged)
            cells.append(CellScore(rule, k, score_critic(predictions, labels), tokens))
    return cells


def critique_stats(judged: Sequence[JudgedExample]) -> CritiqueStats:
    total = sum(len(j.verdicts) for j in judged)
    failed = sum(t is None for j in judged for t in j.critique.texts)
    readable = sum(v is not None for j in judged for v in j.verdicts)
    errors = [j.critique.error for j in judged if j.critique.error is not None]
    return CritiqueStats(
        solutions=len(judged),
        critiques_per_solution=len(judged[0].verdicts) if judged else 0,
        failed_requests=len(errors),
        failed_critiques=failed,
        unparseable_critiques=total - failed - readable,
        parse_rate=readable / total if total else math.nan,
        prompt_tokens=sum(j.critique.prompt_tokens for j in judged),
        completion_tokens=sum(j.critique.completion_tokens for j in judged),
        seconds=sum(j.critique.seconds for j in judged),
        example_error=errors[0] if errors else None,
    )


def evaluate_critic(
    examples: Sequence[StepErrorExample],
    critique_fn: CritiqueFn,
    ks: Sequence[int],
    rules: Sequence[str],
    setup: EvalSetup,
    batch_size: int = 64,
    template: Any = None,
    fixed_voters: int = 0,
) -> CriticEvalResult:
    """Judge ``examples`` once with K = max(ks) critiques each, then score every (rule, k)."""
    if not examples or not ks or not rules:
        got = f"{len(examples)} examples, ks {list(ks)}, rules {list(rules)}"
        raise ValueError(f"evaluate_critic: need examples, ks and rules; got {got}")
    judged = judge_examples(examples, critique_fn, max(ks), setup.use_reference_answer, batch_size, template, fixed_voters)
    cells = score_cells(judged, ks, rules, fixed_voters)
    return CriticEvalResult(setup, sorted(ks), list(rules), cells, critique_stats(judged), judged, fixed_voters)
