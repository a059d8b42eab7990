"""vote: K critiques -> per-step penalty weights."""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from capo_ray.core.voting import VOTING_RULES, vote

F = frozenset

# The paper's figure: four critiques of a 3-step response.
PAPER = [F({1, 3}), F({1, 2, 3}), F({1, 3}), F({2, 3})]
# Flag counts c = [3, 2, 4] of m = 4 valid critiques:
#   intersection: c == 4  -> step 3 only
#   union:        c >= 1  -> all three
#   majority:     c > 2   -> steps 1 and 3 (step 2's 2 of 4 is a tie, not a majority)
#   average:      c / 4   -> [0.75, 0.5, 1.0]
PAPER_EXPECTED = {
    "intersection": [0.0, 0.0, 1.0],
    "union": [1.0, 1.0, 1.0],
    "majority": [1.0, 0.0, 1.0],
    "average": [0.75, 0.5, 1.0],
}


@pytest.mark.parametrize("rule", sorted(PAPER_EXPECTED))
def test_paper_worked_example(rule):
    assert vote(PAPER, 3, rule) == PAPER_EXPECTED[rule]


def test_registry_holds_exactly_the_documented_rules():
    assert set(VOTING_RULES) == set(PAPER_EXPECTED)


def test_abstentions_do_not_count():
    # m = 2 valid critiques ({1}, {1, 2}); c = [2, 1]. Majority needs c > 1: step 1 only.
    # Were the Nones counted as "no step wrong", m = 4 and step 1 (2 of 4) would not pass.
    critiques = [None, F({1}), None, F({1, 2})]
    assert vote(critiques, 2, "majority") == [1.0, 0.0]
    assert vote(critiques, 2, "average") == [1.0, 0.5]
    assert vote(critiques, 2, "intersection") == [1.0, 0.0]


@pytest.mark.parametrize("rule", sorted(PAPER_EXPECTED))
def test_all_abstain_or_no_critique_gives_none(rule):
    assert vote([None, None, None, None], 3, rule) is None
    assert vote([], 3, rule) is None


def test_empty_verdicts_mean_no_penalty_not_abstention():
    assert vote([F(), F()], 2, "union") == [0.0, 0.0]


def test_zero_steps():
    assert vote([F(), None], 0, "majority") == []


def test_unknown_rule_lists_valid_rules_even_when_all_abstain():
    with pytest.raises(ValueError, match="average.*intersection.*majority.*union"):
        vote([None], 3, "mode")


def test_step_outside_range_is_a_bug():
    with pytest.raises(ValueError, match="outside 1..3"):
        vote([F({4})], 3, "union")


@pytest.mark.parametrize("num_steps", [-1, 2.0, None])
def test_bad_num_steps(num_steps):
    with pytest.raises(ValueError, match="num_steps"):
        vote([F()], num_steps, "union")


_CRITIQUES = st.integers(0, 6).flatmap(
    lambda s: st.tuples(
        st.just(s),
        st.lists(st.one_of(st.none(), st.frozensets(st.integers(1, max(s, 1)), max_size=s)), max_size=8),
    )
).map(lambda case: (case[0], [c if case[0] or c is None else F() for c in case[1]]))


@settings(max_examples=300, deadline=None)
@given(_CRITIQUES, st.randoms(use_true_random=False))
def test_vote_is_order_invariant_and_rules_nest(case, rng):
    num_steps, critiques = case
    shuffled = list(critiques)
    rng.shuffle(shuffled)
    results = {rule: vote(critiques, num_steps, rule) for rule in VOTING_RULES}
    for rule, weights in results.items():
        assert vote(shuffled, num_steps, rule) == weights
    if all(c is None for c in critiques):
        assert all(weights is None for weights in results.values())
        return
    for i in range(num_steps):
        # Precision to recall: intersection <= majority <= union, and average is 1 exactly
        # where intersection is, 0 exactly where union is.
        assert results["intersection"][i] <= results["majority"][i] <= results["union"][i]
        assert 0.0 <= results["average"][i] <= 1.0
        assert (results["average"][i] == 1.0) == (results["intersection"][i] == 1.0)
        assert (results["average"][i] == 0.0) == (results["union"][i] == 0.0)
