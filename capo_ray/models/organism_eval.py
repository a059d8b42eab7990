"""How good the organism is after SFT: held-out chain accuracy and how often its steps are wrong.

Plain-torch generation (HF ``generate``), so it runs where the build runs, on one thread, with
no engine. The arith critic's own checks (``capo_ray.critics.step_errors``) say which steps are
wrong, so "step error" here means what the critic will flag during RL.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from capo_ray.config.components import DataConfig


def score_responses(responses: list[str], answers: list[str], questions: list[str]) -> dict[str, float]:
    """accuracy, share of responses with a wrong step, and that share among correct answers
    (critics/step_errors.py: the critic's checks, the chain question's included)."""
    from capo_ray.critics.step_errors import step_error_rates
    from capo_ray.rewards.exact import exact_verdict

    correct = [exact_verdict(text, answer).correct for text, answer in zip(responses, answers)]
    return {"accuracy": sum(correct) / len(responses), **step_error_rates(responses, correct, questions)}


def generate(model: Any, tok: Any, prompts: list[str], greedy: bool, max_new_tokens: int, seed: int) -> list[str]:
    import torch

    torch.manual_seed(seed)
    tok.padding_side = "left"
    out: list[str] = []
    for begin in range(0, len(prompts), 64):
        enc = tok(prompts[begin : begin + 64], return_tensors="pt", padding=True, add_special_tokens=False)
        with torch.no_grad():
            ids = model.generate(**enc, do_sample=not greedy, temperature=1.0 if not greedy else None,
                                 top_p=None, top_k=None, max_new_tokens=max_new_tokens,
                                 eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id)
        out += tok.batch_decode(ids[:, enc["input_ids"].shape[1]:], skip_special_tokens=True)
    return out


def measure(folder: str | Path, data: DataConfig, problems: int, threads: int = 1) -> dict[str, Any]:
    """Greedy and sampled (temperature 1, the rollouts' setting) scores on held-out chains."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from capo_ray.data.prompts_for_task import prompt_messages
    from capo_ray.data.sources import make_source

    torch.set_num_threads(threads)
    tok = AutoTokenizer.from_pretrained(str(folder))
    model = AutoModelForCausalLM.from_pretrained(str(folder), dtype=torch.float32).eval()
    held = make_source(data, "heldout").batch(0, problems)
    prompts = [tok.apply_chat_template(prompt_messages(data, p), add_generation_prompt=True, tokenize=False)
               for p in held]
    answers = [p.answer for p in held]
    result: dict[str, Any] = {"problems": problems}
    for mode in ("greedy", "sampled"):
        texts = generate(model, tok, prompts, mode == "greedy", 200, seed=0)
        result[mode] = score_responses(texts, answers, [p.question for p in held])
        result[f"{mode}_example"] = texts[0]
    return result
