"""The model organism: a Llama of under a million parameters that learns the ``chain`` task from
scratch, so CAPO and GRPO can be compared over hundreds of RL steps on a laptop CPU.

Why these choices (docs/learning-study.md has the measurements):

- **A task tokenizer of 250 tokens** (``tokenizers`` WordLevel, decoded by concatenation): one
  token per number 0-99, per operation with its operand (" * 3"), per step label ("Step 2: ",
  "2)") and per fixed phrase, with every printable character as the fallback, so any text
  round-trips exactly (the character-offset credit mapping needs it). A step is then two
  copies and one lookup among a few hundred facts, and a problem is ~65 tokens, not ~250:
  the character tokenizer this replaced reached 6% accuracy in the same build time.
- **Chat template** ``<|user|>question<|assistant|>response<|end|>``: system turns are not
  rendered (the organism never saw one, and they would triple the prompt length).
- **Llama, head_dim 32** (the smallest vLLM's CPU attention takes), untied embeddings.
- **Training data**: chain solutions in which a share of the steps are wrong, of two kinds
  (``capo_ray.data.chain.solution_text``): errors that propagate to a wrong final answer and
  slips the next step ignores (right final answer, a wrong step: what outcome rewards miss).
  Trained with the SFT command's plain-torch learner (``capo_ray.sft``), batch 32, after a
  curriculum from 1-2 operations to 3-6.
- **Variants** (``RECIPES``): organism-habit adds a confident mistake (a habit of one wrong
  product); organism-hidden puts that habit on chains where a later "* 0" often cancels it, so
  the same mistake is sometimes seen by the outcome reward and sometimes not.

``organism_path()`` builds it once into the model cache (``~/.cache/capo_ray/models``); later
runs, tests and the study reuse it. ``python -m capo_ray.models.organism`` builds and measures.
"""

from __future__ import annotations

import json
import re
import string
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path

from capo_ray.models.cache import build_once

SPECIALS = ("<|pad|>", "<|unk|>", "<|user|>", "<|assistant|>", "<|end|>")
CHARS = tuple(c for c in string.printable if c not in "\t\r\x0b\x0c")  # printable ASCII, space, \n
# The chain task's fixed text as single tokens (docs/learning-study.md measured this against
# characters and against numbers alone): "Step k: " and the label "k)" name operation k, and an
# operation with its operand (" * 3") reads the same in the question ("2) * 3") and in the step
# ("17 * 3 = 51"), so step k copies one token from after "k)" and the result is a lookup of
# (value, operation) among a few hundred facts.
FRAGMENTS = (("Start with ", ". Apply in order: ", "Step ", ": ", " + ", " - ", " * ", " = ", ", ",
              "The answer is \\boxed{", "}.")
             + tuple(f"Step {k}: " for k in range(1, 10)) + tuple(f"{k})" for k in range(1, 10))
             + tuple(f" {op} {b}" for op in "+-*" for b in range(10)))
NUMBERS = tuple(str(n) for n in range(10, 100))  # 0-9 are characters already
CHAT_TEMPLATE = (
    "{% for m in messages %}"
    "{% if m['role'] == 'user' %}<|user|>{{ m['content'] }}"
    "{% elif m['role'] == 'assistant' %}<|assistant|>{{ m['content'] }}<|end|>{% endif %}"
    "{% endfor %}"
    "{% if add_generation_prompt %}<|assistant|>{% endif %}"
)


@dataclass(frozen=True)
class Recipe:
    """Architecture, data and schedule of one organism build (the name keys the cache)."""

    name: str = "organism-v4"
    hidden: int = 128
    layers: int = 4
    heads: int = 4  # head_dim = hidden / heads = 32
    intermediate: int = 256  # 512 learned no better per step (docs/learning-study.md) and cost 1.4x
    # Batch 32 over batch 128 at the same examples seen: 4x the optimizer steps, and the
    # arithmetic appeared after ~300 steps of 32 where 95 steps of 128 were still at chance.
    steps: int = 600
    batch_size: int = 32
    lr: float = 3e-3
    warmup_steps: int = 30
    min_lr_ratio: float = 0.05
    ramp_steps: int = 300  # curriculum: 1-2 operations first, growing to 3-6 (ChainSolutions)
    propagate_error: float = 0.05
    slip_error: float = 0.15
    habit_error: float = 0.0  # share of multiplication steps written x * (b + 1): a confident mistake
    # Values 0-20 and operands 1-5: this schedule learns the arithmetic itself (greedy 90%), so
    # what RL can improve is the policy's sampled habits (the injected errors, loose sampling).
    # v3's 0-40 / 1-9 left most sampled errors as facts not yet learned, and RL cannot teach
    # ~700 facts from a reward: neither GRPO nor CAPO moved its sampled accuracy in 60 steps.
    operand_max: int = 5
    max_value: int = 20
    operators: tuple[str, ...] = ("+", "-", "*")
    zero_share: float = 0.0  # share of chains whose "* 0" hides the errors before it from the outcome
    threads: int = 2
    seed: int = 0
    eval_problems: int = 128


FULL = Recipe()
# A much smaller one for tests: seconds to build, learns the format, not the arithmetic.
SMALL = Recipe(name="organism-small-v4", hidden=64, layers=2, heads=2, intermediate=128, steps=30,
               batch_size=16, lr=3e-3, warmup_steps=5, ramp_steps=0, threads=1, eval_problems=16)
# The same organism with a confident mistake besides the random ones: 70% of its training
# multiplications write x * (b + 1), so it prefers one wrong product (docs/learning-study.md).
HABIT = replace(FULL, name="organism-habit-p7", habit_error=0.7)
# The same habit, but 70% of its chains carry a "* 0" that cancels the steps before it, so
# about 40% of its habit products cannot change the answer: the outcome reward never sees
# them, while the critic does (docs/learning-study.md, "A hidden mistake").
HIDDEN = replace(HABIT, name="organism-hidden-p7-z7", zero_share=0.7)
# Names a config's model.path may use (conf/model/organism.yaml) -> recipe.
RECIPES = {"organism": FULL, "organism-small": SMALL, "organism-habit": HABIT, "organism-hidden": HIDDEN}


def token_pattern() -> str:
    """Pre-tokenizer: at each position the longest fragment, else a two-digit number, else one
    character. Every character is also a token, so any printable text round-trips exactly."""
    fragments = "|".join(re.escape(f) for f in sorted(FRAGMENTS, key=len, reverse=True))
    return fragments + r"|[1-9]\d|[\s\S]"


def build_tokenizer():
    """The organism's tokenizer as a transformers fast tokenizer (saved as tokenizer.json,
    which vLLM and AutoTokenizer both load); decoding concatenates the token strings."""
    from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    vocab = {token: i for i, token in enumerate(SPECIALS + CHARS + FRAGMENTS + NUMBERS)}
    core = Tokenizer(models.WordLevel(vocab, unk_token="<|unk|>"))
    core.pre_tokenizer = pre_tokenizers.Split(Regex(token_pattern()), behavior="isolated")
    core.decoder = decoders.Fuse()
    core.add_special_tokens(list(SPECIALS))
    tok = PreTrainedTokenizerFast(
        tokenizer_object=core, pad_token="<|pad|>", unk_token="<|unk|>", eos_token="<|end|>",
        additional_special_tokens=["<|user|>", "<|assistant|>"],
    )
    tok.chat_template = CHAT_TEMPLATE
    return tok


def init_model(out: Path, recipe: Recipe) -> None:
    """A randomly initialised organism with its tokenizer, as an HF folder."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    tok = build_tokenizer()
    cfg = LlamaConfig(
        vocab_size=len(tok), hidden_size=recipe.hidden, intermediate_size=recipe.intermediate,
        num_hidden_layers=recipe.layers, num_attention_heads=recipe.heads, num_key_value_heads=recipe.heads,
        head_dim=recipe.hidden // recipe.heads, max_position_embeddings=1024, tie_word_embeddings=False,
        bos_token_id=None, eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id, torch_dtype="float32",
    )
    torch.manual_seed(recipe.seed)
    model = LlamaForCausalLM(cfg)
    model.generation_config.eos_token_id = tok.eos_token_id
    model.generation_config.pad_token_id = tok.pad_token_id
    model.generation_config.bos_token_id = None
    model.save_pretrained(out, safe_serialization=True)
    tok.save_pretrained(out)


def task_config(recipe: Recipe, seed: int | None = None):
    """The chain task the organism learned (its prompts have no few-shot turns)."""
    from capo_ray.config.components import DataConfig

    return DataConfig(name="chain", few_shot=False, seed=recipe.seed if seed is None else seed,
                      operand_max=recipe.operand_max, max_value=recipe.max_value, operators=list(recipe.operators),
                      zero_share=recipe.zero_share)


def sft_config(recipe: Recipe, output: Path, progress_bar: bool = True):
    from capo_ray.config.components import LearnerConfig, ModelConfig
    from capo_ray.sft.config import SftConfig, SftSettings

    return SftConfig(
        model=ModelConfig(path=str(output)),
        data=task_config(recipe),
        learner=LearnerConfig(num_workers=1, lr=recipe.lr, weight_decay=0.01, grad_clip=1.0,
                              micro_batch_size=recipe.batch_size, torch_threads=recipe.threads, seed=recipe.seed),
        sft=SftSettings(output=str(output), steps=recipe.steps, batch_size=recipe.batch_size, max_len=320,
                        backend="torch", schedule="cosine", warmup_steps=recipe.warmup_steps,
                        min_lr_ratio=recipe.min_lr_ratio, propagate_error=recipe.propagate_error,
                        slip_error=recipe.slip_error, habit_error=recipe.habit_error, progress_bar=progress_bar),
        seed=recipe.seed,
    )


def build(out: Path, recipe: Recipe, progress_bar: bool = True) -> None:
    """Initialise, fine-tune from scratch on chain solutions, then measure on held-out chains
    (``organism.json``: the recipe and greedy / sampled accuracy and step-error rates)."""
    from capo_ray.models.organism_eval import measure
    from capo_ray.sft.runner import run

    from capo_ray.sft.examples import ChainSolutions

    init_model(out, recipe)
    cfg = sft_config(recipe, out, progress_bar)
    start, load_before = time.perf_counter(), machine()["load_average"]
    run(cfg, ChainSolutions(cfg.data, cfg.sft.solution_errors(), recipe.ramp_steps), str(out))
    build_s = time.perf_counter() - start
    report = {"recipe": asdict(recipe), "sft_seconds": round(build_s, 1), "machine": {**machine(), "load_average_before": load_before},
              "measured": measure(out, cfg.data, recipe.eval_problems, recipe.threads)}
    (out / "organism.json").write_text(json.dumps(report, indent=2))


def machine() -> dict[str, str]:
    """Where a build ran: its figures mean little without the CPU and how busy it was."""
    import os

    from capo_ray.hardware import cpu_info

    return {"cpu": cpu_info().describe(), "load_average": " ".join(f"{x:.2f}" for x in os.getloadavg())}


def organism_path(recipe: Recipe = FULL) -> Path:
    """Build (once) and return the organism's HF folder in the model cache."""
    return build_once(recipe.name, lambda out: build(out, recipe))


def main() -> None:
    import argparse

    parser = argparse.ArgumentParser(description="Build (once) and measure the model organism.")
    parser.add_argument("name", nargs="?", default="organism", choices=sorted(RECIPES), help="which organism")
    parser.add_argument("--small", action="store_true", help="the small test organism (same as organism-small)")
    parser.add_argument("--steps", type=int, help="override the recipe's SFT steps (a new cache name)")
    args = parser.parse_args()
    recipe = SMALL if args.small else RECIPES[args.name]
    if args.steps:
        recipe = replace(recipe, steps=args.steps, name=f"{recipe.name}-s{args.steps}")
    path = organism_path(recipe)
    print(path)
    print((path / "organism.json").read_text())


if __name__ == "__main__":
    main()
