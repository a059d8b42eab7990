"""One prompt's group of right-padded responses on the tiny model: what the shared-prefix and
the chunked log-prob tests both score."""

import torch

PROMPT = 20


def tiny_eval_model():
    from transformers import AutoModelForCausalLM

    from capo_ray.models.tiny import tiny_model_path

    return AutoModelForCausalLM.from_pretrained(tiny_model_path(), dtype=torch.float32).eval()


def prompt_group(rows: int = 4, length: int = 32, lengths=(32, 27, 30, 24), scored_from: int = PROMPT):
    """(ids, attention, response mask): PROMPT shared tokens, random responses of ``lengths``,
    tokens before ``scored_from`` not scored."""
    gen = torch.Generator().manual_seed(0)
    ids = torch.randint(0, 2000, (rows, length), generator=gen)
    ids[:, :PROMPT] = ids[0, :PROMPT]
    attention = torch.zeros(rows, length, dtype=torch.long)
    for r, n in enumerate(lengths[:rows]):
        attention[r, :n] = 1
    response = attention.float().clone()
    response[:, :scored_from] = 0
    return ids, attention, response
