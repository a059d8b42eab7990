"""Incremental detokenization: text equals tokenizer.decode, spans are monotone and gap-free,
and multi-byte characters credit every token that formed them."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from capo_ray.models.smollm2 import load_tokenizer
from capo_ray.workers.detokenize import incremental_offsets, special_token_ids

EOS = 2  # <|im_end|> in the fixed SmolLM2 tokenizer


def _byte_to_unicode() -> dict[int, str]:
    """GPT-2's byte-level alphabet: printable bytes map to themselves, the rest to U+0100+."""
    printable = [*range(ord("!"), ord("~") + 1), *range(0xA1, 0xAD), *range(0xAE, 0x100)]
    table, extra = {}, 0
    for b in range(256):
        if b in printable:
            table[b] = chr(b)
        else:
            table[b] = chr(256 + extra)
            extra += 1
    return table


@pytest.fixture(scope="module")
def tok():
    return load_tokenizer()


_TOK = load_tokenizer()
# 236 of the 256 bytes have their own token (never-valid UTF-8 bytes such as 0xF5-0xFF do not).
BYTE_TOKEN_IDS = {
    b: i for b, u in _byte_to_unicode().items() if (i := _TOK.convert_tokens_to_ids(u)) is not None
}


def check_invariants(tok, ids, text, spans, skip=True):
    """Non-empty spans are monotone and gap-free and rebuild the text; empty spans (skipped
    special tokens) lie inside it; the last non-special token ends at len(text)."""
    assert text == tok.decode(ids, skip_special_tokens=skip)
    assert len(spans) == len(ids)
    prev_s, prev_e = 0, 0
    rebuilt = []
    for s, e in spans:
        assert 0 <= s <= e <= len(text)
        if s == e:
            continue
        assert s >= prev_s and e >= prev_e, "spans must be monotone"
        assert s <= prev_e, "no gap between consecutive spans"
        rebuilt.append(text[max(s, prev_e) : e])
        prev_s, prev_e = s, e
    assert "".join(rebuilt) == text
    specials = special_token_ids(tok) if skip else set()
    for tid, (s, e) in zip(ids, spans):
        if tid in specials:
            assert s == e
    kept = [sp for tid, sp in zip(ids, spans) if tid not in specials]
    if kept:
        assert kept[-1][1] == len(text)


def pieces(tok, ids):
    text, spans = incremental_offsets(tok, ids)
    return text, [text[s:e] for s, e in spans]


def test_multiline_math_each_token_gets_its_own_text(tok):
    src = "Step 1: 4 * 5 = 20\n\nStep 2: 3 + 20 = 23\nThe answer is \\boxed{23}."
    ids = tok.encode(src) + [EOS]
    text, spans = incremental_offsets(tok, ids)
    check_invariants(tok, ids, text, spans)
    assert text == src
    # ASCII only: every token's span is exactly its own decoded string, EOS is empty at the end.
    for tid, (s, e) in zip(ids[:-1], spans[:-1]):
        assert text[s:e] == tok.decode([tid])
    assert spans[-1] == (len(src), len(src))


def test_emoji_split_across_tokens_credits_both(tok):
    # SmolLM2 encodes " 😀" as 'ĠðŁĺ' (space + first 3 bytes) and 'Ģ' (last byte).
    ids = tok.encode(" 😀")
    assert len(ids) == 2
    text, got = pieces(tok, ids)
    assert text == " 😀"
    # The first token formed the space and part of the emoji; the second finished the emoji.
    assert got == [" 😀", "😀"]


def test_unicode_mix(tok):
    src = "é café 中文 naïve 😀🎉 ∑x²\n"
    ids = tok.encode(src)
    text, spans = incremental_offsets(tok, ids)
    check_invariants(tok, ids, text, spans)
    covered = {c for (s, e) in spans for c in text[s:e]}
    assert {"é", "中", "文", "😀", "🎉", "²"} <= covered


def test_byte_fallback_single_byte_tokens(tok):
    # Feed "中" one byte-token at a time: the first two emit nothing yet, all three get "中".
    byte_tokens = [tok.convert_tokens_to_ids(t) for t in ("ä", "¸", "Ń")]
    assert tok.decode(byte_tokens) == "中"
    text, got = pieces(tok, byte_tokens + tok.encode(" ok"))
    assert text == "中 ok"
    assert got[:3] == ["中", "中", "中"]


def test_special_tokens_inside_and_kept(tok):
    ids = tok.encode("a") + [1] + tok.encode("b") + [EOS, EOS]
    text, spans = incremental_offsets(tok, ids)
    check_invariants(tok, ids, text, spans)
    assert text == "ab" and spans[1] == (1, 1) and spans[-1] == (2, 2)
    text, spans = incremental_offsets(tok, ids, skip_special_tokens=False)
    check_invariants(tok, ids, text, spans, skip=False)
    assert text[spans[1][0] : spans[1][1]] == "<|im_start|>"


def test_special_ids_include_all_flagged_added_tokens(tok):
    # all_special_ids lists only EOS, but decode(skip_special_tokens=True) drops 17 ids.
    specials = special_token_ids(tok)
    assert {0, 1, 2, 3} <= specials
    assert tok.decode(sorted(specials), skip_special_tokens=True) == ""


def test_empty(tok):
    assert incremental_offsets(tok, []) == ("", [])
    assert incremental_offsets(tok, [EOS]) == ("", [(0, 0)])


def test_linear_work_on_long_sequences(tok):
    # A 4,000-token response decodes in well under a second (O(T) windows, not full prefixes).
    import time

    ids = tok.encode("Step 3: 17 + 25 = 42, ok.\n\n" * 400)
    start = time.perf_counter()
    text, spans = incremental_offsets(tok, ids)
    assert time.perf_counter() - start < 2.0
    check_invariants(tok, ids, text, spans)


_SETTINGS = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


@_SETTINGS
@given(ids=st.lists(st.integers(min_value=0, max_value=49151), max_size=48))
def test_random_ids_concatenation_consistent(tok, ids):
    text, spans = incremental_offsets(tok, ids)
    check_invariants(tok, ids, text, spans)


@_SETTINGS
@given(src=st.text(max_size=40))
def test_random_unicode_text(tok, src):
    ids = tok.encode(src)
    text, spans = incremental_offsets(tok, ids)
    check_invariants(tok, ids, text, spans)


@_SETTINGS
@given(
    byte_ids=st.lists(st.sampled_from(sorted(BYTE_TOKEN_IDS)), max_size=32),
)
def test_random_single_byte_tokens(tok, byte_ids):
    # Arbitrary byte streams, one byte per token: invalid UTF-8 must decode exactly as decode().
    ids = [BYTE_TOKEN_IDS[b] for b in byte_ids]
    text, spans = incremental_offsets(tok, ids)
    check_invariants(tok, ids, text, spans)
