import math

import pytest
import torch

from capo_ray.core.losses import masked_nll


def test_masked_nll_is_the_mean_negative_logprob_of_response_tokens():
    logprobs = torch.tensor([[0.0, -9.0, -1.0, -2.0], [0.0, -3.0, -5.0, 0.0]], requires_grad=True)
    mask = torch.tensor([[0, 0, 1, 1], [0, 1, 1, 0]])  # prompt and padding positions are 0
    loss, stats = masked_nll(logprobs, mask)
    assert math.isclose(float(loss.detach()), (1 + 2 + 3 + 5) / 4)
    assert float(stats["pg_loss"]) == float(loss) and float(stats["kl"]) == 0.0
    loss.backward()
    assert torch.equal(logprobs.grad, -mask.float() / 4)  # no gradient on prompt tokens


def test_masked_nll_sequence_mean_and_empty_mask():
    logprobs = torch.tensor([[-1.0, -1.0, -1.0], [-4.0, 0.0, 0.0]])
    mask = torch.tensor([[1, 1, 1], [1, 0, 0]])
    loss, _ = masked_nll(logprobs, mask, "seq_mean_token_mean")
    assert math.isclose(float(loss), (1 + 4) / 2)
    empty, _ = masked_nll(logprobs, torch.zeros_like(mask))
    assert float(empty) == 0.0
    with pytest.raises(ValueError):
        masked_nll(logprobs, mask[:, :2])
