"""Response text and per-token character spans from generated ids (incremental detokenization).

CAPO credits steps by character ranges of the response text, and the credit must land on the
tokens the policy actually sampled. Re-tokenizing the text can disagree with the sampled ids
(docs/algorithm.md, "Judge and policy tokenizers differ"), so the spans come from decoding the ids
themselves, the way vLLM streams text: each new token is decoded together with a short window
of preceding tokens (``prefix``/``read`` offsets), so the work is O(T), not O(T^2).

A byte-level tokenizer can split one character over several tokens (``é`` = two bytes, an emoji
four). While a token leaves a character unfinished, the window decodes to a trailing U+FFFD and
nothing is committed; when a later token completes the bytes, every token that took part gets a
span reaching the end of the completed text, so credit on that character reaches all of them.

Invariants (tested): spans are monotone (starts and ends never decrease), each lies inside the
text, there are no gaps (``start_i <= end_{i-1}``), and the last span ends at ``len(text)``; so
the pieces ``text[max(s_i, e_{i-1}):e_i]`` in order rebuild the text. Skipped special tokens
(EOS) get the empty span at the position where the text produced before them ends.
"""

from __future__ import annotations

_REPLACEMENT = "\ufffd"  # what a decoder emits for bytes that do not (yet) form a character
_EMPTY = 1 << 62  # start sentinel of a skipped token: min(start, end) makes its span empty


def special_token_ids(tokenizer) -> set[int]:
    """Ids that ``decode(..., skip_special_tokens=True)`` drops.

    ``tokenizer.all_special_ids`` is not enough: SmolLM2 flags all 17 added tokens as special
    (``<|im_start|>``, ``<repo_name>``...) but lists only EOS in ``all_special_ids``.
    """
    ids = set(getattr(tokenizer, "all_special_ids", []) or [])
    for token_id, added in getattr(tokenizer, "added_tokens_decoder", {}).items():
        if getattr(added, "special", False):
            ids.add(int(token_id))
    return ids


class _Window:
    """vLLM-style decode window over the kept (non-skipped) token strings."""

    def __init__(self, tokenizer) -> None:
        self._to_string = tokenizer.convert_tokens_to_string
        self.tokens: list[str] = []
        self.prefix = 0  # start of the context window (already committed tokens)
        self.read = 0  # tokens before this index are committed
        self._prefix_text = ""

    def push(self, token: str) -> tuple[str | None, int]:
        """Add a token; return (newly committed text or None, chars now known to be final)."""
        self.tokens.append(token)
        new_text = self._to_string(self.tokens[self.prefix :])
        stable = max(0, len(new_text.rstrip(_REPLACEMENT)) - len(self._prefix_text))
        if len(new_text) > len(self._prefix_text) and not new_text.endswith(_REPLACEMENT):
            return self._commit(new_text), 0
        return None, stable

    def flush(self) -> str:
        """Commit whatever is pending at the end of the sequence (even a trailing U+FFFD)."""
        if self.read == len(self.tokens):
            return ""
        new_text = self._to_string(self.tokens[self.prefix :])
        return self._commit(new_text) if len(new_text) >= len(self._prefix_text) else ""

    def _commit(self, new_text: str) -> str:
        emitted = new_text[len(self._prefix_text) :]
        self.prefix, self.read = self.read, len(self.tokens)
        # The next window starts at the old read offset: decode of the committed tail only.
        self._prefix_text = self._to_string(self.tokens[self.prefix : self.read])
        return emitted


def incremental_offsets(
    tokenizer, token_ids: list[int], skip_special_tokens: bool = True
) -> tuple[str, list[tuple[int, int]]]:
    """Decode generated ``token_ids`` [T] into (text, spans [T]) with ``spans[i] = (start, end)``.

    ``text == tokenizer.decode(token_ids, skip_special_tokens=skip_special_tokens)`` (checked:
    a mismatch raises ValueError rather than handing out offsets into a different text).
    """
    skip = special_token_ids(tokenizer) if skip_special_tokens else set()
    token_strs = tokenizer.convert_ids_to_tokens(list(token_ids))
    window = _Window(tokenizer)
    pieces: list[str] = []
    committed = 0  # len("".join(pieces))
    spans: list[tuple[int, int]] = []
    pending: list[tuple[int, int]] = []  # (token index, start) waiting for their end
    frontier = 0  # chars known final before the current token: where its text starts

    def settle(end: int) -> None:
        for idx, start in pending:
            spans[idx] = (min(start, end), end)
        pending.clear()

    for i, (tid, tok) in enumerate(zip(token_ids, token_strs)):
        spans.append((0, 0))
        if tid in skip:
            if pending:  # inside an unfinished character: sit where that character ends
                pending.append((i, _EMPTY))
            else:
                spans[i] = (committed, committed)
            continue
        if tok is None:
            raise ValueError(f"token id {tid} is outside the tokenizer's vocabulary")
        pending.append((i, frontier))
        emitted, stable = window.push(tok)
        if emitted is not None:
            pieces.append(emitted)
            committed += len(emitted)
            settle(committed)
            frontier = committed
        else:
            frontier = max(frontier, committed + stable)
    tail = window.flush()
    pieces.append(tail)
    committed += len(tail)
    settle(committed)
    text = "".join(pieces)
    _check_against_decode(tokenizer, token_ids, skip_special_tokens, text)
    return text, spans


def _check_against_decode(tokenizer, token_ids, skip_special_tokens: bool, text: str) -> None:
    # One full decode (O(T)) guards against tokenizers whose decoder is not window-local.
    expected = tokenizer.decode(list(token_ids), skip_special_tokens=skip_special_tokens)
    if expected != text:
        raise ValueError(
            "incremental detokenization disagrees with tokenizer.decode: "
            f"{text[:80]!r}... vs {expected[:80]!r}... ({type(tokenizer).__name__})"
        )
