import json

import pytest

from capo_ray.config import DataConfig
from capo_ray.data.chain import SolutionErrors
from capo_ray.critics.arith import check_step
from capo_ray.data.datasets import find_data_dir
from capo_ray.models.organism import build_tokenizer
from capo_ray.sft.encode import encode_batch
from capo_ray.sft.examples import (
    ChainSolutions,
    Example,
    Gsm8kSolutions,
    PairsSource,
    gsm8k_solution,
    make_examples,
    read_pairs,
)


def _write(path, rows):
    path.write_text("\n".join(r if isinstance(r, str) else json.dumps(r) for r in rows) + "\n")
    return path


def test_pairs_file_both_row_shapes(tmp_path):
    path = _write(tmp_path / "pairs.jsonl", [
        {"prompt": "Compute 1 + 1.", "response": "Step 1: 1 + 1 = 2\nThe answer is \\boxed{2}."},
        {"messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"},
                      {"role": "assistant", "content": "Hello"}]},
        "",
    ])
    a, b = read_pairs(path)
    assert a.prompt == (("user", "Compute 1 + 1."),) and a.response.endswith("\\boxed{2}.")
    assert b.prompt == (("system", "Be brief."), ("user", "Hi")) and b.response == "Hello"
    source = PairsSource([a, b], seed=0)
    assert sorted(source.batch(0, 2), key=lambda e: e.response) == sorted([a, b], key=lambda e: e.response)
    assert len(source.batch(3, 3)) == 3  # epochs wrap


@pytest.mark.parametrize("row, message", [
    ("{not json", "not valid JSON"),
    ({"prompt": "q"}, "need 'prompt' and 'response'"),
    ({"prompt": "q", "response": ""}, "non-empty"),
    ({"messages": [{"role": "user", "content": "q"}]}, "ending with an assistant turn"),
    ({"prompt": [{"role": "robot", "content": "q"}], "response": "a"}, "role"),
])
def test_bad_row_names_file_and_line(tmp_path, row, message):
    path = _write(tmp_path / "bad.jsonl", [{"prompt": "ok", "response": "fine"}, row])
    with pytest.raises(ValueError, match=rf"bad.jsonl:2: .*{message}"):
        read_pairs(path)


def test_missing_file_and_task_without_solutions(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.jsonl"):
        read_pairs(tmp_path / "nope.jsonl")
    with pytest.raises(ValueError, match="sft.pairs"):
        make_examples(DataConfig(name="arith"), None, SolutionErrors(), 0)


def test_chain_solutions_are_reproducible_and_carry_the_configured_errors():
    data = DataConfig(name="chain", operand_max=9, few_shot=False)
    clean = ChainSolutions(data, SolutionErrors()).batch(0, 50)
    assert clean == ChainSolutions(data, SolutionErrors()).batch(0, 50)
    assert all(check_step(line)[0] is not True for ex in clean for line in ex.response.splitlines())
    noisy = ChainSolutions(data, SolutionErrors(0.2, 0.2)).batch(0, 50)
    assert [ex.prompt for ex in noisy] == [ex.prompt for ex in clean]
    assert sum(any(check_step(line)[0] for line in ex.response.splitlines()) for ex in noisy) > 20


def test_chain_curriculum_grows_from_short_chains_and_never_asks_held_out_problems():
    from capo_ray.data.chain import is_heldout

    data = DataConfig(name="chain", few_shot=False, operand_max=5, max_value=20)
    source = ChainSolutions(data, SolutionErrors(), ramp_steps=100)

    def ops(index):
        return [ex.response.count("Step ") for ex in source.batch(index, 64)]

    assert max(ops(0)) == 2 and min(ops(0)) == 1
    assert max(ops(50)) == 4
    assert min(ops(100)) >= 3 and max(ops(100)) == 6
    assert ops(100) == [ex.response.count("Step ") for ex in ChainSolutions(data, SolutionErrors()).batch(100, 64)]
    questions = [ex.prompt[-1][1] for i in (0, 50, 99) for ex in source.batch(i, 64)]
    assert not any(is_heldout(q) for q in questions)


def test_gsm8k_solution_format():
    raw = "Natalia sold 48/2 = <<48/2=24>>24 clips in May.\nShe sold 48+24 = <<48+24=72>>72 in all.\n#### 1,072"
    assert gsm8k_solution(raw) == (
        "Natalia sold 48/2 = 24 clips in May.\n\nShe sold 48+24 = 72 in all.\n\nThe answer is \\boxed{1072}."
    )
    assert gsm8k_solution("no final line") is None


def test_gsm8k_train_solutions_from_the_data_dir():
    if find_data_dir() is None:
        pytest.skip("no math datasets directory")
    examples = Gsm8kSolutions(DataConfig(name="gsm8k_train", few_shot=False), seed=0).batch(0, 4)
    assert all(ex.prompt[-1][0] == "user" and "\\boxed{" in ex.response for ex in examples)


def test_encoding_masks_the_prompt_and_ends_with_eos():
    tok = build_tokenizer()
    examples = [Example((("user", "Start with 2. Apply in order: 1) + 3."),), "Step 1: 2 + 3 = 5"),
                Example((("user", "Q"),), "A")]
    batch, dropped = encode_batch(tok, examples, max_len=128)
    assert dropped == 0
    for row, ex in enumerate(examples):
        ids = batch.input_ids[row][batch.attention_mask[row].bool()].tolist()
        trained = batch.input_ids[row][batch.response_mask[row].bool()].tolist()
        assert tok.decode(trained[:-1]) == ex.response and trained[-1] == tok.eos_token_id
        assert tok.decode(ids, skip_special_tokens=False).startswith("<|user|>" + ex.prompt[0][1] + "<|assistant|>")
    # A prompt that fills max_len is dropped and counted; the others still train.
    batch, dropped = encode_batch(tok, examples, max_len=8)
    assert dropped == 1 and len(batch) == 1
    assert tok.decode(batch.input_ids[0][batch.response_mask[0].bool()].tolist()) == "A<|end|>"
    with pytest.raises(ValueError, match="sft.max_len = 3"):
        encode_batch(tok, examples, max_len=3)


def test_a_max_len_no_prompt_fits_fails_before_any_learner_starts(tmp_path):
    import ray

    from capo_ray.config.components import LearnerConfig, ModelConfig
    from capo_ray.sft.config import SftConfig, SftSettings
    from capo_ray.sft.runner import run

    pairs = tmp_path / "pairs.jsonl"
    pairs.write_text(json.dumps({"prompt": "Compute 1 + 2.", "response": "3"}) + "\n")
    cfg = SftConfig(model=ModelConfig(path="organism-small"), data=DataConfig(name="arith"),
                    learner=LearnerConfig(num_workers=1),
                    sft=SftSettings(pairs=str(pairs), output=str(tmp_path / "out"), steps=2, batch_size=1,
                                    max_len=3, progress_bar=False, num_cpus=1))
    assert not ray.is_initialized()
    with pytest.raises(ValueError, match="sft.max_len = 3"):
        run(cfg)
    assert not ray.is_initialized()  # the DeepSpeed learner group (Ray actors) never started
