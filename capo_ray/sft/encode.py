"""SFT examples -> ``TrainBatch`` rows the learner trains on, prompt tokens masked.

The prompt is rendered with the tokenizer's chat template (``add_generation_prompt``) and the
response is encoded separately and appended with EOS, so the mask boundary is exactly where
the response starts and the policy learns to stop. The ids are the same the trainer's rollouts
produce for the prompt, so RL starts from the distribution SFT trained.
"""

from __future__ import annotations

from typing import Any, Sequence

import torch

from capo_ray.records import TrainBatch
from capo_ray.sft.examples import Example


def encode_example(tokenizer: Any, example: Example, max_len: int) -> tuple[list[int], int] | None:
    """(prompt + response + EOS ids, number of prompt ids); the response is cut to fit. None
    when the prompt alone leaves no room for a response token: nothing could be learned."""
    prompt_text = tokenizer.apply_chat_template(example.messages(), add_generation_prompt=True, tokenize=False)
    prompt = list(tokenizer.encode(prompt_text, add_special_tokens=False))
    response = list(tokenizer.encode(example.response, add_special_tokens=False)) + [tokenizer.eos_token_id]
    if len(prompt) >= max_len:
        return None
    return (prompt + response)[:max_len], len(prompt)


def encode_batch(tokenizer: Any, examples: Sequence[Example], max_len: int) -> tuple[TrainBatch, int]:
    """Right-padded rows and how many examples were dropped for a prompt of ``max_len`` tokens
    or more (one long few-shot prompt must not end a long run; the runner counts them).
    ``response_mask`` is 1 on response tokens (TrainBatch alignment: entry t scores token t
    given the tokens before it). Raises ValueError when no example of the batch fits."""
    encoded = [encode_example(tokenizer, ex, max_len) for ex in examples]
    rows = [row for row in encoded if row is not None]
    if not rows:
        raise ValueError(f"no prompt of this batch fits sft.max_len = {max_len} tokens: raise sft.max_len "
                         "(few-shot prompts are long; data.few_shot=false shortens them)")
    length = max(len(ids) for ids, _ in rows)
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    input_ids = torch.full((len(rows), length), pad, dtype=torch.long)
    attention = torch.zeros((len(rows), length), dtype=torch.long)
    response = torch.zeros((len(rows), length), dtype=torch.float32)
    for i, (ids, prompt_len) in enumerate(rows):
        input_ids[i, : len(ids)] = torch.tensor(ids)
        attention[i, : len(ids)] = 1
        response[i, prompt_len : len(ids)] = 1.0
    zeros = torch.zeros_like(response)
    return TrainBatch(input_ids, attention, response, advantages=zeros, old_logprobs=zeros.clone()), len(encoded) - len(rows)
