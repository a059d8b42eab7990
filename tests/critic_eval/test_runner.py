"""The (voting rule, k) derivation of the critic evaluation against hand-computed values, with
a scripted critic (no model): first-k votes, the average threshold, abstentions, token costs."""

from __future__ import annotations

import json
import math
import subprocess
import sys

import pytest

from capo_ray.critic_eval.runner import (
    EvalSetup,
    critique_stats,
    evaluate_critic,
    flagged_steps,
    tokens_for_k,
    vote_first_k,
)
from capo_ray.critic_eval.step_errors import StepErrorExample
from capo_ray.records import CritiqueResult

RULES = ["intersection", "union", "majority", "average"]
KS = [1, 2, 4]
SETUP = EvalSetup("scripted", "test", 0, 0.5, use_reference_answer=True)


def _example(uid: str, n_steps: int, first_error: int | None) -> StepErrorExample:
    wrong = frozenset() if first_error is None else frozenset({first_error})
    steps = [f"{uid} step {i}: 1 + {i} = {1 + i}" for i in range(1, n_steps + 1)]
    return StepErrorExample(uid, f"question {uid}", steps, "42", first_error, wrong, "41" if wrong else "42")


# A: 3 steps, step 2 wrong.  B: 2 steps, clean.  C: 2 steps, step 1 wrong; its request failed.
EXAMPLES = [_example("A", 3, 2), _example("B", 2, None), _example("C", 2, 1)]
SCRIPT = {
    # verdicts {2}, {2,3}, unreadable, {}           prompt 100 + completion 40 tokens
    "A": CritiqueResult(["Wrong step list: [2]", "Wrong step list: [2, 3]", "no verdict here", "Wrong step list: []"], 100, 40),
    # verdicts {1}, failed, {}, {1}                 prompt 50 + completion 20 tokens
    "B": CritiqueResult(["Wrong step list: [1]", None, "Wrong step list: []", "Wrong step list: [1]"], 50, 20),
    "C": CritiqueResult([None] * 4, error="critic timeout after 600 s"),
}  # fmt: skip


class ScriptedCritic:
    """Answers from SCRIPT (K = 4) and records each call's messages."""

    def __init__(self) -> None:
        self.calls: list[list[list[dict[str, str]]]] = []

    def __call__(self, messages, step_texts):
        self.calls.append(messages)
        return [SCRIPT[steps[0].split()[0]] for steps in step_texts]


@pytest.fixture(scope="module")
def result():
    return evaluate_critic(EXAMPLES, ScriptedCritic(), KS, RULES, SETUP, batch_size=2)


def _cell(result, rule, k):
    (cell,) = [c for c in result.cells if (c.rule, c.k) == (rule, k)]
    return cell.scores


# Flags per (rule, k), from the verdicts above ("-" = abstained):
#   A k=1 [{2}]: counts [0,1,0] of 1 valid -> every rule {2}
#   A k=2 [{2},{2,3}]: counts [0,2,1] of 2 -> intersection {2}, union {2,3}, majority (2c > 2) {2},
#         average weights [0, 1, .5] -> {2,3} (a tie reaches the 0.5 threshold)
#   A k=4 [{2},{2,3},None,{}]: counts [0,2,1] of 3 valid -> intersection {}, union {2,3},
#         majority (2c > 3) {2}, average [0, 2/3, 1/3] -> {2}
#   B k=1 [{1}] and k=2 [{1},None]: {1} under every rule
#   B k=4 [{1},None,{},{1}]: counts [2,0] of 3 -> intersection {}, union/majority/average {1}
#   C: every critique failed -> abstains for every rule and k
FLAGS = {
    ("intersection", 1): ({2}, {1}), ("intersection", 2): ({2}, {1}), ("intersection", 4): (set(), set()),
    ("union", 1): ({2}, {1}), ("union", 2): ({2, 3}, {1}), ("union", 4): ({2, 3}, {1}),
    ("majority", 1): ({2}, {1}), ("majority", 2): ({2}, {1}), ("majority", 4): ({2}, {1}),
    ("average", 1): ({2}, {1}), ("average", 2): ({2, 3}, {1}), ("average", 4): ({2}, {1}),
}  # fmt: skip


@pytest.mark.parametrize("rule, k", list(FLAGS))
def test_first_k_flags_per_rule(result, rule, k):
    a, b, c = result.judged
    assert flagged_steps(vote_first_k(a.verdicts, 3, k, rule)) == FLAGS[rule, k][0]
    assert flagged_steps(vote_first_k(b.verdicts, 2, k, rule)) == FLAGS[rule, k][1]
    assert vote_first_k(c.verdicts, 2, k, rule) is None and flagged_steps(None) is None


def test_average_weights_are_the_flag_fractions(result):
    a = result.judged[0]
    assert vote_first_k(a.verdicts, 3, 2, "average") == [0.0, 1.0, 0.5]
    assert vote_first_k(a.verdicts, 3, 4, "average") == pytest.approx([0.0, 2 / 3, 1 / 3])


# Scores (C abstains: out of the step counts, a miss for first-error accuracy):
#   flags A {2}, B {1}:    tp 1, fp 1, fn 0 -> P 1/2, R 1, F1 2/3; 1st err: A hit, C miss -> 1/2;
#                          B flagged though clean -> 0/1; 1st-err F1 = hm(1/2, 0) = 0
#   flags A {2,3}, B {1}:  tp 1, fp 2 -> P 1/3, R 1, F1 1/2; first errors as above
#   flags A {}, B {}:      tp 0, fp 0, fn 1 -> P NaN (no flag at all), R 0, F1 NaN;
#                          1st err: A miss, C miss -> 0/2; B right -> 1/1; F1 hm(0, 1) = 0
HALF = (1 / 2, 1.0, 2 / 3)
THIRD = (1 / 3, 1.0, 1 / 2)
PRF = {
    ("intersection", 1): HALF, ("intersection", 2): HALF, ("union", 1): HALF, ("union", 2): THIRD,
    ("union", 4): THIRD, ("majority", 1): HALF, ("majority", 2): HALF, ("majority", 4): HALF,
    ("average", 1): HALF, ("average", 2): THIRD, ("average", 4): HALF,
}  # fmt: skip


@pytest.mark.parametrize("rule, k", list(PRF))
def test_step_and_first_error_scores(result, rule, k):
    s = _cell(result, rule, k)
    assert (s.step_precision, s.step_recall, s.step_f1) == pytest.approx(PRF[rule, k])
    assert (s.first_error_acc_erroneous, s.first_error_acc_correct, s.first_error_f1) == (0.5, 0.0, 0.0)
    assert (s.n_examples, s.n_abstained) == (3, 1) and s.abstain_rate == pytest.approx(1 / 3)


def test_a_rule_that_flags_nothing_has_no_precision(result):
    s = _cell(result, "intersection", 4)
    assert math.isnan(s.step_precision) and s.step_recall == 0.0 and math.isnan(s.step_f1)
    assert (s.first_error_acc_erroneous, s.first_error_acc_correct, s.first_error_f1) == (0.0, 1.0, 0.0)


def test_cells_in_rule_order_then_k_and_tokens_per_solution(result):
    assert [(c.rule, c.k) for c in result.cells] == [(r, k) for r in RULES for k in KS]
    # A: 100 + 40 k/4, B: 50 + 20 k/4, C: 0 -> means over 3: k=1 (110 + 55) / 3 = 55, k=2 60, k=4 70
    tokens = {c.k: c.critic_tokens_per_solution for c in result.cells if c.rule == "majority"}
    assert tokens == pytest.approx({1: 55.0, 2: 60.0, 4: 70.0})
    assert tokens_for_k(SCRIPT["A"], 1, 4) == 110.0


def test_critique_stats_count_failures_and_unparseable(result):
    st = critique_stats(result.judged)
    # 12 critiques: failed 1 (B) + 4 (C) = 5; readable 3 (A) + 3 (B) = 6; unparseable 12 - 5 - 6 = 1
    assert (st.solutions, st.critiques_per_solution) == (3, 4)
    assert (st.failed_requests, st.failed_critiques, st.unparseable_critiques) == (1, 5, 1)
    assert st.parse_rate == 0.5 and (st.prompt_tokens, st.completion_tokens) == (150, 60)
    assert st.example_error == "critic timeout after 600 s" and result.stats == st
    assert result.n_erroneous == 2 and result.ks == KS


def test_batches_and_reference_answer_in_the_prompt():
    critic = ScriptedCritic()
    evaluate_critic(EXAMPLES, critic, KS, ["union"], SETUP, batch_size=2)
    assert [len(call) for call in critic.calls] == [2, 1]
    user = critic.calls[0][0][1]["content"]
    assert "## Reference answer\n42" in user and "Step 3: A step 3: 1 + 3 = 4" in user
    hidden = EvalSetup("scripted", "test", 0, 0.5, use_reference_answer=False)
    critic = ScriptedCritic()
    evaluate_critic(EXAMPLES[:1], critic, [4], ["union"], hidden)
    assert "Reference answer" not in critic.calls[0][0][1]["content"]


def test_a_critic_with_the_wrong_k_or_count_is_refused():
    with pytest.raises(ValueError, match=r"returned \[4\] critiques per solution; expected K = max\(ks\) = 8"):
        evaluate_critic(EXAMPLES, ScriptedCritic(), [1, 8], RULES, SETUP)
    with pytest.raises(ValueError, match="returned 0 results for 3 solutions"):
        evaluate_critic(EXAMPLES, lambda messages, steps: [], [4], RULES, SETUP)
    with pytest.raises(ValueError, match="k = 5 needs 1 <= k <= 4"):
        vote_first_k((frozenset(),) * 4, 2, 5, "union")
    with pytest.raises(ValueError, match="unknown voting rule 'mean'; valid rules"):
        evaluate_critic(EXAMPLES, ScriptedCritic(), [4], ["mean"], SETUP)


def test_runner_and_report_import_no_distributed_stack():
    # Fresh interpreter: this process may hold ray etc. from other tests (docs/architecture.md, a pure core).
    probe = (
        "import json, sys\nimport capo_ray.critic_eval.runner, capo_ray.critic_eval.report, capo_ray.critic_eval.config\n"
        "print(json.dumps(sorted({m.split('.')[0] for m in sys.modules})))"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    roots = set(json.loads(done.stdout.strip().splitlines()[-1]))
    assert not roots & {"ray", "vllm", "deepspeed", "transformers", "hydra", "omegaconf"}
