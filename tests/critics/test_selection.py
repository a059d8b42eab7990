"""Judge cost control: critique_on, the token budget's order, repeats judged once."""

import pytest

from capo_ray.critics.selection import budget_order, estimate_tokens, select_for_judging


def test_budget_order_incorrect_first_then_round_robin_over_groups():
    # batch: group 0 = [0 wrong, 1 right, 2 wrong], group 1 = [3 wrong, 4 wrong, 5 right]
    correct = [False, True, False, False, False, True]
    groups = [0, 0, 0, 1, 1, 1]
    # wrong ones round-robin: g0 -> 0, g1 -> 3, g0 -> 2, g1 -> 4; then right: g0 -> 1, g1 -> 5
    assert budget_order(correct, groups) == [0, 3, 2, 4, 1, 5]


@pytest.mark.parametrize("on, judged, skipped", [("all", [0, 1, 2, 3], 0), ("incorrect", [0, 2], 2), ("correct", [1, 3], 2)])
def test_critique_on_filters(on, judged, skipped):
    correct = [False, True, False, True]
    sel = select_for_judging([0, 1, 2, 3], correct, [0, 0, 1, 1], [10.0] * 4, ["a", "b", "c", "d"], on, 0)
    assert sel.judged == judged and sel.skipped_by_filter == skipped and sel.skipped_by_budget == 0
    assert sel.estimated_tokens == 10.0 * len(judged)


def test_budget_stops_in_the_stated_order_and_repeats_are_free():
    correct = [False, False, True, False]
    groups = [0, 1, 0, 1]
    keys = ["a", "a", "c", "d"]  # responses 0 and 1 are the same critique prompt
    # order: wrong g0 -> 0, g1 -> 1, g1 -> 3, then right 2. Budget 25 at 10 each: 0 (10),
    # 1 (a repeat of 0: free), 3 (20), then 2 would make 30 > 25: stop.
    sel = select_for_judging([0, 1, 2, 3], correct, groups, [10.0] * 4, keys, "all", 25)
    assert sel.judged == [0, 1, 3] and sel.skipped_by_budget == 1 and sel.estimated_tokens == 20.0


def test_candidates_without_steps_are_never_chosen():
    sel = select_for_judging([1], [False, False], [0, 0], [5.0, 5.0], ["a", "b"], "all", 0)
    assert sel.judged == [1]


def test_estimate_counts_prompt_and_k_full_critiques():
    assert estimate_tokens(400, k=4, max_tokens=256) == 100 + 4 * 256
