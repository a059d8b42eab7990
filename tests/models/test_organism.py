import random
import re

import pytest

from capo_ray.data.chain import ChainSpec, ChainStream, SolutionErrors, chain_messages, solution_text
from capo_ray.models.organism import CHAT_TEMPLATE, FRAGMENTS, SMALL, SPECIALS, build_tokenizer, init_model
from capo_ray.models.organism_eval import score_responses


def test_tokenizer_round_trips_the_task_text_with_one_token_per_number_and_operation():
    tok = build_tokenizer()
    rng = random.Random(0)
    for spec in (ChainSpec(), ChainSpec(operand_max=5, max_value=20)):
        for chain in ChainStream(spec, seed=0).chains(0, 30):
            for text in (chain.question, solution_text(chain, rng, SolutionErrors(0.3, 0.3)).text):
                ids = tok.encode(text, add_special_tokens=False)
                assert tok.decode(ids) == text
                pieces = tok.convert_ids_to_tokens(ids)
                assert "<|unk|>" not in pieces
                spans = tok(text, add_special_tokens=False, return_offsets_mapping=True)["offset_mapping"]
                for number in re.finditer(r"\d+", text):
                    if len(number.group()) <= 2:  # errors that propagate can pass 99
                        # one token holds the whole number: never split over two tokens
                        assert any(a <= number.start() and number.end() <= b for a, b in spans), (text, number)
    step = tok.convert_ids_to_tokens(tok.encode("Step 2: 17 * 3 = 51\n", add_special_tokens=False))
    assert step == ["Step 2: ", "17", " * 3", " = ", "51", "\n"]
    question = tok.convert_ids_to_tokens(tok.encode("Start with 7. Apply in order: 1) + 5, 2) * 3.",
                                                    add_special_tokens=False))
    assert question == ["Start with ", "7", ". Apply in order: ", "1)", " + 5", ", ", "2)", " * 3", "."]
    # any printable text still round-trips (unseen numbers and words fall back to characters)
    for text in ("Step 1: 7 + 5 = 12\n\\boxed{-3}.", "1234 - 100 = 1134", "Starts within 05 steps; ok?\n\n~`"):
        assert tok.decode(tok.encode(text, add_special_tokens=False)) == text
    assert len(tok) == len(SPECIALS) + 96 + len(FRAGMENTS) + 90  # + numbers 10-99


def test_chat_template_drops_the_system_turn_and_opens_the_answer(tmp_path):
    from transformers import AutoTokenizer

    tok = build_tokenizer()
    tok.save_pretrained(tmp_path)
    loaded = AutoTokenizer.from_pretrained(tmp_path)  # what the trainer and vLLM load
    text = loaded.apply_chat_template(chain_messages("Start with 1. Apply in order: 1) + 1.", few_shot=False),
                                      add_generation_prompt=True, tokenize=False)
    assert text == "<|user|>Start with 1. Apply in order: 1) + 1.<|assistant|>"
    assert loaded.chat_template == CHAT_TEMPLATE and loaded.eos_token == "<|end|>"
    ids = loaded.encode(text + "Step 1: 1 + 1 = 2<|end|>", add_special_tokens=False)
    assert loaded.decode(ids, skip_special_tokens=True) == "Start with 1. Apply in order: 1) + 1.Step 1: 1 + 1 = 2"
    assert ids[-1] == loaded.eos_token_id


def test_initial_model_has_the_recipes_shape(tmp_path):
    from transformers import AutoConfig

    init_model(tmp_path, SMALL)
    cfg = AutoConfig.from_pretrained(tmp_path)
    assert cfg.hidden_size == SMALL.hidden and cfg.head_dim == 32 and cfg.vocab_size == len(build_tokenizer())


def test_scores_count_wrong_steps_among_correct_answers():
    right = "Step 1: 2 + 3 = 5\nThe answer is \\boxed{5}."
    slip = "Step 1: 2 + 3 = 6\nStep 2: 5 * 2 = 10\nThe answer is \\boxed{10}."
    wrong = "Step 1: 2 + 3 = 5\nThe answer is \\boxed{4}."
    # Not a chain question: the arithmetic alone is checked.
    scores = score_responses([right, slip, wrong], ["5", "10", "5"], ["What is 2 + 3?", "q", "q"])
    assert scores["accuracy"] == pytest.approx(2 / 3)
    assert scores["step_error_rate"] == pytest.approx(1 / 3)
    assert scores["wrong_step_rate_among_correct"] == pytest.approx(1 / 2)


def test_named_organisms_differ_only_where_they_say():
    from dataclasses import asdict

    from capo_ray.models.organism import FULL, HABIT, HIDDEN, RECIPES, task_config

    assert RECIPES["organism"] is FULL and RECIPES["organism-small"] is SMALL and RECIPES["organism-habit"] is HABIT
    # each name is its own cache entry
    assert len({r.name for r in RECIPES.values()}) == len(RECIPES)
    changed = {k for k, v in asdict(HABIT).items() if asdict(FULL)[k] != v}
    assert changed == {"name", "habit_error"} and 0 < HABIT.habit_error < 1
    changed = {k for k, v in asdict(HIDDEN).items() if asdict(HABIT)[k] != v}
    assert changed == {"name", "zero_share"} and RECIPES["organism-hidden"] is HIDDEN
    # RL asks the organism the kind of problem it learned, "* 0" included
    assert task_config(HIDDEN).zero_share == HIDDEN.zero_share and task_config(HABIT).zero_share == 0


def test_a_mistyped_organism_name_fails_naming_the_choices():
    from capo_ray.models.resolve import resolve_model_path

    with pytest.raises(ValueError, match=r"model.path='organism-habbit'.*organism-habit"):
        resolve_model_path("organism-habbit")
