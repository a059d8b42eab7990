"""Prompt token ids for a benchmark problem: the dataset's template (capo_ray.data.prompts),
rendered by the policy tokenizer's chat template."""

from __future__ import annotations

from capo_ray.data.prompts import STEP_DEMOS, build_messages, template_for, to_chat_dicts
from capo_ray.evaluation.runner import EncodeFn
from capo_ray.records import Problem


def chat_encoder(tokenizer, few_shot: bool) -> EncodeFn:
    """``encode(benchmark, problem) -> prompt ids`` with ``tokenizer``'s chat template.

    ``few_shot`` prepends the step demos the trainer uses (DataConfig.few_shot): small models
    keep the boxed-answer format only when shown it, and a held-out eval during training should
    ask the way training asked.
    """
    demos = STEP_DEMOS if few_shot else ()

    def encode(benchmark: str, problem: Problem) -> list[int]:
        messages = to_chat_dicts(build_messages(problem.question, template_for(benchmark), demos))
        # Render to text, then encode: under transformers 5 ``tokenize=True`` returns a
        # BatchEncoding, not ids. The rendered text already holds any BOS the template wants,
        # so the tokenizer must not add special tokens again.
        text = tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
        return list(tokenizer.encode(text, add_special_tokens=False))

    return encode
