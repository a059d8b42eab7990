"""sequence_logprobs (shared by learner and reference): TrainBatch alignment against a plain
HF forward, micro-batch invariance, logit slicing, padding, temperature, entropy, gradients."""

from __future__ import annotations

import pytest
import torch

from capo_ray.models.tiny import tiny_model_path
from capo_ray.workers.forward import first_scored_position, sequence_logprobs


@pytest.fixture(scope="module")
def model():
    from transformers import AutoModelForCausalLM

    return AutoModelForCausalLM.from_pretrained(tiny_model_path(), dtype=torch.float32).eval()


def _inputs(rows: int = 3, length: int = 9):
    gen = torch.Generator().manual_seed(0)
    ids = torch.randint(0, 2000, (rows, length), generator=gen)
    attention = torch.ones(rows, length, dtype=torch.long)
    attention[1, 6:] = 0  # row 1 is right-padded after 6 tokens
    return ids, attention


def _plain_logprobs(model, ids, attention, temperature=1.0):
    """Reference by the textbook route: full log_softmax, shift by one, gather."""
    with torch.no_grad():
        logits = model(input_ids=ids, attention_mask=attention).logits[:, :-1] / temperature
    picked = torch.log_softmax(logits, dim=-1).gather(-1, ids[:, 1:, None])[..., 0]  # [B, L-1]
    return torch.cat([torch.zeros(ids.shape[0], 1), picked], dim=1) * attention  # [B, L]


def test_alignment_matches_plain_forward(model):
    ids, attention = _inputs()
    with torch.no_grad():
        got = sequence_logprobs(model, ids, attention, micro_batch_size=2)
    assert got.shape == ids.shape
    assert torch.all(got[:, 0] == 0)  # no prefix for position 0
    assert torch.all(got[1, 6:] == 0)  # padding
    torch.testing.assert_close(got, _plain_logprobs(model, ids, attention), atol=1e-5, rtol=1e-5)


def test_micro_batch_size_does_not_change_result(model):
    ids, attention = _inputs(rows=5)
    with torch.no_grad():
        one = sequence_logprobs(model, ids, attention, micro_batch_size=1)
        all_ = sequence_logprobs(model, ids, attention, micro_batch_size=5)
    torch.testing.assert_close(one, all_, atol=1e-5, rtol=1e-5)


def test_response_mask_slices_logits_but_keeps_used_values(model):
    ids, attention = _inputs()
    response = torch.zeros(ids.shape)
    response[:, 5:] = 1
    response[1, 6:] = 0
    assert first_scored_position(response, ids.shape[1]) == 5
    with torch.no_grad():
        full = sequence_logprobs(model, ids, attention, micro_batch_size=3)
        sliced = sequence_logprobs(model, ids, attention, micro_batch_size=3, response_mask=response)
    torch.testing.assert_close(sliced * response, full * response, atol=1e-6, rtol=1e-6)
    assert torch.all(sliced[:, :5] == 0)  # never computed


def test_first_scored_position_edges():
    assert first_scored_position(None, 7) == 1
    assert first_scored_position(torch.zeros(2, 7), 7) == 7  # nothing used
    mask = torch.zeros(2, 7)
    mask[1, 0] = 1  # position 0 can never be scored: ignored
    assert first_scored_position(mask, 7) == 7


def test_left_padding_gives_same_logprobs_as_right_padding(model):
    # Same 5 real tokens, padded on the right vs on the left: positions come from the
    # attention mask, so the real tokens' log probs agree.
    real = torch.randint(0, 2000, (1, 5), generator=torch.Generator().manual_seed(1))
    pad = torch.zeros(1, 2, dtype=torch.long)
    right = torch.cat([real, pad], dim=1)
    left = torch.cat([pad, real], dim=1)
    mask_right = torch.tensor([[1, 1, 1, 1, 1, 0, 0]])
    mask_left = torch.tensor([[0, 0, 1, 1, 1, 1, 1]])
    with torch.no_grad():
        lp_right = sequence_logprobs(model, right, mask_right, micro_batch_size=1)
        lp_left = sequence_logprobs(model, left, mask_left, micro_batch_size=1)
    # Tokens 1..4 have a prefix in both layouts (token 0's left-padded "prefix" is padding).
    torch.testing.assert_close(lp_right[:, 1:5], lp_left[:, 3:7], atol=1e-5, rtol=1e-5)


def test_temperature_and_entropy(model):
    ids, attention = _inputs()
    with torch.no_grad():
        got, entropy = sequence_logprobs(model, ids, attention, 3, temperature=0.7, with_entropy=True)
        logits = model(input_ids=ids, attention_mask=attention).logits[:, :-1] / 0.7
    torch.testing.assert_close(got, _plain_logprobs(model, ids, attention, 0.7), atol=1e-5, rtol=1e-5)
    probs = torch.softmax(logits, dim=-1)
    expected = -(probs * torch.log_softmax(logits, dim=-1)).sum(-1)  # H = -sum p log p
    torch.testing.assert_close(entropy[:, 1:], expected * attention[:, 1:], atol=1e-4, rtol=1e-4)
    assert not entropy.requires_grad


def test_gradients_flow_when_enabled(model):
    ids, attention = _inputs(rows=2)
    got = sequence_logprobs(model, ids, attention, micro_batch_size=1)
    got.sum().backward()
    grad = model.model.layers[0].mlp.down_proj.weight.grad
    assert grad is not None and grad.abs().sum() > 0
    model.zero_grad(set_to_none=True)


def test_bad_arguments(model):
    ids, attention = _inputs()
    with pytest.raises(ValueError, match="micro_batch_size must be an integer >= 1"):
        sequence_logprobs(model, ids, attention, micro_batch_size=0)
    with pytest.raises(ValueError, match="temperature must be > 0"):
        sequence_logprobs(model, ids, attention, micro_batch_size=1, temperature=0.0)
    with pytest.raises(ValueError, match="attention_mask has shape"):
        sequence_logprobs(model, ids, attention[:, :-1], micro_batch_size=1)
