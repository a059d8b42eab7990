"""Prompts for the policy: chat messages asking for blank-line-separated steps and a boxed answer.

Pure text: no tokenizer. The rollout worker applies the policy's chat template to
``to_chat_dicts(messages)``. The format matters to CAPO twice: the critic numbers the steps
that blank lines separate (docs/algorithm.md, step 3), and the outcome verifier reads the last
``\\boxed{}``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Sequence

Role = Literal["system", "user", "assistant"]


@dataclass(frozen=True)
class ChatMessage:
    role: Role
    content: str


@dataclass(frozen=True)
class PromptTemplate:
    system: str
    user: str  # a format string with one field, {question}


_FORMAT_RULES = (
    "Solve the problem by reasoning step by step. Write each step as its own short paragraph "
    "and separate consecutive steps with a blank line. End with the final answer in "
    "\\boxed{}, for example \\boxed{42}."
)
_USER = "{question}\n\nPut your final answer in \\boxed{{}}."

TEMPLATES: dict[str, PromptTemplate] = {
    "grade_school": PromptTemplate("You are a careful math tutor. " + _FORMAT_RULES, _USER),
    "competition": PromptTemplate(
        "You are an expert competition mathematician. "
        + _FORMAT_RULES
        + " Give the answer in simplest exact form (fractions and radicals, not decimals) "
        "unless the problem asks otherwise.",
        _USER,
    ),
}

# Which template each built-in dataset (capo_ray.data.datasets) uses. The arithmetic generator
# keeps its own prompt next to it (capo_ray.data.arithmetic.few_shot_messages).
DATASET_TEMPLATES: dict[str, str] = {
    "gsm8k_train": "grade_school",
    "gsm8k_test": "grade_school",
    "math_train": "competition",
    "math500": "competition",
    "aime24": "competition",
    "amc23": "competition",
    "minerva_math": "competition",
    "olympiadbench": "competition",
}

# Few-shot demos in the exact format asked for. Small models keep the format only when shown it
# (docs/cpu-notes.md: SmolLM2 boxes 90-100% of answers with demos like these, rarely without).
STEP_DEMOS: tuple[tuple[str, str], ...] = (
    ("What is 3 + 4 * 5?", "Step 1: 4 * 5 = 20\n\nStep 2: 3 + 20 = 23\n\nThe answer is \\boxed{23}."),
    (
        "Tom has 12 apples and gives away 5. Then he buys 3 more. How many apples does he have?",
        "Step 1: 12 - 5 = 7\n\nStep 2: 7 + 3 = 10\n\nThe answer is \\boxed{10}.",
    ),
)


def template_for(dataset: str) -> PromptTemplate:
    """The template a dataset's problems are asked with."""
    if dataset not in DATASET_TEMPLATES:
        raise ValueError(f"no prompt template for dataset {dataset!r}; known datasets: {sorted(DATASET_TEMPLATES)}")
    return TEMPLATES[DATASET_TEMPLATES[dataset]]


def build_messages(
    question: str, template: PromptTemplate, demos: Sequence[tuple[str, str]] = ()
) -> list[ChatMessage]:
    """System message, then each demo as a (user, assistant) exchange, then the question.

    A demo answer must end in a ``\\boxed{}`` answer: a demo in another format teaches it.
    """
    if not question.strip():
        raise ValueError("build_messages: empty question")
    messages = [ChatMessage("system", template.system)]
    for index, (demo_question, demo_answer) in enumerate(demos):
        if "\\boxed{" not in demo_answer:
            raise ValueError(f"build_messages: demo {index} answer has no \\boxed{{}} final answer")
        messages.append(ChatMessage("user", template.user.format(question=demo_question.strip())))
        messages.append(ChatMessage("assistant", demo_answer))
    messages.append(ChatMessage("user", template.user.format(question=question.strip())))
    return messages


def to_chat_dicts(messages: Sequence[ChatMessage]) -> list[dict[str, str]]:
    """The ``[{"role": ..., "content": ...}]`` form that ``apply_chat_template`` takes."""
    return [{"role": message.role, "content": message.content} for message in messages]
