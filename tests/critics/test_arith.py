"""The arith critic: exact flags on hand-made solutions, and the noise rate it is told."""

import random

from capo_ray.core.critique import parse_critique
from capo_ray.core.voting import vote
from capo_ray.critics.arith import ArithCritic, check_step, critique_steps


def test_checks_each_equation_exactly():
    assert check_step("Step 1: 4 * 5 = 20")[0] is False
    assert check_step("Step 2: 3 + 20 = 24")[0] is True
    assert check_step("Step 1: 6 * 3 - 4 = 14")[0] is False  # precedence: 18 - 4
    assert check_step("(2 + 3) * 4 = 20")[0] is False
    assert check_step("7 / 2 = 3.5")[0] is False
    assert check_step("3 - 5 = -2")[0] is False
    assert check_step("8 × 2 = 18")[0] is True
    assert check_step("The answer is \\boxed{23}.")[0] is None  # nothing to check
    assert check_step("x = 3")[0] is None
    assert check_step("1 / 0 = 5")[0] is None  # unparseable arithmetic is not judged
    assert check_step("9" * 50 + " + 1 = 2")[0] is True  # big ints are exact, no overflow
    assert check_step("9" * 5000 + " * 2 = 2")[0] is None  # absurd literals are not evaluated
    assert check_step("Step 3: 4 * 60 / 5 = 4 * 12 = 48.")[0] is False  # chains, sentence period
    assert check_step("So 29*200 = 5,800 dollars")[0] is False  # thousands commas
    assert check_step("6 * 7 = $41")[0] is True  # money


def test_hand_made_solution_gets_exact_flags():
    steps = ["Step 1: 4 * 5 = 21", "Step 2: 3 + 21 = 24", "Step 3: 24 - 4 = 19", "The answer is \\boxed{19}."]
    # step 1 is wrong (20), step 2 is right given step 1, step 3 is wrong (20)
    texts = critique_steps(steps, k=3, flip_noise=0.0, rng=random.Random(0))
    assert len(texts) == 3
    for text in texts:
        assert text.splitlines()[-1] == "Wrong step list: [1, 3]"
        assert parse_critique(text, len(steps)) == frozenset({1, 3})


def test_flip_noise_rate_matches_the_rate_set():
    steps = [f"Step {i}: {i} + 1 = {i + 1}" for i in range(1, 11)]  # all right
    critic = ArithCritic(k=4, flip_noise=0.2, seed=123)
    results = critic.critique(None, [steps] * 250)
    flags = sum(len(parse_critique(t, len(steps))) for r in results for t in r.texts)
    total = 250 * 4 * len(steps)
    # 10,000 Bernoulli(0.2) draws: std of the rate is 0.004, so 0.2 +- 0.02 is 5 sigma
    assert abs(flags / total - 0.2) < 0.02


def test_noise_is_voted_away():
    steps = ["1 + 1 = 3", "2 + 2 = 4", "3 + 3 = 6"]
    critic = ArithCritic(k=8, flip_noise=0.1, seed=7)
    agree = 0
    for result in critic.critique(None, [steps] * 200):
        weights = vote([parse_critique(t, 3) for t in result.texts], 3, "majority")
        agree += weights == [1.0, 0.0, 0.0]
    assert agree / 200 > 0.9  # a single critique is exact only 0.9^3 = 73% of the time
