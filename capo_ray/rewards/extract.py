"""Final-answer extraction and light normalization, shared by every verifier.

Pure string work on model text: nothing here evaluates or executes it. The regexes
are linear (no nested quantifiers over the same characters), so a long or hostile response
cannot stall the caller; only the math-verify check runs in a worker process with a deadline.

Rules for a response (docs/algorithm.md, "Outcome reward"):
- Thinking is not an answer: text up to the last ``</think>`` is dropped (a chat template may
  open ``<think>`` in the prompt), and an unclosed ``<think>`` hides everything after it.
- Then the first of these that yields an answer wins:
  1. the last ``\\boxed{...}`` / ``\\fbox{...}`` / ``\\framebox{...}`` (nested braces allowed),
  2. the text after the last GSM8K-style ``#### `` marker,
  3. the last "the (final) answer is ..." sentence.
- A multi-part reference (n >= 2 parts separated by top-level commas, "1, -2") may be answered
  in n separate boxes: when the last box holds fewer than n parts and there are at least n
  boxes, the answer is the last n boxes joined by ", " (the order is left to the comparison).

Numbers: "1,000" (groups of three after a leading 1-9) is one thousand; "0,125" (a lone 0
before the comma) is the decimal 0.125, since no thousands grouping starts with a lone 0.
Anything else with commas ("1,5") is left as written: a list, to the comparison.
"""

from __future__ import annotations

import re

from capo_ray.rewards.verdict import Verdict

_BOX_MARKERS = ("\\boxed", "\\fbox", "\\framebox")
_HASH_ANSWER = re.compile(r"####[ \t]*([^\n]*)")
# "The answer is 3.5." stops at a period followed by whitespace or the end, not a decimal point.
_ANSWER_IS = re.compile(r"(?i)\bthe\s+(?:final\s+)?answer\s+is\s*:?\s*([^\n]*?)\s*(?:\.(?=\s|$)|$)", re.M)
_WHOLE_NUMBER_WITH_COMMAS = re.compile(r"[-+]?[1-9]\d{0,2}(?:,\d{3})+(?:\.\d+)?")
_DECIMAL_COMMA = re.compile(r"[-+]?0,\d+")  # "0,125": a decimal comma (see the module docstring)
_THINK_OPEN, _THINK_CLOSE = "<think>", "</think>"
_OPENERS, _CLOSERS = "([{", ")]}"
# "18 dollars", "10 cm": a number followed only by plain words. math-verify reads such words
# as a product of symbols (18*d*o*l*...), so the words are dropped before comparing.
_NUMBER_THEN_WORDS = re.compile(r"([-+]?\d[\d,]*(?:\.\d+)?)\s+(?:(?!pi\b)[A-Za-z]{2,}(?![A-Za-z])\.?\s*)+")
_TEXT_UNIT_SUFFIX = re.compile(r"(?<=[\d}])\s*\\(?:text|mbox)\{[A-Za-z ]+\}\s*$")


def last_boxed(text: str) -> str | None:
    """Content of the last ``\\boxed{...}`` (or ``\\fbox``/``\\framebox``), or None.

    Braces may nest (``\\boxed{\\frac{1}{2}}``). ``\\boxed 5`` (no braces) yields ``5``.
    A last box that is never closed (a truncated response) yields None rather than an
    earlier box: the response did not finish its answer.
    """
    start = max(text.rfind(marker) for marker in _BOX_MARKERS)
    return None if start < 0 else _box_at(text, start)[0]


def all_boxed(text: str) -> list[str | None]:
    """Contents of every box in order (None for an empty or unclosed one); a box inside
    another box's content is part of that content, not a box of its own."""
    starts = sorted(i for marker in _BOX_MARKERS for i in _find_all(text, marker))
    out: list[str | None] = []
    covered = -1  # end of the last box read: later starts before it are nested
    for start in starts:
        if start < covered:
            continue
        content, covered = _box_at(text, start)
        out.append(content)
    return out


def _find_all(text: str, marker: str) -> list[int]:
    found, at = [], text.find(marker)
    while at >= 0:
        found.append(at)
        at = text.find(marker, at + len(marker))
    return found


def _box_at(text: str, start: int) -> tuple[str | None, int]:
    """(content, end) of the box whose marker starts at ``start``; content None when the box
    is empty or never closed."""
    marker = next(m for m in _BOX_MARKERS if text.startswith(m, start))
    pos = start + len(marker)
    if pos < len(text) and text[pos] == " ":
        # "\boxed 5": the argument is the next whitespace-free token.
        token = re.match(r" +([^\s$]+)", text[pos:])
        return (token.group(1), pos + token.end()) if token else (None, pos)
    if pos >= len(text) or text[pos] != "{":
        return None, pos
    content = _balanced_braces(text, pos)
    if content is None:
        return None, len(text)
    return content.strip() or None, pos + len(content) + 2


def _balanced_braces(text: str, open_pos: int) -> str | None:
    """Text between the brace at ``open_pos`` and its matching close brace, or None."""
    depth = 0
    for i in range(open_pos, len(text)):
        # Escaped braces (\{ \}) count too: LaTeX sets always write them in pairs.
        char = text[i]
        if char == "{":
            depth += 1
        elif char == "}":
            depth -= 1
            if depth == 0:
                return text[open_pos + 1 : i]
    return None


def _last_match(pattern: re.Pattern[str], text: str) -> str | None:
    matches = pattern.findall(text)
    return (matches[-1].strip() or None) if matches else None


def hash_answer(text: str) -> str | None:
    """Text after the last ``####`` (GSM8K's answer marker) on its line, or None."""
    return _last_match(_HASH_ANSWER, text)


def answer_is(text: str) -> str | None:
    """The answer in the last "the answer is X" sentence, or None."""
    return _last_match(_ANSWER_IS, text)


def without_thinking(response: str) -> str:
    """The part of a response that can state its answer: what follows the last ``</think>``,
    cut at a ``<think>`` that is never closed."""
    close = response.rfind(_THINK_CLOSE)
    if close >= 0:
        response = response[close + len(_THINK_CLOSE) :]
    opened = response.find(_THINK_OPEN)
    return response if opened < 0 else response[:opened]


def top_level_parts(answer: str) -> list[str]:
    """The comma-separated parts of an answer outside any bracket: "1, -2" has two,
    "(1, -2)", "\\{1, 2\\}" and "[0, 1)" one each."""
    parts, depth, start = [], 0, 0
    for i, char in enumerate(answer):
        if char in _OPENERS:
            depth += 1
        elif char in _CLOSERS:
            depth = max(0, depth - 1)
        elif char == "," and depth == 0:
            parts.append(answer[start:i].strip())
            start = i + 1
    parts.append(answer[start:].strip())
    return [part for part in parts if part]


def reference_parts(gold: str | None) -> int:
    """How many parts a reference answer has (1 for a single answer or none)."""
    return max(1, len(top_level_parts(clean_answer(gold)))) if gold else 1


def extract_answer(response: str, parts: int = 1) -> str | None:
    """The final answer a response commits to (see the module docstring for the rules);
    ``parts`` is the reference's part count (``reference_parts``)."""
    text = without_thinking(response)
    if parts > 1:
        boxes = all_boxed(text)
        last = boxes[-parts:]
        if len(last) == parts and None not in last and len(top_level_parts(last[-1])) < parts:
            return ", ".join(last)
    for extractor in (last_boxed, hash_answer, answer_is):
        answer = extractor(text)
        if answer is not None:
            return answer
    return None


def extract_reference(reference: str) -> str | None:
    """The answer in a reference: a bare answer ("72", "\\frac{1}{2}") or a full solution
    ending in ``\\boxed{}`` or ``#### N``. None when the reference is empty."""
    for extractor in (last_boxed, hash_answer):
        answer = extractor(reference)
        if answer is not None:
            return answer
    answer = reference.strip()
    return answer or None


def extract_pair(response: str, reference: str) -> tuple[str, str] | Verdict:
    """(answer, reference answer) of a pair, or the Verdict that ends its check early:
    ``no_answer`` when the response states no answer, ``error`` when the reference holds none.
    Every verifier starts here, so they all read answers by the same rules."""
    gold = extract_reference(reference)
    answer = extract_answer(response, parts=reference_parts(gold))
    if answer is None or not canonical(answer):
        return Verdict(False, "no_answer", answer)
    if gold is None or not canonical(gold):
        return Verdict(False, "error", answer)
    return answer, gold


def clean_answer(answer: str) -> str:
    """Remove presentation that carries no mathematical meaning, keeping valid LaTeX.

    Drops math-mode dollars, currency ``\\$``, a trailing period, unit words after a number
    and GSM8K thousands commas ("1,000" -> "1000"; only when the whole answer is one number,
    so a list like "1,2,3" is left alone), and reads a decimal comma ("0,125" -> "0.125").
    """
    text = answer.replace("\\$", "").replace("$", "").strip()
    text = text.removeprefix("\\displaystyle").strip()
    text = text.rstrip(".").strip()
    text = _TEXT_UNIT_SUFFIX.sub("", text)
    number = _NUMBER_THEN_WORDS.fullmatch(text)
    if number is not None:
        text = number.group(1)
    if _WHOLE_NUMBER_WITH_COMMAS.fullmatch(text):
        text = text.replace(",", "")
    elif _DECIMAL_COMMA.fullmatch(text):
        text = text.replace(",", ".")
    return text


_SPACING = re.compile(r"\\[,;:! ]|~|\s+")
_LEFT_RIGHT = re.compile(r"\\(?:left|right|big|Big|bigg|Bigg)(?![A-Za-z])")
_FRAC_VARIANTS = re.compile(r"\\[dt]frac")
_DEGREES = re.compile(r"\^\s*\{?\\circ\}?")


def canonical(answer: str) -> str:
    """A canonical spelling for the equality fast path: two answers with the same canonical
    form are the same answer. Different forms prove nothing (the full check decides)."""
    text = clean_answer(answer)
    text = _LEFT_RIGHT.sub("", text)
    text = _FRAC_VARIANTS.sub(r"\\frac", text)
    text = _DEGREES.sub("", text)
    text = _SPACING.sub("", text)
    return text.replace("\\%", "%")

