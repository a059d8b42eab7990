import hashlib
import random

import pytest

from capo_ray.config import DataConfig
from capo_ray.config.strict import ConfigError
from capo_ray.critics.arith import check_step
from capo_ray.data.chain import (
    FEW_SHOT,
    Chain,
    ChainSpec,
    ChainStream,
    SolutionErrors,
    chain_messages,
    is_heldout,
    solution_text,
)
from capo_ray.data.prompts_for_task import prompt_messages
from capo_ray.data.sources import make_source
from capo_ray.rewards.exact import exact_verdict


def test_hand_checked_chain_and_its_solution():
    chain = Chain(7, (("+", 5), ("*", 3), ("-", 4)))
    assert chain.question == "Start with 7. Apply in order: 1) + 5, 2) * 3, 3) - 4."
    assert chain.values() == [12, 36, 32] and chain.answer == 32
    sol = solution_text(chain)
    assert sol.text == "Step 1: 7 + 5 = 12\nStep 2: 12 * 3 = 36\nStep 3: 36 - 4 = 32\nThe answer is \\boxed{32}."
    assert sol.wrong_steps == () and sol.final_correct
    assert [check_step(line)[0] for line in sol.text.splitlines()] == [False, False, False, None]
    assert exact_verdict(sol.text, "32").correct
    assert Chain(20, (("-", 8), ("*", 2), ("+", 9), ("-", 3))).answer == 30  # 12, 24, 33, 30


def test_propagating_error_makes_the_answer_wrong_and_the_critic_sees_it():
    chain = Chain(7, (("+", 5), ("*", 3), ("-", 4)))
    sol = solution_text(chain, random.Random(0), SolutionErrors(propagate=1.0))
    assert not sol.final_correct and sol.wrong_steps == (1, 2, 3)
    lines = sol.text.splitlines()
    # each later step starts from the (wrong) value written before it
    first = int(lines[0].split("= ")[1])
    assert first > 12 and lines[1].startswith(f"Step 2: {first} * 3 = ")
    assert not exact_verdict(sol.text, "32").correct
    assert [check_step(line)[0] for line in lines[:3]] == [True, True, True]


def test_slip_is_ignored_by_the_next_step_and_invisible_to_the_outcome():
    chain = Chain(7, (("+", 5), ("*", 3), ("-", 4)))
    sol = solution_text(chain, random.Random(0), SolutionErrors(slip=1.0))
    # slips hit every step but the last (nothing after it could ignore it)
    assert sol.final_correct and sol.wrong_steps == (1, 2)
    lines = sol.text.splitlines()
    assert lines[1].startswith("Step 2: 12 * 3 = ") and lines[2].startswith("Step 3: 36 - 4 = 32")
    assert exact_verdict(sol.text, "32").correct
    assert [check_step(line)[0] for line in lines[:3]] == [True, True, False]


def test_habit_is_one_systematic_wrong_product_that_propagates():
    chain = Chain(7, (("+", 5), ("*", 3), ("-", 4)))
    sol = solution_text(chain, random.Random(0), SolutionErrors(habit=1.0))
    # only the multiplication is wrong, always by one multiple (12 * 4), and step 3 builds on it
    assert sol.text.splitlines()[:3] == ["Step 1: 7 + 5 = 12", "Step 2: 12 * 3 = 48", "Step 3: 48 - 4 = 44"]
    assert sol.wrong_steps == (2,) and not sol.final_correct
    assert [check_step(line)[0] for line in sol.text.splitlines()[:3]] == [False, True, False]
    # at a share below 1 it hits some multiplications and leaves the other steps alone
    rng, hit, mults = random.Random(3), 0, 0
    for _ in range(400):
        sol = solution_text(chain, rng, SolutionErrors(habit=0.5))
        mults += 1
        hit += sol.wrong_steps == (2,)
        assert sol.wrong_steps in ((), (2,))
    assert 0.4 < hit / mults < 0.6


def test_without_a_habit_the_error_draws_are_unchanged():
    # The cached organism-v4 was trained on these draws: with no habit the generator must
    # still write them (digest of the solutions written before the habit knob existed).
    chain = Chain(7, (("+", 5), ("*", 3), ("-", 4)))
    texts = "|".join(solution_text(chain, random.Random(s), SolutionErrors(0.2, 0.3)).text for s in range(20))
    assert hashlib.sha256(texts.encode()).hexdigest()[:16] == "26ad22ddd23f4a71"


def test_a_zero_cancels_the_steps_before_it_so_their_errors_never_reach_the_answer():
    chain = Chain(7, (("*", 3), ("*", 0), ("+", 4)))
    assert chain.cancelled_steps == 1 and chain.answer == 4
    sol = solution_text(chain, random.Random(0), SolutionErrors(habit=1.0))
    # the habit hits the real multiplication, never the "* 0", and the answer is still right
    assert sol.text.splitlines()[:3] == ["Step 1: 7 * 3 = 28", "Step 2: 28 * 0 = 0", "Step 3: 0 + 4 = 4"]
    assert sol.wrong_steps == (1,) and sol.final_correct and exact_verdict(sol.text, "4").correct
    assert [check_step(line)[0] for line in sol.text.splitlines()[:3]] == [True, False, False]  # step 1 flagged
    assert Chain(7, (("*", 3), ("+", 4), ("-", 2))).cancelled_steps == 0


def test_zero_share_puts_one_inner_zero_into_that_share_of_chains():
    spec = ChainSpec(operand_max=5, max_value=20, zero_share=0.5)
    chains = ChainStream(spec, seed=0).chains(0, 400)
    with_zero = [c for c in chains if ("*", 0) in c.ops]
    assert 0.4 < len(with_zero) / len(chains) < 0.6
    for chain in with_zero:
        assert chain.ops.count(("*", 0)) == 1 and 1 <= chain.cancelled_steps <= len(chain.ops) - 2
        assert chain.ops[0] != ("*", 0) and chain.ops[-1] != ("*", 0)  # never the whole chain cancelled
        assert 3 <= len(chain.ops) <= 6 and all(0 <= v <= 20 for v in chain.values())
    # a question with a zero parses back to its chain (the critic reads the question's operations)
    from capo_ray.data.chain import find_question

    assert find_question(with_zero[0].question) == with_zero[0]
    # without the knob no chain has one, and the draws are the ones the cached organisms learned
    plain = ChainStream(ChainSpec(operand_max=5, max_value=20), seed=0).chains(0, 200)
    assert not any(b == 0 for c in plain for _, b in c.ops)
    assert hashlib.sha256("|".join(c.question for c in plain).encode()).hexdigest()[:16] == "3719ce4fb17c8a06"


def test_error_rates_are_roughly_the_configured_share():
    stream = ChainStream(ChainSpec(), seed=0)
    rng = random.Random(1)
    steps = wrong = 0
    for chain in stream.chains(0, 400):
        sol = solution_text(chain, rng, SolutionErrors(propagate=0.1, slip=0.1))
        steps += len(chain.ops)
        wrong += len(sol.wrong_steps)
        for line in sol.text.splitlines()[:-1]:
            assert int(line.split(": ")[1].split()[0]) >= 0  # no step starts from a negative value
    # steps after a propagated error are right about the value they start from (so not
    # wrong steps), and a last step never slips: the share is 0.1 + 0.1 * (1 - 1 / ops)
    assert 0.13 < wrong / steps < 0.2


def test_streams_are_reproducible_disjoint_and_within_the_knobs():
    spec = ChainSpec(min_ops=3, max_ops=5, operand_min=2, operand_max=7, operators=("+", "*"), max_value=60)
    train, again = ChainStream(spec, seed=4), ChainStream(spec, seed=4)
    held = ChainStream(spec, seed=4, split="heldout")
    assert train.batch(3, 16) == again.batch(3, 16)
    assert train.batch(3, 16) != train.batch(4, 16)
    train_q = {p.question for i in range(20) for p in train.batch(i, 32)}
    held_q = {p.question for i in range(10) for p in held.batch(i, 32)}
    assert train_q.isdisjoint(held_q) and len(held_q) > 200
    assert all(is_heldout(q) for q in held_q) and not any(is_heldout(q) for q in train_q)
    lengths = set()
    for chain in train.chains(0, 300):
        lengths.add(len(chain.ops))
        assert 2 <= chain.start <= 60
        assert all(op in "+*" and 2 <= b <= 7 for op, b in chain.ops)
        assert all(0 <= v <= 60 for v in chain.values())
    assert lengths == {3, 4, 5}
    problem = train.batch(0, 1)[0]
    assert problem.uid == "chain:4:train:0:0" and problem.answer.lstrip("-").isdigit()


def test_bad_spec_is_refused():
    with pytest.raises(ValueError, match="max_value"):
        ChainSpec(operand_max=9, max_value=10)
    with pytest.raises(ValueError, match="min_ops"):
        ChainSpec(min_ops=4, max_ops=3)
    with pytest.raises(ValueError, match="split"):
        ChainStream(ChainSpec(), 0, split="test")
    with pytest.raises(ValueError, match="zero_share"):
        ChainSpec(zero_share=1.5)


def test_data_config_selects_the_chain_streams_and_prompt():
    cfg = DataConfig(name="chain", operand_max=9, max_value=99, few_shot=False)
    problems = make_source(cfg).batch(0, 4)
    assert problems == ChainStream(ChainSpec(), 0).batch(0, 4)
    assert make_source(cfg, "heldout").batch(0, 4) == ChainStream(ChainSpec(), 0, "heldout").batch(0, 4)
    msgs = prompt_messages(cfg, problems[0])
    assert [m["role"] for m in msgs] == ["system", "user"] and msgs[-1]["content"] == problems[0].question
    few = chain_messages(problems[0].question, few_shot=True)
    assert len(few) == 2 + 2 * len(FEW_SHOT)
    for demo in few[2:-1:2]:
        assert all(check_step(line)[0] is False for line in demo["content"].splitlines()[:-1])
    with pytest.raises(ValueError, match="heldout"):
        make_source(DataConfig(name="arith"), "heldout")


def test_chain_config_mistakes_name_the_key():
    with pytest.raises(ConfigError, match="data.max_value"):
        DataConfig(name="chain", operand_max=9, max_value=12)
    with pytest.raises(ConfigError, match="data.min_ops"):
        DataConfig(name="chain", min_ops=5, max_ops=4)
    with pytest.raises(ConfigError, match="data.zero_share"):
        DataConfig(name="chain", zero_share=-0.1)
