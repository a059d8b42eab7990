"""End to end on CPU with real Ray, DeepSpeed (gloo) and vLLM: a tiny random model trains for
two steps; the weights move, the losses are finite, and after the weight sync the rollout
engine generates exactly what the learner's own weights generate under HF."""

import math

import pytest
import ray
import torch
from safetensors.torch import load_file
from transformers import AutoModelForCausalLM

from capo_ray.driver.cluster import start_actors
from capo_ray.driver.trainer import Trainer
from capo_ray.models.resolve import load_policy_tokenizer, resolve_model_path
from capo_ray.rewards.verdict import Verdict

pytestmark = pytest.mark.slow


class LengthParity:
    """A rule reward for a random model, which never states an answer: "correct" iff the
    response has an even number of characters. It gives groups mixed outcomes, so GRPO has
    a non-zero advantage to train on (with all-wrong groups the update is exactly zero)."""

    def verify_batch(self, responses, references):
        return [Verdict(len(r) % 2 == 0, "ok", None) for r in responses]

    def close(self):
        pass


def _up_to_first_eos(ids: list[int], eos: int) -> list[int]:
    return ids[: ids.index(eos) + 1] if eos in ids else ids


def _greedy_matches(workers, tokenizer, export_dir) -> None:
    """The synced engine's greedy tokens equal HF's on the exported weights, token for token up
    to and including the first EOS (both stop there; without an EOS both must run the full 12
    tokens). fp32 on both sides (tiny_overrides sets rollout.engine.dtype=float32), so no rounding
    difference can excuse a mismatch."""
    model = AutoModelForCausalLM.from_pretrained(export_dir, dtype=torch.float32).eval()
    text = tokenizer.apply_chat_template([{"role": "user", "content": "Compute 2 + 3."}], add_generation_prompt=True, tokenize=False)
    ids = tokenizer.encode(text, add_special_tokens=False)
    with torch.no_grad():
        hf = model.generate(torch.tensor([ids]), max_new_tokens=12, do_sample=False)[0, len(ids):].tolist()
    (samples,) = ray.get(workers.engines[0].generate.remote([ids], 1, 0.0, 1.0, 12))
    eos = tokenizer.eos_token_id
    engine = samples[0].response_ids
    assert _up_to_first_eos(engine, eos) == _up_to_first_eos(hf, eos)
    assert engine == _up_to_first_eos(engine, eos)  # the engine stopped at its first EOS


@pytest.mark.parametrize(
    "algo, zero, learners, extra",
    [
        # capo: the random model's answers are all wrong, so the signal comes from the critic's
        # flags alone (CAPO credits wrong answers token by token); flip noise makes them vary.
        ("capo", 3, 2, ["critic.flip_noise=0.5", "critic.vote=average"]),
        ("grpo", 2, 1, ["rollout.n_samples=4"]),
    ],
    ids=["capo-zero3-2ranks", "grpo-zero2"],
)
def test_train_then_sync(tiny_config, tmp_path, algo, zero, learners, extra):
    cfg = tiny_config(f"algo={algo}", f"learner.zero_stage={zero}", f"learner.num_workers={learners}",
                      "cluster.learner_cpus=0.5", *extra)
    tokenizer = load_policy_tokenizer(cfg.model.path)
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    workers = start_actors(cfg)
    try:
        verifier = LengthParity() if algo == "grpo" else None
        history = Trainer(cfg, workers, tokenizer, run_dir, verifier=verifier).fit()
        assert [row["step"] for row in history] == [0, 1]
        for row in history:
            assert math.isfinite(row["learner/loss"]) and math.isfinite(row["learner/grad_norm"])
            assert row["weight_version"] == row["step"] + 1
            assert row["rollout/responses"] == 2 * cfg.rollout.n_samples
            # the critic ran in capo and not in grpo
            assert (row["critic/responses_judged"] > 0) == (algo == "capo")
        export = tmp_path / "export"
        workers.learner.save_hf(str(export))
        before = load_file(f"{resolve_model_path('tiny')}/model.safetensors")
        after = load_file(f"{export}/model.safetensors")
        moved = [k for k in before if not torch.equal(before[k], after[k].to(before[k].dtype))]
        assert len(moved) > len(before) // 2  # most tensors were updated
        _greedy_matches(workers, tokenizer, export)
    finally:
        workers.shutdown()
    assert (run_dir / "report.md").exists() and (run_dir / "metrics.jsonl").exists()
