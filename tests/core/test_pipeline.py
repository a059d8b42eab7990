"""One prompt group through the whole core, text to advantages, checked by hand."""

import math
import re

import torch

from capo_ray.core import (
    group_advantages,
    parse_critique,
    split_steps,
    token_rewards,
    token_step_spans,
    vote,
)


def _offsets(text):
    """Toy incremental detokenization: runs of non-space and runs of space are tokens,
    followed by a zero-width EOS."""
    offsets = [match.span() for match in re.finditer(r"\S+|\s+", text)]
    return offsets + [(len(text), len(text))]


def _credit(text, correct, critiques):
    steps = split_steps(text)
    offsets = _offsets(text)
    spans = token_step_spans(steps, offsets)
    penalty = vote([parse_critique(c, len(steps)) for c in critiques], len(steps), "majority")
    return token_rewards(correct, spans, penalty, len(offsets))


def test_group_of_two_from_text_to_advantages():
    # A (correct): tokens x=2 | \n\n | y=5 | \n\n | ans | " " | 7 | EOS  -> steps at tokens
    # 0, 2, 4..6. Critiques {2}, {2}, unreadable, {}: m = 3, step 2 has 2 > 1.5 flags.
    # Credit: 2 everywhere, 2 - 1 = 1 on token 2.
    a = _credit(
        "x=2\n\ny=5\n\nans 7",
        True,
        [
            "Step 2 adds wrongly.\nWrong step list: [2]",
            "Wrong steps: 2",
            "I am not sure.",
            "Wrong step list: []",
        ],
    )
    assert a.tolist() == [2, 2, 1, 2, 2, 2, 2, 2]
    # B (wrong): tokens x=3 | \n\n | ans | " " | 9 | EOS; all four critiques flag step 1.
    # Credit: 0 everywhere, -1 on token 0.
    b = _credit("x=3\n\nans 9", False, ["Wrong step list: [1]"] * 4)
    assert b.tolist() == [-1, 0, 0, 0, 0, 0]

    rewards = torch.zeros(2, 8)
    rewards[0], rewards[1, :6] = a, b
    mask = torch.tensor([[1.0] * 8, [1.0] * 6 + [0.0] * 2])
    advantages = group_advantages(rewards, mask, torch.tensor([0, 0]), eps=1e-12)
    # 14 tokens summing to 15 - 1 = 14: mean 1. Squared deviations: A 7 * 1 + 0, B 4 + 5 * 1:
    # 16 in all, population var 16 / 14 = 8 / 7, std = sqrt(8 / 7) ~ 1.069.
    std = math.sqrt(8 / 7)
    expected = torch.tensor(
        [[1, 1, 0, 1, 1, 1, 1, 1], [-2, -1, -1, -1, -1, -1, 0, 0]], dtype=torch.float32
    ) / std
    torch.testing.assert_close(advantages, expected)
