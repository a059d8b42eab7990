"""token_logprobs and entropy_from_logits against naive log_softmax computations."""

import math

import pytest
import torch

from capo_ray.core.logprobs import chunked_head_logprobs, entropy_from_logits, token_logprobs


def _logits(dtype=torch.float32, shape=(3, 5, 11), seed=0):
    gen = torch.Generator().manual_seed(seed)
    return (4 * torch.randn(shape, generator=gen)).to(dtype)


def _targets(shape=(3, 5), vocab=11, seed=1):
    return torch.randint(0, vocab, shape, generator=torch.Generator().manual_seed(seed))


def test_token_logprobs_matches_log_softmax_gather():
    logits, targets = _logits(), _targets()
    naive = torch.log_softmax(logits, dim=-1).gather(-1, targets.unsqueeze(-1)).squeeze(-1)
    torch.testing.assert_close(token_logprobs(logits, targets), naive)


def test_token_logprobs_hand_computed():
    # Logits [0, ln 3] -> probs [1/4, 3/4]: log p = ln(1/4) for target 0, ln(3/4) for target 1.
    logits = torch.tensor([[[0.0, math.log(3)], [0.0, math.log(3)]]])
    result = token_logprobs(logits, torch.tensor([[0, 1]]))
    torch.testing.assert_close(result, torch.tensor([[math.log(0.25), math.log(0.75)]]))


def test_token_logprobs_gradient_matches_naive():
    logits = _logits().requires_grad_(True)
    targets = _targets()
    token_logprobs(logits, targets).sum().backward()
    fast_grad = logits.grad.clone()
    logits.grad = None
    torch.log_softmax(logits, -1).gather(-1, targets.unsqueeze(-1)).sum().backward()
    torch.testing.assert_close(fast_grad, logits.grad)


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_half_precision_is_upcast(dtype):
    # The result must match float32 math on the (rounded) half-precision logits: far closer
    # than a half-precision logsumexp would get.
    logits, targets = _logits(dtype), _targets()
    result = token_logprobs(logits, targets)
    assert result.dtype == torch.float32
    naive = torch.log_softmax(logits.float(), dim=-1).gather(-1, targets.unsqueeze(-1)).squeeze(-1)
    torch.testing.assert_close(result, naive, atol=1e-5, rtol=1e-5)


def test_float64_is_kept():
    assert token_logprobs(_logits(torch.float64), _targets()).dtype == torch.float64


@pytest.mark.parametrize(
    "logits, targets, message",
    [
        (torch.zeros(3, 5), torch.zeros(3, dtype=torch.long), r"\[B, T, V\]"),
        (torch.zeros(3, 5, 11), torch.zeros(3, 4, dtype=torch.long), "targets has shape"),
        (torch.zeros(3, 5, 11), torch.zeros(3, 5), "integer"),
        (torch.zeros(3, 5, 11), torch.full((3, 5), 11), "0..10"),
        (torch.zeros(3, 5, 11), torch.full((3, 5), -1), "0..10"),
        (torch.zeros(3, 5, 11, dtype=torch.long), torch.zeros(3, 5, dtype=torch.long), "floating"),
    ],
)
def test_token_logprobs_bad_input(logits, targets, message):
    with pytest.raises(ValueError, match=message):
        token_logprobs(logits, targets)


def test_entropy_matches_naive():
    logits = _logits()
    log_p = torch.log_softmax(logits, dim=-1)
    naive = -(log_p.exp() * log_p).sum(dim=-1)
    torch.testing.assert_close(entropy_from_logits(logits), naive)


def test_entropy_hand_computed_extremes():
    # Uniform over V = 8: H = ln 8. One logit 100 above the rest: H ~ 0.
    uniform = torch.zeros(1, 1, 8)
    peaked = torch.tensor([[[100.0] + [0.0] * 7]])
    torch.testing.assert_close(entropy_from_logits(uniform), torch.tensor([[math.log(8)]]))
    assert entropy_from_logits(peaked).item() == pytest.approx(0.0, abs=1e-5)


def test_entropy_half_precision_and_empty():
    logits = _logits(torch.bfloat16)
    result = entropy_from_logits(logits)
    assert result.dtype == torch.float32
    torch.testing.assert_close(result, entropy_from_logits(logits.float()))
    assert entropy_from_logits(torch.zeros(0, 4, 8)).shape == (0, 4)
    empty_targets = torch.zeros(0, 4, dtype=torch.long)
    assert token_logprobs(torch.zeros(0, 4, 8, dtype=torch.bfloat16), empty_targets).shape == (0, 4)


@pytest.mark.parametrize("bias", [False, True], ids=["no-bias", "bias"])
@pytest.mark.parametrize("chunk", [1, 4, 7, 100])
def test_chunked_head_matches_full_logits_values_and_gradients(chunk, bias):
    gen = torch.Generator().manual_seed(0)
    head = torch.nn.Linear(6, 11, bias=bias)
    hidden = torch.randn(2, 5, 6, generator=gen, requires_grad=True)
    targets = torch.randint(0, 11, (2, 5), generator=gen)
    weights = torch.randn(2, 5, generator=gen)
    logits = head(hidden) / 0.8
    want, want_ent = token_logprobs(logits, targets), entropy_from_logits(logits.detach())
    (want * weights).sum().backward()
    want_grads = [p.grad.clone() for p in (hidden, *head.parameters())]
    for p in (hidden, *head.parameters()):
        p.grad = None
    got, ent = chunked_head_logprobs(hidden, targets, head.weight, head.bias, chunk, temperature=0.8, with_entropy=True)
    (got * weights).sum().backward()
    torch.testing.assert_close(got, want)
    torch.testing.assert_close(ent, want_ent)
    assert not ent.requires_grad  # a metric: no gradient flows through it
    for p, want_grad in zip((hidden, *head.parameters()), want_grads):
        torch.testing.assert_close(p.grad, want_grad)


def test_chunked_head_bf16_gradients_are_those_of_a_bf16_head():
    """A bf16 head: the chunks' gradients match the plain bf16 matmul's within bf16 rounding."""
    gen = torch.Generator().manual_seed(1)
    head = torch.nn.Linear(16, 32, bias=False).to(torch.bfloat16)
    hidden = torch.randn(3, 7, 16, generator=gen).to(torch.bfloat16).requires_grad_()
    targets = torch.randint(0, 32, (3, 7), generator=gen)
    token_logprobs(head(hidden), targets).sum().backward()
    want = hidden.grad.float(), head.weight.grad.float()
    hidden.grad, head.weight.grad = None, None
    chunked_head_logprobs(hidden, targets, head.weight, None, 4)[0].sum().backward()
    assert hidden.grad.dtype == head.weight.grad.dtype == torch.bfloat16
    torch.testing.assert_close(hidden.grad.float(), want[0], atol=2e-2, rtol=2e-2)
    torch.testing.assert_close(head.weight.grad.float(), want[1], atol=5e-2, rtol=2e-2)


def test_chunked_head_bf16_upcasts_before_temperature_and_scores_without_grad():
    head = torch.nn.Linear(8, 16, bias=False).to(torch.bfloat16)
    hidden = torch.randn(1, 3, 8).to(torch.bfloat16)
    targets = torch.tensor([[0, 5, 15]])
    with torch.no_grad():
        got, ent = chunked_head_logprobs(hidden, targets, head.weight, None, 2, temperature=0.5)
    assert got.dtype == torch.float32 and ent is None
    torch.testing.assert_close(got, token_logprobs(head(hidden).float() / 0.5, targets))


def test_chunked_head_bad_input():
    head = torch.nn.Linear(4, 8)
    with pytest.raises(ValueError, match="chunk_tokens must be an integer >= 1"):
        chunked_head_logprobs(torch.zeros(1, 2, 4), torch.zeros(1, 2, dtype=torch.long), head.weight, head.bias, 0)
    with pytest.raises(ValueError, match="hidden must be"):
        chunked_head_logprobs(torch.zeros(2, 4), torch.zeros(1, 2, dtype=torch.long), head.weight, head.bias, 2)
    with pytest.raises(ValueError, match="weight must be"):
        chunked_head_logprobs(torch.zeros(1, 2, 5), torch.zeros(1, 2, dtype=torch.long), head.weight, head.bias, 2)
