"""Model names in configs: ``smollm2``, ``tiny`` and the organisms (``organism``,
``organism-small``, ``organism-habit``: ``capo_ray.models.organism.RECIPES``) are built-in
(converted or trained into the cache on first use); anything else is an HF folder or hub name
passed through unchanged."""

from __future__ import annotations

from pathlib import Path


def resolve_model_path(name: str) -> str:
    if name == "smollm2":
        from capo_ray.models.smollm2 import smollm2_path

        return str(smollm2_path())
    if name == "tiny":
        from capo_ray.models.tiny import tiny_model_path

        return str(tiny_model_path())
    if name.startswith("organism") and not Path(name).is_dir():
        from capo_ray.models.organism import RECIPES, organism_path

        if name not in RECIPES:
            # A mistyped organism would otherwise reach the hub loader and fail far from the key.
            raise ValueError(f"model.path={name!r} is no built-in organism; choose one of {sorted(RECIPES)}")
        return str(organism_path(RECIPES[name]))
    if name.startswith(("/", ".", "~")) and not Path(name).expanduser().is_dir():
        raise FileNotFoundError(f"model folder {name!r} does not exist")
    return name


def load_policy_tokenizer(name: str):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(resolve_model_path(name))
    if tok.pad_token_id is None:
        # Padding positions are masked everywhere; any id works, eos is the usual choice.
        tok.pad_token = tok.eos_token
    return tok
