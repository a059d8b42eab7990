"""Reasoning steps of a response: where they are in the text, and which tokens they cover.

CAPO (arXiv 2508.02298, method step 3) splits a response into steps on blank lines and shows
them to the critic numbered; the critic's verdict names steps, and credit must land on the
policy's own tokens. So this module answers two questions:

* ``split_steps``: character spans of the steps in the response text;
* ``token_step_spans``: which generated tokens each step covers, from the tokens' character
  offsets. The offsets MUST come from the generated token ids (incremental detokenization of
  what the policy sampled), never from re-tokenizing the text: a re-tokenization can split
  the text differently from the sampled ids, and credit would land on the wrong tokens.

Legend: T tokens of one response, S steps of one response.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

Span = tuple[int, int]

# A blank line is a line holding only whitespace; "\n" + such a line's body + "\n" separates
# two steps. [^\S\n] is "whitespace other than newline" (it also covers the "\r" of "\r\n").
_BLANK_LINE = re.compile(r"\n[^\S\n]*\n")
_NEWLINE = re.compile(r"\n")
# Bounds of "no step left": no token starts before +inf, none ends after it.
_NO_STEP = (float("inf"), float("inf"))


def _stripped_pieces(text: str, start: int, end: int, separator: re.Pattern[str]) -> list[Span]:
    """Spans of the pieces of text[start:end] between ``separator`` matches, each stripped of
    surrounding whitespace, empty pieces dropped."""
    spans: list[Span] = []
    piece_start = start
    bounds = [(m.start(), m.end()) for m in separator.finditer(text, start, end)]
    bounds.append((end, end))
    for sep_start, sep_end in bounds:
        piece = text[piece_start:sep_start]
        stripped = piece.strip()
        if stripped:
            lead = len(piece) - len(piece.lstrip())
            spans.append((piece_start + lead, piece_start + lead + len(stripped)))
        piece_start = sep_end
    return spans


def split_steps(response: str) -> list[Span]:
    """Character spans (start, end) of the response's reasoning steps, in order.

    Step k (1-based) is ``response[start:end]`` of the k-th span. Steps are separated by blank
    lines (lines holding only whitespace), as in the paper; a response with no blank line
    between its first and last non-space characters is split on single newlines instead, so
    a model that writes one step per line still gets step-level credit (the defined fallback
    the reviewers asked for). Spans exclude surrounding whitespace; empty steps are dropped;
    an empty or all-space response has no steps. Trailing blank lines never change the split.

    Shapes: returns S spans, 0 <= start < end <= len(response).
    """
    if not isinstance(response, str):
        raise ValueError(f"response must be a str, got {type(response).__name__}")
    steps = _stripped_pieces(response, 0, len(response), _BLANK_LINE)
    if len(steps) == 1:
        # One piece means no blank line inside the content: fall back to single newlines.
        start, end = steps[0]
        steps = _stripped_pieces(response, start, end, _NEWLINE)
    return steps


def _check_step_spans(step_spans: Sequence[Span]) -> None:
    previous_end = 0
    for k, (start, end) in enumerate(step_spans):
        if not 0 <= start <= end:
            raise ValueError(f"step span {k} = ({start}, {end}) is not valid: need 0 <= start <= end")
        if start < previous_end:
            raise ValueError(
                f"step spans must be in order and not overlap: span {k} = ({start}, {end}) "
                f"starts before the previous span ends ({previous_end})"
            )
        previous_end = end


def _owner_ranges(first: list[int], last: list[int]) -> list[Span]:
    """Half-open token ranges from each step's first/last owned token (-1 when none). An empty
    step gets an empty range at the end of the previous step's range, so ranges stay ordered."""
    ranges: list[Span] = []
    cursor = 0
    for lo, hi in zip(first, last):
        if lo < 0:
            ranges.append((cursor, cursor))
        else:
            ranges.append((lo, hi + 1))
            cursor = hi + 1
    return ranges


def token_step_spans(step_spans: Sequence[Span], token_offsets: Sequence[Span]) -> list[Span]:
    """Half-open token index ranges (first, last + 1) covered by each step.

    ``token_offsets[i]`` is the character span (start, end) of generated token i in the
    response text; it must come from incremental detokenization of the generated ids, never
    from re-tokenizing the text (see module docstring). Offsets may overlap each other: two
    tokens that together form one multi-byte character can both carry that character's span.

    Each token belongs to the first step its characters overlap, so a token straddling two
    steps goes to the earlier one. Tokens overlapping no step (blank lines, EOS, zero-width
    offsets) belong to none. A step's range runs from its first to its last token; a step
    that owns no token gets an empty range (i, i) placed at the end of the previous range.
    Ranges are in order and never overlap.

    Requires ``step_spans`` in order and non-overlapping, and the starts of the tokens with
    non-zero width non-decreasing (true of incremental detokenization); raises ValueError
    otherwise. Runs in O(T + S) with two pointers.

    Shapes: step_spans [S] pairs, token_offsets [T] pairs -> [S] pairs within 0..T.
    """
    _check_step_spans(step_spans)
    num_steps = len(step_spans)
    first = [-1] * num_steps
    last = [-1] * num_steps
    # Zero-width steps cover no character, so they never own a token: skip them up front.
    live = [k for k, (start, end) in enumerate(step_spans) if start < end]
    live.append(-1)  # sentinel: past the last step, with bounds no token can meet
    j = 0
    k = live[0]
    step_start, step_end = step_spans[k] if k >= 0 else _NO_STEP
    previous_start = 0
    # The hot loop of credit assignment (T ~ 1024 per response): the current step's bounds
    # live in locals, and each token costs a few comparisons.
    for i, (start, end) in enumerate(token_offsets):
        if start < end:
            if start < previous_start:
                raise ValueError(
                    f"token offsets must be >= 0 with non-decreasing starts: token {i} starts at "
                    f"{start}, before {previous_start}"
                )
            previous_start = start
            # A step ending at or before this token's start can own no later token either.
            while step_end <= start:
                j += 1
                k = live[j]
                step_start, step_end = step_spans[k] if k >= 0 else _NO_STEP
            if step_start < end:
                if first[k] < 0:
                    first[k] = i
                last[k] = i
        elif start > end or start < 0:
            raise ValueError(f"token {i} has invalid offsets ({start}, {end}); need 0 <= start <= end")
        # else: zero-width token (EOS, special token, partial character) owns nothing
    return _owner_ranges(first, last)
