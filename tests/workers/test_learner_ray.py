"""LearnerGroup end to end: 2 ranks on gloo, ZeRO-2 and ZeRO-3, tiny model, fp32.

The central check compares one DeepSpeed optimizer step against the same step done in this
process with plain HF + torch AdamW on the whole mini-batch: equal loss, equal pre-clip
gradient norm and equal new weights mean that the sharding over ranks, the micro-batch
accumulation and the loss re-weighting (learner.py docstring) reproduce the full-batch loss.
Adam's first step is g / (|g| + eps), which hides the gradient's scale when eps is tiny, so the
test uses eps = 1: the update is then ~ lr * g and a mis-scaled gradient shows in the weights.

One Ray session per module, one group per ZeRO stage; every test starts by restoring the
"init" checkpoint, which also exercises load_checkpoint.
"""

from __future__ import annotations

import pytest
import torch

from capo_ray.core.losses import policy_loss
from capo_ray.models.tiny import tiny_model_path
from capo_ray.records import TrainBatch
from capo_ray.workers.actor_group import ActorOptions, start_group
from capo_ray.workers.distributed import accelerator_env
from capo_ray.workers.learner import LearnerSettings
from capo_ray.workers.learner_group import LearnerGroup
from capo_ray.workers.update_settings import UpdateSettings

pytestmark = pytest.mark.slow

LR, ADAM_EPS, CLIP, KL_COEF = 1e-2, 1.0, 1.0, 0.1
LENGTH = 12


@pytest.fixture(scope="module")
def ray_session():
    import ray

    ray.init(num_cpus=2, include_dashboard=False, _node_ip_address="127.0.0.1", log_to_driver=False)
    yield
    ray.shutdown()


@pytest.fixture(scope="module")
def hf_model():
    from transformers import AutoModelForCausalLM

    return AutoModelForCausalLM.from_pretrained(tiny_model_path(), dtype=torch.float32).eval()


@pytest.fixture(scope="module", params=[2, 3], ids=["zero2", "zero3"])
def group(request, ray_session, tmp_path_factory):
    settings = LearnerSettings(
        model_path=str(tiny_model_path()),
        zero_stage=request.param,
        precision="fp32",
        lr=LR,
        adam_eps=ADAM_EPS,
        grad_clip=CLIP,
        micro_batch_size=2,
        mini_batch_size=4,
        torch_threads=1,
        device="cpu",
        # Micro-batches score up to 2 x 9 positions: several chunks, each recomputed in backward,
        # so every check below also holds for the chunked log-probs (workers/chunked_head.py)
        # under ZeRO-2 and ZeRO-3.
        logprob_chunk_tokens=5,
    )
    learners = LearnerGroup(settings, 2, ActorOptions("learner", num_cpus=0.5))
    learners.ckpt_dir = str(tmp_path_factory.mktemp(f"ckpt-zero{request.param}"))
    learners.save_checkpoint(learners.ckpt_dir, "init", {"step": 0})
    yield learners
    learners.shutdown()


def _full_weights(learners: LearnerGroup) -> dict[str, torch.Tensor]:
    return learners.for_each_full_weight(lambda weights, _attached: {n: t.clone() for n, t in weights})


def _batch(rows: int, seed: int = 0) -> TrainBatch:
    """Rows with different prompt lengths (3-5), response lengths and right padding."""
    gen = torch.Generator().manual_seed(seed)
    ids = torch.randint(0, 2000, (rows, LENGTH), generator=gen)
    attention = torch.ones(rows, LENGTH, dtype=torch.long)
    response = torch.zeros(rows, LENGTH)
    for r in range(rows):
        prompt, end = 3 + r % 3, LENGTH - (r % 4)
        attention[r, end:] = 0
        response[r, prompt:end] = 1
    advantages = torch.randn(rows, LENGTH, generator=gen) * response
    return TrainBatch(ids, attention, response, advantages, torch.zeros(rows, LENGTH))


def _plain_logprobs(model, batch: TrainBatch) -> torch.Tensor:
    logits = model(input_ids=batch.input_ids, attention_mask=batch.attention_mask).logits[:, :-1]
    picked = torch.log_softmax(logits, -1).gather(-1, batch.input_ids[:, 1:, None])[..., 0]
    return torch.cat([torch.zeros(len(batch), 1), picked], dim=1) * batch.attention_mask


def _with_ref(batch: TrainBatch, hf_model) -> TrainBatch:
    """Reference log probs a little off the policy's, so the KL term and its gradient are live."""
    with torch.no_grad():
        ref = _plain_logprobs(hf_model, batch)
    noise = 0.05 * torch.randn(ref.shape, generator=torch.Generator().manual_seed(7))
    batch.ref_logprobs = ref + noise * batch.response_mask
    return batch


def _single_process_step(batch: TrainBatch, agg: str):
    """The same update without DeepSpeed: full-batch loss, clip, one AdamW step."""
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(tiny_model_path(), dtype=torch.float32).train()
    logprobs = _plain_logprobs(model, batch)
    loss, _stats = policy_loss(
        logprobs, logprobs.detach(), batch.ref_logprobs, batch.advantages, batch.response_mask,
        0.2, 0.2, KL_COEF, agg,
    )
    loss.backward()
    norm = torch.nn.utils.clip_grad_norm_(list(model.parameters()), CLIP)
    torch.optim.AdamW(model.parameters(), lr=LR, eps=ADAM_EPS, weight_decay=0.0).step()
    return float(loss.detach()), float(norm), {n: p.detach() for n, p in model.named_parameters()}


def _on_policy_pg_loss(batch: TrainBatch, agg: str) -> float:
    # At ratio 1 both PPO branches equal -A, so the surrogate is the aggregate of -A.
    a, m = batch.advantages, batch.response_mask
    if agg == "token_mean":
        return float(-(a * m).sum() / m.sum())
    per_row = (a * m).sum(1) / (m.sum(1) if agg == "seq_mean_token_mean" else 1.0)
    return float(-per_row.mean())  # every row of _batch has response tokens


def _train(learners, batch, agg="token_mean", mini=4, micro=2, epochs=1):
    update = UpdateSettings(
        clip_low=0.2, clip_high=0.2, kl_coef=0.0 if batch.ref_logprobs is None else KL_COEF, agg=agg,
        ppo_epochs=epochs, mini_batch_size=mini, micro_batch_size=micro,
    )
    return learners.train(batch, update)


def test_logprobs_match_hf_and_reference(group, hf_model):
    import ray

    from capo_ray.workers.reference import ReferenceWorker

    group.load_checkpoint(group.ckpt_dir, "init")
    batch = _batch(5)  # 5 rows on 2 ranks x micro 2: exercises the padding of compute_logprobs
    got = group.compute_logprobs(batch.input_ids, batch.attention_mask, micro_batch_size=2)
    with torch.no_grad():
        expected = _plain_logprobs(hf_model, batch)
    torch.testing.assert_close(got, expected, atol=1e-5, rtol=1e-5)
    options = ActorOptions("reference", num_cpus=0.25, env_vars=accelerator_env("cpu"))
    (ref,) = start_group(ReferenceWorker, options, [(str(tiny_model_path()), "float32", 1, 1.0, "cpu")])
    ref_lp = ray.get(ref.compute_logprobs.remote(batch.input_ids, batch.attention_mask, 3))
    ray.kill(ref)
    torch.testing.assert_close(got, ref_lp, atol=1e-5, rtol=1e-5)


def test_full_weights_are_unsharded(group, hf_model):
    group.load_checkpoint(group.ckpt_dir, "init")
    weights = _full_weights(group)
    expected = dict(hf_model.named_parameters())
    assert set(weights) == set(expected)
    for name, tensor in weights.items():
        assert tensor.shape == expected[name].shape, name
        torch.testing.assert_close(tensor, expected[name].detach(), atol=0, rtol=0)


@pytest.mark.parametrize(
    "rows, mini, micro, agg",
    [
        (4, 4, 2, "token_mean"),  # 1 micro-batch per rank
        (4, 4, 1, "token_mean"),  # 2 accumulated micro-batches per rank: same update
        (4, 4, 1, "seq_mean_token_sum"),
        (5, 8, 2, "seq_mean_token_mean"),  # padded to 8 rows: padding must not count
    ],
)
def test_train_matches_single_process_step(group, hf_model, rows, mini, micro, agg):
    group.load_checkpoint(group.ckpt_dir, "init")
    batch = _with_ref(_batch(rows), hf_model)
    metrics = _train(group, batch, agg=agg, mini=mini, micro=micro)
    loss, norm, new_weights = _single_process_step(batch, agg)
    assert metrics["optimizer_steps"] == 1 and metrics["tokens"] == float(batch.response_mask.sum())
    assert metrics["pg_loss"] == pytest.approx(_on_policy_pg_loss(batch, agg), rel=1e-5)
    assert metrics["loss"] == pytest.approx(loss, rel=1e-5)
    assert metrics["kl"] > 0 and metrics["clip_frac"] == 0.0 and metrics["lr"] == LR
    assert metrics["grad_norm"] == pytest.approx(norm, rel=1e-4)
    got = _full_weights(group)
    for name, tensor in new_weights.items():
        torch.testing.assert_close(got[name], tensor, atol=1e-7, rtol=1e-5, msg=name)


def test_checkpoint_roundtrip_restores_exactly(group):
    group.load_checkpoint(group.ckpt_dir, "init")
    initial = _full_weights(group)
    _train(group, _batch(4))
    after = _full_weights(group)
    assert any(not torch.equal(after[n], initial[n]) for n in initial)
    group.save_checkpoint(group.ckpt_dir, "after", {"step": 1, "note": "x"})
    _train(group, _batch(4, seed=1))
    assert group.load_checkpoint(group.ckpt_dir, "after") == {"step": 1, "note": "x"}
    restored = _full_weights(group)
    assert all(torch.equal(restored[n], after[n]) for n in after)
    with pytest.raises(FileNotFoundError, match="no DeepSpeed checkpoint"):
        group.load_checkpoint(group.ckpt_dir + "/missing")


def test_off_policy_epochs(group):
    group.load_checkpoint(group.ckpt_dir, "init")
    batch = _batch(8)
    with pytest.raises(ValueError, match="old_logprobs are all 0"):
        _train(group, batch, epochs=2)
    batch.old_logprobs = group.compute_logprobs(batch.input_ids, batch.attention_mask, 2)
    metrics = _train(group, batch, epochs=2)  # 2 epochs x 2 mini-batches of 4
    assert metrics["optimizer_steps"] == 4
    assert all(torch.isfinite(torch.tensor(v)) for v in metrics.values())
    assert metrics["approx_kl"] != 0.0  # later steps see moved weights


def test_weight_consumers(group):
    group.load_checkpoint(group.ckpt_dir, "init")
    import ray

    ray.get(group.attach_async("seen", list))  # rank 0 keeps a list; others ignore the call

    def record(weights, attached):
        for name, tensor in weights:
            attached["seen"].append((name, tuple(tensor.shape)))
        return len(attached["seen"])

    assert group.for_each_full_weight(record) == 20  # 20 parameters in the tiny model
    # A consumer that stops after one item must not leave the other rank inside a gather.
    assert group.for_each_full_weight(lambda weights, _a: next(weights)[0]) == "model.embed_tokens.weight"


def test_save_hf(group, tmp_path):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    group.load_checkpoint(group.ckpt_dir, "init")
    _train(group, _batch(4))
    group.save_hf(str(tmp_path / "hf"))
    saved = dict(AutoModelForCausalLM.from_pretrained(tmp_path / "hf").named_parameters())
    for name, tensor in _full_weights(group).items():
        assert torch.equal(saved[name].detach(), tensor), name
    assert AutoTokenizer.from_pretrained(tmp_path / "hf").eos_token == "<|im_end|>"


def test_non_finite_loss_raises(group):
    group.load_checkpoint(group.ckpt_dir, "init")
    batch = _batch(4)
    batch.advantages[3, 6] = float("nan")  # only rank 1 sees it; both ranks must raise
    with pytest.raises(FloatingPointError, match="non-finite loss"):
        _train(group, batch)


def test_warmup_ramps_the_learning_rate_then_holds_it(ray_session):
    settings = LearnerSettings(
        model_path=str(tiny_model_path()), zero_stage=2, precision="fp32", lr=LR, grad_clip=CLIP,
        micro_batch_size=2, mini_batch_size=2, torch_threads=1, device="cpu", warmup_steps=3,
    )
    learners = LearnerGroup(settings, 1, ActorOptions("learner", num_cpus=0.5))
    try:
        # One optimizer step per call; "lr" is the rate the next step will use.
        rates = [_train(learners, _batch(4, seed=i), mini=4, micro=2)["lr"] for i in range(4)]
    finally:
        learners.shutdown()
    assert rates == pytest.approx([LR * 2 / 3, LR, LR, LR])  # steps ran at LR/3, 2LR/3, LR, LR
