"""The arith critic's checks against a chain question: what arithmetic alone cannot see."""

from __future__ import annotations

import random

from capo_ray.core.critique import build_critique_messages, parse_critique
from capo_ray.critics.arith import ArithCritic
from capo_ray.critics.chain_steps import chain_step_errors
from capo_ray.data.chain import Chain, find_question, solution_text, SolutionErrors

CHAIN = Chain(38, (("-", 5), ("+", 6), ("+", 1), ("-", 8)))  # 33, 39, 40, 32


def test_find_question_inverts_the_question_text():
    assert find_question(CHAIN.question) == CHAIN
    assert find_question(f"Problem: {CHAIN.question}\nReference answer: 32") == CHAIN
    assert find_question("Compute 3 + 4.") is None
    assert find_question("Start with 3. Apply in order: 2) + 1.") is None  # labels out of order


def test_a_right_solution_and_a_recovered_slip_pass():
    steps = solution_text(CHAIN).text.splitlines()
    assert chain_step_errors(CHAIN, steps) == [None] * 5
    # A slip the next step ignores: only the slip's arithmetic is wrong (left to check_step).
    slipped = ["Step 1: 38 - 5 = 31", "Step 2: 33 + 6 = 39", "Step 3: 39 + 1 = 40", "Step 4: 40 - 8 = 32",
               "The answer is \\boxed{32}."]
    assert chain_step_errors(CHAIN, slipped) == [None] * 5
    # A propagated error: later steps build on the written value, consistently.
    propagated = ["Step 1: 38 - 5 = 34", "Step 2: 34 + 6 = 40", "Step 3: 40 + 1 = 41", "Step 4: 41 - 8 = 33",
                  "The answer is \\boxed{33}."]
    assert chain_step_errors(CHAIN, propagated) == [None, None, None, None, "the answer is 32, not 33"]


def test_errors_with_arithmetic_that_holds_are_found():
    copied = ["Step 1: 38 - 5 = 33", "Step 2: 33 + 6 = 39", "Step 3: 39 - 5 = 34"]
    assert chain_step_errors(CHAIN, copied)[2] == "applies - 5, but operation 3 is + 1"
    jumped = ["Step 1: 38 - 5 = 33", "Step 2: 30 + 6 = 36"]
    assert chain_step_errors(CHAIN, jumped)[1] == "starts from 30, not from the previous result 33"
    skipped = ["Step 1: 38 - 5 = 33", "Step 3: 33 + 1 = 34"]
    assert chain_step_errors(CHAIN, skipped)[1] == "comes after step 1: expected step 2"
    early = ["Step 1: 38 - 5 = 33", "The answer is \\boxed{33}."]
    assert chain_step_errors(CHAIN, early) == [None, "the answer is 32, not 33"]
    extra = solution_text(CHAIN).text.splitlines()[:4] + ["Step 5: 32 + 1 = 33"]
    assert chain_step_errors(CHAIN, extra)[4] == "the problem has only 4 operations"


def test_the_critic_reads_the_question_from_its_prompt():
    steps = ["Step 1: 38 - 5 = 33", "Step 2: 33 + 6 = 39", "Step 3: 39 - 5 = 34", "Step 4: 34 - 8 = 26",
             "The answer is \\boxed{26}."]
    messages = build_critique_messages(CHAIN.question, steps, "32")
    (checked,) = ArithCritic(k=1, flip_noise=0.0, seed=0).critique([messages], [steps]).__iter__()
    assert parse_critique(checked.texts[0], len(steps)) == frozenset({3, 5})
    assert "operation 3 is + 1" in checked.texts[0]
    (arith_only,) = ArithCritic(k=1, flip_noise=0.0, seed=0, check_question=False).critique([messages], [steps])
    assert parse_critique(arith_only.texts[0], len(steps)) == frozenset()


def test_generated_wrong_steps_are_flagged_where_they_were_written():
    rng = random.Random(3)
    errors = SolutionErrors(propagate=0.2, slip=0.2)
    for _ in range(50):
        solution = solution_text(CHAIN, rng, errors)
        steps = solution.text.splitlines()
        messages = build_critique_messages(CHAIN.question, steps, "32")
        (result,) = ArithCritic(k=1, flip_noise=0.0, seed=0).critique([messages], [steps])
        flagged = parse_critique(result.texts[0], len(steps))
        want = set(solution.wrong_steps) | ({len(steps)} if not solution.final_correct else set())
        assert flagged == want, solution.text
