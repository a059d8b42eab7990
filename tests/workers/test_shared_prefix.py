"""sequence_logprobs(share_prefix=True): a group's shared prompt runs once, and the log probs,
entropies and gradients equal those of the plain per-row forward."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch

from capo_ray.workers.forward import MIN_SHARED_PREFIX, sequence_logprobs, shared_prefix_length
sys.path.insert(0, str(Path(__file__).parent))
from prompt_groups import PROMPT, prompt_group, tiny_eval_model  # noqa: E402


@pytest.fixture(scope="module")
def model():
    return tiny_eval_model()


_group = prompt_group


def test_shared_prefix_length():
    ids, attention, _ = _group()
    assert shared_prefix_length(ids, attention, limit=100) == PROMPT
    assert shared_prefix_length(ids, attention, limit=7) == 7
    assert shared_prefix_length(ids[:1], attention[:1], limit=100) == 0  # one row: nothing to share
    ids[2, 3] += 1
    assert shared_prefix_length(ids, attention, limit=100) == 3
    padded = attention.clone()
    padded[1, :2] = 0  # left padding is not a shared real token
    assert shared_prefix_length(ids, padded, limit=100) == 0


def test_same_logprobs_and_entropy_as_plain_forward(model):
    ids, attention, response = _group()
    with torch.no_grad():
        plain, ent_plain = sequence_logprobs(model, ids, attention, 4, 0.7, True, response)
        shared, ent_shared = sequence_logprobs(model, ids, attention, 4, 0.7, True, response, share_prefix=True)
    assert plain.abs().sum() > 0
    torch.testing.assert_close(shared * response, plain * response, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(ent_shared * response, ent_plain * response, atol=1e-5, rtol=1e-5)


def test_same_gradients_as_plain_forward(model):
    ids, attention, response = _group()
    grads = []
    for share in (False, True):
        model.zero_grad()
        lp = sequence_logprobs(model, ids, attention, 4, response_mask=response, share_prefix=share)
        (lp * response).sum().backward()
        grads.append({n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None})
    assert grads[0].keys() == grads[1].keys() and grads[0]
    for name, g in grads[0].items():
        torch.testing.assert_close(grads[1][name], g, atol=1e-4, rtol=1e-4, msg=name)
    model.zero_grad()


def test_short_or_missing_prefix_falls_back_to_plain(model):
    ids, attention, response = _group()
    ids[1, MIN_SHARED_PREFIX // 2] += 1  # common prefix shorter than worth sharing
    other = torch.randint(0, 2000, ids.shape, generator=torch.Generator().manual_seed(1))
    for batch in (ids, other):
        with torch.no_grad():
            plain = sequence_logprobs(model, batch, attention, 4, response_mask=response)
            shared = sequence_logprobs(model, batch, attention, 4, response_mask=response, share_prefix=True)
        torch.testing.assert_close(shared, plain, atol=1e-5, rtol=1e-5)
