"""The GenPRM critique: the prompt that asks an LLM to judge each step, and its verdict parser.

CAPO (arXiv 2508.02298, method step 4) uses a frozen general-purpose instruct LLM as a
generative process reward model: one pass reads the problem, the numbered steps and (by
default) the reference answer, judges every step on its own correctness, and ends with a
verdict line ``Wrong step list: [i, j, ...]``. The parser must never raise: critic output is
untrusted text, and an unreadable verdict abstains in the vote (``None``) rather than
silently becoming "no wrong step".

Legend: S steps of the judged response, K critiques of it.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence

VERDICT_PREFIX = "Wrong step list:"

SYSTEM_PROMPT = (
    "You are a meticulous grader of step-by-step solutions. You check each step of a "
    "solution for its own correctness: arithmetic, algebra, logic, and whether it follows "
    "from the problem and the earlier steps. Flag the step where a mistake is made; a later "
    "step that correctly carries on from that mistake is not wrong itself."
)
# "Judged on its own" (paper, method step 4) is what makes the credit precise: only the
# tokens of the step that introduced an error are penalized, not everything after it.

_INSTRUCTIONS = (
    "Judge every numbered step above on its own correctness. For each step, reason briefly "
    "(one or two sentences) about whether it is right. Then end your answer with exactly one "
    f"line of the form `{VERDICT_PREFIX} [i, j, ...]` listing the numbers of the wrong steps, "
    f"or `{VERDICT_PREFIX} []` when every step is right. Write nothing after that line."
)


def _user_prompt(problem: str, steps: Sequence[str], reference_answer: str | None) -> str:
    if not isinstance(problem, str):
        raise ValueError(f"problem must be a str, got {type(problem).__name__}")
    if isinstance(steps, str) or not all(isinstance(step, str) for step in steps):
        raise ValueError("steps must be a sequence of str (one entry per step)")
    numbered = "\n\n".join(f"Step {k}: {step.strip()}" for k, step in enumerate(steps, start=1))
    parts = [f"## Problem\n{problem.strip()}"]
    if reference_answer is not None:
        # The paper's default shows the reference answer: it lets the critic spot a wrong
        # step by where it leads, without solving the problem from scratch.
        parts.append(f"## Reference answer\n{reference_answer.strip()}")
    parts.append(f"## Solution ({len(steps)} steps)\n{numbered}")
    parts.append(f"## Task\n{_INSTRUCTIONS}")
    return "\n\n".join(parts)


def build_critique_prompt(problem: str, steps: Sequence[str], reference_answer: str | None) -> str:
    """The GenPRM instruction as one plain-text prompt (for completion-style critics).

    Steps are shown numbered from 1 ("Step 1: ..."), matching the numbers the verdict uses
    and the order of ``split_steps``. The text equals the system and user messages of
    ``build_critique_messages`` joined by a blank line.

    Shapes: steps [S] -> str.
    """
    return f"{SYSTEM_PROMPT}\n\n{_user_prompt(problem, steps, reference_answer)}"


def build_critique_messages(
    problem: str, steps: Sequence[str], reference_answer: str | None
) -> list[dict[str, str]]:
    """The same instruction as chat messages: [{"role": "system", ...}, {"role": "user", ...}]."""
    return [
        {"role": "system", "content": SYSTEM_PROMPT},
        {"role": "user", "content": _user_prompt(problem, steps, reference_answer)},
    ]


def format_verdict(wrong_steps: Iterable[int]) -> str:
    """The canonical verdict line, e.g. "Wrong step list: [1, 3]" or "Wrong step list: []".

    Steps are sorted and de-duplicated; each must be an int >= 1 (1-based step numbers).
    A rule-based critic writes its verdict with this so ``parse_critique`` reads it back.
    """
    steps = set()
    for step in wrong_steps:
        if isinstance(step, bool) or not isinstance(step, int) or step < 1:
            raise ValueError(f"wrong step numbers must be ints >= 1 (1-based), got {step!r}")
        steps.add(step)
    return f"{VERDICT_PREFIX} [{', '.join(str(step) for step in sorted(steps))}]"


# --- parsing -------------------------------------------------------------------------------

# The verdict keyword. Markdown emphasis, inline code and spaces may wrap or split it
# ("**Wrong step list:** [1]", "*Wrong steps*: 1"), but never a line break. Word edges are
# "no letter or digit next to it" rather than \b, because "_" (italics) is a word char.
_VERDICT = re.compile(
    r"""
    (?<![^\W_]) wrong [ \t*_`]+ steps? (?![^\W_])    # "wrong step" / "wrong steps"
    (?: [ \t*_`]+ list (?![^\W_]) )?                  # optional "list"
    [ \t*_`]* (?: [:=\uff1a] | (?=\[) )               # ":", "=", fullwidth colon, or "[" next
    """,
    re.IGNORECASE | re.VERBOSE,
)
# After the keyword: emphasis and whitespace, possibly a line break ("**Wrong step list:**\n[1]").
_GAP = re.compile(r"[\s*_`]*")
_REST_OF_LINE = re.compile(r"[^\n\r]*")
_EMPHASIS_AND_SPACE = " \t*_`"
_NONE_WORDS = frozenset({"none", "no", "nothing", "empty", "n/a"})
# One list item: "3", "step 3", "Step #3". ASCII digits only: int() also reads other
# scripts' digits, which no critic prompt asked for.
_ITEM = re.compile(r"(?:step\s*)?#?\s*([0-9]+)", re.IGNORECASE)
# Items are separated by "," or ";" and/or "and": "1, 3", "1 and 3", "1, and 3".
_SEPARATOR = re.compile(r"\s*(?:[,;]\s*(?:and\b\s*)?|\band\b\s*)", re.IGNORECASE)


def _list_body(text: str, pos: int) -> tuple[str, bool] | None:
    """(body, bracketed) of the list that starts at text[pos:], or None when unreadable.

    A bracketed list runs to its "]" (it may wrap lines; text after it is ignored); a bare
    list runs to the end of the line, minus a trailing period or emphasis.
    """
    pos = _GAP.match(text, pos).end()
    if text.startswith("[", pos):
        close = text.find("]", pos)
        return None if close < 0 else (text[pos + 1 : close], True)
    rest = _REST_OF_LINE.match(text, pos).group(0)
    return rest.rstrip(_EMPHASIS_AND_SPACE + ".;!"), False


def _parse_items(body: str, bracketed: bool, num_steps: int) -> frozenset[int] | None:
    """Step numbers of a list body ("1, 3", "Step 1 and Step 3", "none"); None if unreadable
    or if any number is outside 1..num_steps."""
    body = body.strip(_EMPHASIS_AND_SPACE + "\r\n")
    if not body:
        # "[]" says no step is wrong; a keyword followed by nothing says nothing.
        return frozenset() if bracketed else None
    if body.lower().rstrip(".") in _NONE_WORDS:
        return frozenset()
    items = _SEPARATOR.split(body)
    if len(items) > 1 and items[-1] == "":
        items.pop()  # tolerate one trailing comma: "[1, 3,]"
    max_digits = len(str(num_steps))
    steps = set()
    for item in items:
        match = _ITEM.fullmatch(item)
        if match is None:
            return None  # prose, ranges ("1-3"), negatives, decimals: abstain, don't guess
        digits = match.group(1).lstrip("0") or "0"
        # Length check first: int() of a 5000-digit string raises in Python >= 3.11.
        if len(digits) > max_digits or not 1 <= int(digits) <= num_steps:
            return None
        steps.add(int(digits))
    return frozenset(steps)


def parse_critique(text: str, num_steps: int) -> frozenset[int] | None:
    """The 1-based numbers of the steps a critique judges wrong.

    Returns an empty frozenset when the verdict says no step is wrong ("[]", "none"), and
    None when no verdict can be read: no verdict line, an unreadable list, or a number
    outside 1..num_steps (a critic that invents steps is not trusted on the others either).
    Never raises on any ``text``; a non-str ``text`` (e.g. a failed call's None) gives None.

    Accepted: the keyword "wrong step list" / "wrong steps" / "wrong step", any case, with
    or without markdown emphasis, anywhere in a line, followed by ":" (or "=" or directly
    the list); then a bracketed list (which may wrap lines; text after its "]" is ignored)
    or a bare list running to the end of the line, on the same line or the next non-blank
    one. Items are numbers separated by ",", ";" or "and", each optionally written "Step 3";
    duplicates collapse; a trailing period is ignored. When several verdicts appear, the
    last one counts, even if prose follows it on later lines; if that last one is
    unreadable, the critique abstains (an earlier verdict may be one the critic revised).
    Ranges ("1-3"), negatives and decimals are unreadable (None).

    Shapes: -> set of step numbers within 1..S.
    """
    if isinstance(num_steps, bool) or not isinstance(num_steps, int) or num_steps < 0:
        raise ValueError(f"num_steps must be an int >= 0, got {num_steps!r}")
    if not isinstance(text, str):
        return None
    last = None
    for last in _VERDICT.finditer(text):
        pass
    if last is None:
        return None
    found = _list_body(text, last.end())
    return None if found is None else _parse_items(found[0], found[1], num_steps)
