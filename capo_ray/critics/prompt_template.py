"""The critique prompt as a file: ``critic.prompt_template`` (training) and
``judge.prompt_template`` (capo-ray-critic-eval). Without one, the built-in paper-style prompt
of ``capo_ray.core.critique`` is used.

A template is a YAML file with two required keys and one optional key:

    system: You grade step-by-step solutions ...
    user: |
      Problem: {problem}
      {reference}
      Solution ({num_steps} steps):
      {steps}
      End with one line `Wrong step list: [i, j, ...]`.
    reference: "Reference answer: {reference_answer}"   # optional; fills {reference}

Fields: ``{problem}``, ``{steps}`` (numbered "Step 1: ..." paragraphs, as the built-in prompt
shows them), ``{num_steps}``, ``{reference}`` (the ``reference`` text filled in, or empty when
``use_reference_answer`` is off). Literal braces in ``user`` and ``reference`` are written
``{{`` and ``}}``; ``system`` is used as written. The file is
checked on load: unknown keys or fields, or a prompt that does not ask for the
``Wrong step list:`` verdict line the parser reads, fail naming the file.
"""

from __future__ import annotations

import string
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import yaml

from capo_ray.core.critique import VERDICT_PREFIX, build_critique_messages

USER_FIELDS = frozenset({"problem", "steps", "num_steps", "reference"})
REFERENCE_FIELDS = frozenset({"reference_answer"})


def numbered_steps(steps: Sequence[str]) -> str:
    return "\n\n".join(f"Step {k}: {step.strip()}" for k, step in enumerate(steps, start=1))


def _fields(text: str, where: str) -> set[str]:
    try:
        return {name for _, name, _, _ in string.Formatter().parse(text) if name is not None}
    except ValueError as err:  # an unmatched "{"
        raise ValueError(f"{where}: {err} (write a literal brace as {{{{ or }}}})") from None


@dataclass(frozen=True)
class PromptTemplate:
    """A loaded, checked template (``None`` fields: the built-in prompt)."""

    system: str | None = None
    user: str | None = None
    reference: str = ""
    source: str = "built-in"

    @classmethod
    def load(cls, path: str | None) -> "PromptTemplate":
        if path is None:
            return cls()
        file = Path(path).expanduser()
        if not file.is_file():
            raise FileNotFoundError(f"prompt template {path!r} does not exist")
        try:
            data = yaml.safe_load(file.read_text())
        except yaml.YAMLError as err:
            raise ValueError(f"{file}: not valid YAML: {err}") from None
        if not isinstance(data, dict):
            raise ValueError(f"{file}: expected a mapping with keys system, user (and reference)")
        unknown = sorted(set(data) - {"system", "user", "reference"})
        missing = sorted({"system", "user"} - set(data))
        if unknown or missing:
            raise ValueError(f"{file}: unknown keys {unknown}, missing keys {missing}; keys: system, user, reference")
        if not all(isinstance(data[k], str) for k in data):
            raise ValueError(f"{file}: system, user and reference must be strings")
        for key, allowed in (("user", USER_FIELDS), ("reference", REFERENCE_FIELDS)):
            bad = _fields(data.get(key, ""), f"{file}: {key}") - allowed
            if bad:
                raise ValueError(f"{file}: {key} uses unknown fields {sorted(bad)}; allowed: {sorted(allowed)}")
        if "{steps}" not in data["user"]:
            raise ValueError(f"{file}: user must show the solution with {{steps}}")
        if VERDICT_PREFIX not in data["system"] + data["user"]:
            raise ValueError(f"{file}: the prompt must ask for the verdict line `{VERDICT_PREFIX} [...]` that the parser reads")
        return cls(data["system"], data["user"], data.get("reference", ""), str(file))

    def messages(self, problem: str, steps: Sequence[str], reference_answer: str | None) -> list[dict[str, str]]:
        """The chat messages of one critique (``reference_answer`` None: not shown)."""
        if self.user is None:
            return build_critique_messages(problem, steps, reference_answer)
        reference = "" if reference_answer is None else self.reference.format(reference_answer=reference_answer.strip())
        user = self.user.format(problem=problem.strip(), steps=numbered_steps(steps), num_steps=len(steps),
                                reference=reference)  # fmt: skip
        return [{"role": "system", "content": self.system}, {"role": "user", "content": user}]
