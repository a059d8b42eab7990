"""Final-answer extraction and light normalization, shared by every verifier.

Pure string work on model text: nothing here evaluates or executes it. The regexes
are linear (no nested quantifiers over the same characters), so a long or hostile response
cannot stall the caller; only the math-verify check runs in a worker process with a deadline.

Order of extraction for a response (the first that yields an answer wins):
1. the last ``\\boxed{...}`` / ``\\fbox{...}`` / ``\\framebox{...}`` (nested braces allowed),
2. the text after the last GSM8K-style ``#### `` marker,
3. the last "the (final) answer is ..." sentence.
"""

from __future__ import annotations

import re

_BOX_MARKERS = ("\\boxed", "\\fbox", "\\framebox")
_HASH_ANSWER = re.compile(r"####[ \t]*([^\n]*)")
# "The answer is 3.5." stops at a period followed by whitespace or the end, not a decimal point.
_ANSWER_IS = re.compile(r"(?i)\bthe\s+(?:final\s+)?answer\s+is\s*:?\s*([^\n]*?)\s*(?:\.(?=\s|$)|$)", re.M)
_WHOLE_NUMBER_WITH_COMMAS = re.compile(r"[-+]?\d{1,3}(?:,\d{3})+(?:\.\d+)?")
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
    if start < 0:
        return None
    marker = next(m for m in _BOX_MARKERS if text.startswith(m, start))
    pos = start + len(marker)
    if pos < len(text) and text[pos] == " ":
        # "\boxed 5": the argument is the next whitespace-free token.
        token = re.match(r" +([^\s$]+)", text[pos:])
        return token.group(1) if token else None
    if pos >= len(text) or text[pos] != "{":
        return None
    content = _balanced_braces(text, pos)
    if content is None:
        return None
    content = content.strip()
    return content or None


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


def hash_answer(text: str) -> str | None:
    """Text after the last ``####`` (GSM8K's answer marker) on its line, or None."""
    matches = _HASH_ANSWER.findall(text)
    if not matches:
        return None
    answer = matches[-1].strip()
    return answer or None


def answer_is(text: str) -> str | None:
    """The answer in the last "the answer is X" sentence, or None."""
    matches = _ANSWER_IS.findall(text)
    if not matches:
        return None
    answer = matches[-1].strip()
    return answer or None


def extract_answer(response: str) -> str | None:
    """The final answer a response commits to (see the module docstring for the order)."""
    for extractor in (last_boxed, hash_answer, answer_is):
        answer = extractor(response)
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


def clean_answer(answer: str) -> str:
    """Remove presentation that carries no mathematical meaning, keeping valid LaTeX.

    Drops math-mode dollars, currency ``\\$``, a trailing period, unit words after a number
    and GSM8K thousands commas ("1,000" -> "1000"; only when the whole answer is one number,
    so a list like "1,2,3" is left alone).
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

