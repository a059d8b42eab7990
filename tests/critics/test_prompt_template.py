"""The critique prompt from a file: filled like the built-in one, checked on load."""

import pytest

from capo_ray.config.compose import compose_config
from capo_ray.config.strict import ConfigError
from capo_ray.core.critique import build_critique_messages, parse_critique
from capo_ray.critics.prompt_template import PromptTemplate

GOOD = """\
system: Grade each step. Literal {braces} stay as written here.
user: |
  Problem: {problem}
  {reference}
  Solution in {num_steps} steps:
  {steps}
  End with `Wrong step list: [i, j]`; a set looks like {{1, 2}}.
reference: "Reference answer: {reference_answer}"
"""


def test_no_file_is_the_built_in_prompt():
    assert PromptTemplate.load(None).messages("Q?", ["a", "b"], "7") == build_critique_messages("Q?", ["a", "b"], "7")


def test_template_fields_are_filled(tmp_path):
    path = tmp_path / "t.yaml"
    path.write_text(GOOD)
    t = PromptTemplate.load(str(path))
    system, user = t.messages(" Compute 2+3. ", ["2 + 3 = 5", "so 5"], "5")
    assert system == {"role": "system", "content": "Grade each step. Literal {braces} stay as written here."}
    assert user["content"] == (
        "Problem: Compute 2+3.\nReference answer: 5\nSolution in 2 steps:\nStep 1: 2 + 3 = 5\n\nStep 2: so 5\n"
        "End with `Wrong step list: [i, j]`; a set looks like {1, 2}.\n"
    )
    hidden = t.messages("Q", ["x"], None)[1]["content"]
    assert "Reference answer" not in hidden and hidden.startswith("Problem: Q\n\nSolution in 1 steps")
    assert parse_critique("Step 1 is fine.\nWrong step list: []", 1) == frozenset()


@pytest.mark.parametrize(
    "text, message",
    [
        ("system: s\nuser: '{steps} Wrong step list:'\nextra: 1\n", "unknown keys \\['extra'\\]"),
        ("system: s\n", "missing keys \\['user'\\]"),
        ("system: s\nuser: '{steps} {answer} Wrong step list:'\n", "unknown fields \\['answer'\\]"),
        ("system: s\nuser: 'no steps here. Wrong step list:'\n", "must show the solution with \\{steps\\}"),
        ("system: s\nuser: '{steps} list the bad ones'\n", "must ask for the verdict line"),
        ("system: s\nuser: '{steps Wrong step list:'\n", "write a literal brace"),
        ("[1, 2]\n", "expected a mapping"),
    ],
)
def test_bad_templates_fail_naming_the_file(tmp_path, text, message):
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(ValueError, match=message) as err:
        PromptTemplate.load(str(path))
    assert str(path) in str(err.value)


def test_config_checks_the_template_at_load(tmp_path):
    with pytest.raises(ConfigError, match="critic.prompt_template: prompt template .* does not exist"):
        compose_config([f"critic.prompt_template={tmp_path}/missing.yaml"])
    good = tmp_path / "good.yaml"
    good.write_text(GOOD)
    assert compose_config([f"critic.prompt_template={good}"]).critic.prompt_template == str(good)
