"""Outside step-labelled data: ProcessBench rows, MR-GSM8K and PRM800K-style field maps, bad rows
named by file and line, and scores that read only the labelled steps."""

import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from capo_ray.critic_eval.metrics import score_critic
from capo_ray.critic_eval.step_labelled import field_map, load_step_labelled
from capo_ray.data.datasets import DatasetError

ROWS = [
    {"id": "a", "problem": "Compute 4 * 5 + 1.", "steps": ["4 * 5 = 21", "21 + 1 = 22", "Answer 22"], "label": 0},
    {"id": "b", "problem": "Compute 2 + 3.", "steps": ["2 + 3 = 5", "Answer 5"], "label": -1},
    {"id": "c", "problem": "Compute 6 - 1 + 2.", "steps": ["6 - 1 = 5", "5 + 2 = 8"], "label": 1},
]


def _write(tmp_path, rows, name="pb.jsonl"):
    path = tmp_path / name
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def test_processbench_rows_map_to_1_based_first_errors(tmp_path):
    examples = load_step_labelled(_write(tmp_path, ROWS), field_map("processbench"))
    assert [e.first_error for e in examples] == [1, None, 2]
    assert [e.wrong_steps for e in examples] == [frozenset({1}), frozenset(), frozenset({2})]
    assert [e.labelled_steps for e in examples] == [1, None, 2]  # after the first error: unknown
    assert examples[0].uid == "pb.jsonl:1" and examples[0].reference_answer is None


def test_parquet_and_limit(tmp_path):
    path = tmp_path / "pb.parquet"
    pq.write_table(pa.Table.from_pylist(ROWS), path)
    assert [e.first_error for e in load_step_labelled(path, field_map("processbench"), limit=2)] == [1, None]


def test_mr_gsm8k_preset_is_1_based_with_na_for_correct(tmp_path):
    rows = [
        {"question": "Q1", "model_output_steps": ["s1", "s2"], "model_output_solution_first_error_step": 2,
         "ground_truth_answer": 7},
        {"question": "Q2", "model_output_steps": ["s1"], "model_output_solution_first_error_step": "N/A",
         "ground_truth_answer": "3"},
    ]
    examples = load_step_labelled(_write(tmp_path, rows), field_map("mr_gsm8k"))
    assert [(e.first_error, e.reference_answer) for e in examples] == [(2, "7"), (None, "3")]


def test_prm800k_style_ratings_label_every_step_and_nested_fields(tmp_path):
    rows = [{"question": {"problem": "Q"}, "steps": ["a", "b", "c"], "ratings": [1, -1, -1]}]
    fm = field_map("prm800k", {"problem": "question.problem", "answer": None})
    (e,) = load_step_labelled(_write(tmp_path, rows), fm)
    assert (e.first_error, e.wrong_steps, e.labelled_steps) == (2, frozenset({2, 3}), None)


@pytest.mark.parametrize(
    "row, message",
    [
        ({"problem": "Q", "steps": ["a"]}, "line 2: missing field 'label'"),
        ({"problem": "Q", "steps": "a b", "label": 0}, "line 2: 'steps' must be a non-empty list of strings"),
        ({"problem": "Q", "steps": ["a"], "label": 3}, "line 2: 'label' = 3 is outside the 1 steps"),
        ({"problem": "Q", "steps": ["a"], "label": "x"}, "line 2: 'label' = 'x' is not a step index"),
        ({"problem": "", "steps": ["a"], "label": 0}, "line 2: 'problem' must be a non-empty string"),
    ],
)
def test_bad_rows_name_file_and_line(tmp_path, row, message):
    path = _write(tmp_path, [ROWS[0], row])
    with pytest.raises(DatasetError, match=message) as err:
        load_step_labelled(path, field_map("processbench"))
    assert str(path) in str(err.value)


def test_field_map_needs_one_label_kind():
    with pytest.raises(ValueError, match="exactly one of label"):
        field_map("processbench", {"step_ratings": "r"})
    with pytest.raises(TypeError):
        field_map("processbench", {"bogus": "x"})


def test_step_scores_skip_unlabelled_steps_first_error_uses_all(tmp_path):
    examples = load_step_labelled(_write(tmp_path, ROWS), field_map("processbench"))
    # a: flags 1 and 3 (3 is after the first error: unlabelled, not a false positive)
    # b: flags nothing (right); c: flags 1 (wrong: a false positive before the first error)
    scores = score_critic([frozenset({1, 3}), frozenset(), frozenset({1})], examples)
    assert (scores.true_positives, scores.false_positives, scores.false_negatives) == (1, 1, 1)
    # first error: a right (1), c wrong (flagged 1, label 2): 1/2 on erroneous; b right: 1/1
    assert scores.first_error_acc_erroneous == 0.5 and scores.first_error_acc_correct == 1.0
    assert scores.first_error_f1 == pytest.approx(2 * 0.5 * 1.0 / 1.5)  # ProcessBench's F1
