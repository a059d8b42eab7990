"""sequence_logprobs(chunk_tokens=N): log probs from the LM head's input, N positions at a time.

Same log probs, entropies and gradients as the full-logits path (also with a shared prompt
prefix), and the property it exists for: autograd keeps no [tokens, vocab] float32 logits for
backward, which the full-logits path does (saved tensors observed with saved_tensors_hooks).
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch

from capo_ray.workers.forward import sequence_logprobs
sys.path.insert(0, str(Path(__file__).parent))
from prompt_groups import PROMPT, prompt_group, tiny_eval_model  # noqa: E402


@pytest.fixture(scope="module")
def model():
    return tiny_eval_model()


def _group(rows: int = 4, length: int = 32, lengths=(32, 27, 30, 24)):
    # scored from position 14: the kept logits start at 13
    return prompt_group(rows, length, lengths, scored_from=PROMPT - 6)


@pytest.mark.parametrize("share_prefix", [False, True])
@pytest.mark.parametrize("chunk_tokens", [1, 7, 10_000])
def test_same_logprobs_and_entropy_as_full_logits(model, chunk_tokens, share_prefix):
    ids, attention, response = _group()
    with torch.no_grad():
        plain, ent_plain = sequence_logprobs(model, ids, attention, 4, 0.7, True, response)
        got, ent = sequence_logprobs(model, ids, attention, 4, 0.7, True, response, share_prefix=share_prefix,
                                     chunk_tokens=chunk_tokens)  # fmt: skip
    assert plain.abs().sum() > 0 and got.dtype == torch.float32
    torch.testing.assert_close(got * response, plain * response, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(ent * response, ent_plain * response, atol=1e-5, rtol=1e-5)
    assert torch.all(got[:, :PROMPT - 6] == 0) and torch.all(got[1, 27:] == 0)  # unscored and padding


def _grads(model, chunk_tokens: int, share_prefix: bool = False) -> dict[str, torch.Tensor]:
    ids, attention, response = _group()
    weights = torch.randn(ids.shape, generator=torch.Generator().manual_seed(3)) * response
    model.zero_grad()
    lp = sequence_logprobs(model, ids, attention, 2, 0.9, response_mask=response, share_prefix=share_prefix,
                           chunk_tokens=chunk_tokens)  # fmt: skip
    (lp * weights).sum().backward()
    out = {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}
    model.zero_grad()
    return out


@pytest.mark.parametrize("share_prefix", [False, True])
def test_same_gradients_as_full_logits(model, share_prefix):
    plain = _grads(model, 0)
    chunked = _grads(model, 5, share_prefix)  # 2 rows x 18 scored positions: 8 chunks
    assert plain.keys() == chunked.keys() and "model.embed_tokens.weight" in plain  # tied LM head
    for name, g in plain.items():
        scale = float(g.abs().max())
        assert scale > 0, name
        # float32 rounding only: the chunks sum the same terms in another order (seen: 4e-6 x scale)
        torch.testing.assert_close(chunked[name], g, atol=2e-5 * scale, rtol=1e-4, msg=name)


def _saved_float32_logits(model, chunk_tokens: int) -> tuple[int, int]:
    """(largest float32 tensor autograd saved whose last dim is the vocabulary, in elements;
    the number of scored positions x vocabulary) for one training forward."""
    ids, attention, response = _group()
    vocab = model.config.vocab_size
    largest = [0]
    weights = {p.untyped_storage().data_ptr() for p in model.parameters()}  # the head's weight is not logits

    def pack(t: torch.Tensor):
        if t.dtype == torch.float32 and t.shape[-1:] == (vocab,) and t.untyped_storage().data_ptr() not in weights:
            largest[0] = max(largest[0], t.numel())
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        lp = sequence_logprobs(model, ids, attention, 4, response_mask=response, chunk_tokens=chunk_tokens)
    lp.sum().backward()  # the chunked graph really is differentiable after all that
    model.zero_grad()
    scored = ids.shape[0] * (ids.shape[1] - (PROMPT - 6))
    return largest[0], scored * vocab


def test_chunked_path_keeps_no_full_logits_for_backward(model):
    full, need = _saved_float32_logits(model, 0)
    assert full >= need  # the full-logits path keeps every scored position's logits
    chunked, need = _saved_float32_logits(model, 16)
    assert chunked == 0, f"saved a {chunked}-element float32 logits tensor ({need} would be all of them)"


def test_bad_chunk_size(model):
    ids, attention, response = _group()
    with pytest.raises(ValueError, match="chunk_tokens must be an integer >= 0"):
        sequence_logprobs(model, ids, attention, 4, chunk_tokens=-1)
