"""A tiny random Llama model with a real tokenizer, for tests where model skill does not matter.

It borrows SmolLM2's tokenizer (so chat templates, EOS and detokenization behave as in the
demo) and uses head_dim 32, the smallest size vLLM's CPU attention supports.
"""

from __future__ import annotations

from pathlib import Path

from capo_ray.models.cache import build_once
from capo_ray.models.smollm2 import load_tokenizer

TINY_NAME = "tiny-llama-h64-l2"


def tiny_model_path(seed: int = 0) -> Path:
    """Build (once) and return the folder of the tiny random model for ``seed``."""

    def build(out: Path) -> None:
        import torch
        from transformers import LlamaConfig, LlamaForCausalLM

        tok = load_tokenizer()
        cfg = LlamaConfig(
            vocab_size=len(tok),
            hidden_size=64,
            intermediate_size=128,
            num_hidden_layers=2,
            num_attention_heads=2,
            num_key_value_heads=1,
            head_dim=32,
            max_position_embeddings=1024,
            tie_word_embeddings=True,
            bos_token_id=tok.bos_token_id,
            eos_token_id=tok.eos_token_id,
            pad_token_id=tok.pad_token_id,
            torch_dtype="float32",
        )
        torch.manual_seed(seed)
        model = LlamaForCausalLM(cfg)
        model.generation_config.eos_token_id = tok.eos_token_id
        model.generation_config.pad_token_id = tok.pad_token_id
        model.save_pretrained(out, safe_serialization=True)
        tok.save_pretrained(out)

    return build_once(f"{TINY_NAME}-seed{seed}", build)
