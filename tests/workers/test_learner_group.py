"""Driver-side batch splitting and metric merging of the learner group (no Ray needed)."""

from __future__ import annotations

import pytest
import torch

from capo_ray.records import TrainBatch
from capo_ray.workers.learner_group import merge_metrics, pad_rows, plan_rows, shard_rows


def _batch(rows: int, length: int = 5) -> TrainBatch:
    ids = torch.arange(rows)[:, None].repeat(1, length)  # row i is all i: easy to track
    mask = torch.ones(rows, length)
    mask[:, 0] = 0
    return TrainBatch(
        input_ids=ids,
        attention_mask=torch.ones(rows, length, dtype=torch.long),
        response_mask=mask,
        advantages=torch.ones(rows, length) * mask,
        old_logprobs=-torch.ones(rows, length),
        ref_logprobs=-torch.ones(rows, length),
    )


@pytest.mark.parametrize(
    "rows, world, mini, micro, expected",
    [
        (8, 2, 8, 2, (8, 8)),  # exact fit
        (5, 2, 8, 2, (8, 8)),  # one mini-batch: round up to world * micro = 4 -> 8
        (3, 2, 8, 2, (4, 4)),  # one mini-batch smaller than asked: shrink it to 4
        (9, 2, 4, 1, (12, 4)),  # several mini-batches: pad to a multiple of 4
        (1, 1, 1, 1, (1, 1)),
    ],
)
def test_plan_rows(rows, world, mini, micro, expected):
    assert plan_rows(rows, world, mini, micro) == expected


def test_plan_rows_rejects_bad_sizes():
    with pytest.raises(ValueError, match="multiple of world_size \\* micro_batch_size"):
        plan_rows(8, 2, 6, 2)
    with pytest.raises(ValueError, match="empty batch"):
        plan_rows(0, 2, 4, 2)


def test_pad_rows_trains_nothing():
    padded = pad_rows(_batch(3), 5)
    assert len(padded) == 5
    assert torch.equal(padded.input_ids[3:], padded.input_ids[:1].repeat(2, 1))
    assert padded.response_mask[3:].sum() == 0 and padded.advantages[3:].sum() == 0
    assert padded.response_mask[:3].sum() == 3 * 4
    assert pad_rows(_batch(3), 3).input_ids.shape[0] == 3
    with pytest.raises(ValueError, match="cannot pad"):
        pad_rows(_batch(3), 2)


def test_shard_rows_gives_each_rank_its_block_of_every_mini_batch():
    # 8 rows, mini-batches of 4 over 2 ranks: rank 0 gets rows 0,1 (mini 0) and 4,5 (mini 1).
    shards = shard_rows(_batch(8), world_size=2, mini_batch_size=4)
    assert [s.input_ids[:, 0].tolist() for s in shards] == [[0, 1, 4, 5], [2, 3, 6, 7]]
    assert all(s.ref_logprobs is not None and s.ref_logprobs.shape == (4, 5) for s in shards)
    with pytest.raises(ValueError, match="do not split"):
        shard_rows(_batch(6), world_size=2, mini_batch_size=4)


def test_merge_metrics():
    # Two ranks, two optimizer steps. Shared metrics are global-weight shares: add over
    # ranks, then divide by steps: loss (0.5 + 0.3) / 2 = 0.4.
    rank0 = {"loss": 0.5, "pg_loss": 0.5, "kl": 0.0, "clip_frac": 0.2, "approx_kl": 0.0, "entropy": 1.0,
             "grad_norm": 4.0, "lr": 2e-6, "tokens": 10.0, "optimizer_steps": 2.0, "seconds": 1.0}
    rank1 = dict(rank0, loss=0.3, pg_loss=0.3, clip_frac=0.0, entropy=3.0, tokens=6.0, seconds=2.0)
    out = merge_metrics([rank0, rank1])
    assert out["loss"] == pytest.approx(0.4)
    assert out["clip_frac"] == pytest.approx(0.1)
    assert out["entropy"] == pytest.approx(2.0)
    assert out["grad_norm"] == pytest.approx(2.0)  # rank 0's sum over 2 steps / 2
    assert out["lr"] == pytest.approx(1e-6)
    assert out["tokens"] == 16.0 and out["rank_seconds"] == 2.0 and out["optimizer_steps"] == 2.0
