"""Policy prompts: chat messages, few-shot demos, per-dataset templates."""

import pytest

from capo_ray.data.datasets import BUILTIN_DATASETS
from capo_ray.data.prompts import (
    STEP_DEMOS,
    TEMPLATES,
    ChatMessage,
    build_messages,
    template_for,
    to_chat_dicts,
)
from capo_ray.rewards.extract import last_boxed


def test_zero_shot_is_system_then_user():
    template = template_for("gsm8k_test")
    messages = build_messages("  What is 2 + 2?  ", template)
    assert [m.role for m in messages] == ["system", "user"]
    assert messages[1].content == "What is 2 + 2?\n\nPut your final answer in \\boxed{}."


@pytest.mark.parametrize("name", sorted(TEMPLATES))
def test_every_template_asks_for_steps_blank_lines_and_a_box(name):
    system = TEMPLATES[name].system
    assert "step by step" in system and "blank line" in system and "\\boxed{}" in system


def test_few_shot_demos_are_prior_turns():
    template = template_for("math500")
    messages = build_messages("Find x.", template, STEP_DEMOS)
    assert [m.role for m in messages] == ["system", "user", "assistant", "user", "assistant", "user"]
    assert messages[1].content.startswith(STEP_DEMOS[0][0])
    assert messages[2] == ChatMessage("assistant", STEP_DEMOS[0][1])
    assert messages[-1].content.startswith("Find x.")


def test_demos_show_the_format_they_ask_for():
    for _, answer in STEP_DEMOS:
        assert last_boxed(answer) is not None
        assert len(answer.split("\n\n")) >= 3  # steps separated by blank lines, then the answer


def test_demo_without_a_box_is_rejected():
    with pytest.raises(ValueError, match="demo 0 answer has no"):
        build_messages("Find x.", template_for("math500"), [("1+1?", "It is 2.")])


def test_empty_question_is_rejected():
    with pytest.raises(ValueError, match="empty question"):
        build_messages("  ", template_for("math500"))


def test_every_builtin_dataset_has_a_template():
    for name in BUILTIN_DATASETS:
        assert template_for(name) in TEMPLATES.values()
    with pytest.raises(ValueError, match="known datasets: .*math500"):
        template_for("unknown_set")


def test_chat_dicts_for_apply_chat_template():
    messages = build_messages("Q?", template_for("aime24"))
    assert to_chat_dicts(messages) == [{"role": m.role, "content": m.content} for m in messages]
    assert all(set(d) == {"role", "content"} for d in to_chat_dicts(messages))
