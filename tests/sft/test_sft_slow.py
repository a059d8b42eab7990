"""SFT through the DeepSpeed learner group (Ray actors): the loss goes down on a handful of
rows (one of them too long to train on) and the HF folder it writes loads like any policy."""

import json

import pytest

from capo_ray.config.components import DataConfig, LearnerConfig, ModelConfig
from capo_ray.sft.config import SftConfig, SftSettings
from capo_ray.sft.runner import read_losses, run

pytestmark = pytest.mark.slow


def test_sft_on_a_handful_of_rows_lowers_the_loss_and_writes_a_loadable_folder(tmp_path):
    import ray
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    rows = [{"prompt": f"Compute {a} + {b}.", "response": f"Step 1: {a} + {b} = {a + b}\nThe answer is \\boxed{{{a + b}}}."}
            for a, b in [(1, 2), (3, 4), (5, 1), (2, 2)]]
    # A prompt longer than sft.max_len is dropped from its batches and counted, not fatal.
    rows.append({"prompt": "Compute " + " + ".join(["1"] * 400) + ".", "response": "400"})
    pairs = tmp_path / "pairs.jsonl"
    pairs.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    out = tmp_path / "sft-out"
    cfg = SftConfig(
        model=ModelConfig(path="tiny"), data=DataConfig(name="arith"),
        learner=LearnerConfig(num_workers=2, zero_stage=2, lr=3e-3, micro_batch_size=2),
        sft=SftSettings(pairs=str(pairs), output=str(out), steps=16, batch_size=4, progress_bar=False, num_cpus=2),
    )
    try:
        folder = run(cfg)
    finally:
        ray.shutdown()
    losses = read_losses(folder)
    assert len(losses) == 16 and losses[-1] < 0.7 * losses[0]
    metrics = [json.loads(line) for line in (folder / "sft_metrics.jsonl").read_text().splitlines()]
    assert sum(m["dropped_long_prompts"] for m in metrics) >= 1
    tok = AutoTokenizer.from_pretrained(folder)
    model = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32)
    ids = tok.apply_chat_template([{"role": "user", "content": "Compute 1 + 2."}], add_generation_prompt=True,
                                  tokenize=False)
    enc = tok(ids + rows[0]["response"], return_tensors="pt", add_special_tokens=False)
    with torch.no_grad():
        assert torch.isfinite(model(**enc).logits).all()
