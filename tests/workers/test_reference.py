"""ReferenceWorker in-process: frozen, and its log probs are a plain HF forward's."""

from __future__ import annotations

import pytest
import torch

from capo_ray.models.tiny import tiny_model_path
from capo_ray.workers.reference import ReferenceWorker


@pytest.fixture(scope="module")
def worker():
    path = str(tiny_model_path())
    return ReferenceWorker(path, dtype="float32", torch_threads=1, temperature=1.0, device="cpu")


def test_frozen(worker):
    assert not worker.model.training
    assert not any(p.requires_grad for p in worker.model.parameters())


def test_logprobs_match_plain_forward(worker):
    ids = torch.randint(0, 2000, (3, 8), generator=torch.Generator().manual_seed(0))
    attention = torch.ones_like(ids)
    attention[2, 5:] = 0
    got = worker.compute_logprobs(ids, attention, micro_batch_size=2)
    with torch.no_grad():
        logits = worker.model(input_ids=ids, attention_mask=attention).logits[:, :-1]
    expected = torch.log_softmax(logits, -1).gather(-1, ids[:, 1:, None])[..., 0] * attention[:, 1:]
    assert got.shape == (3, 8) and not got.requires_grad
    torch.testing.assert_close(got[:, 1:], expected, atol=1e-5, rtol=1e-5)
    assert torch.all(got[:, 0] == 0)


def test_bad_settings():
    with pytest.raises(ValueError, match="dtype 'float16' is not one of"):
        path = str(tiny_model_path())
        ReferenceWorker(path, dtype="float16", torch_threads=1, temperature=1.0, device="cpu")
