"""results.md / results.json / examples.jsonl of a critic evaluation, on a scripted critic whose
scores are computed by hand below."""

from __future__ import annotations

import json

import pytest

from capo_ray.critic_eval.report import markdown_report, result_to_json, write_run
from capo_ray.critic_eval.runner import EvalSetup, evaluate_critic
from capo_ray.critic_eval.step_errors import StepErrorExample
from capo_ray.records import CritiqueResult

# P: 2 steps, step 1 wrong.  Q: 2 steps, clean.  R: 1 step, clean; its request failed.
EXAMPLES = [
    StepErrorExample("P", "q P", ["P: 2 + 2 = 5", "P: 5 + 1 = 6"], "5", 1, frozenset({1}), "6", "off_by_delta"),
    StepErrorExample("Q", "q Q", ["Q: 1 + 1 = 2", "Q: 2 + 1 = 3"], "3", None, frozenset(), "3"),
    StepErrorExample("R", "q R", ["R: 3 + 3 = 6"], "6", None, frozenset(), "6"),
]
SCRIPT = {
    "P:": CritiqueResult(["Wrong step list: [1]", "Wrong step list: []"], prompt_tokens=30, completion_tokens=12),
    "Q:": CritiqueResult(["garbled", None], prompt_tokens=20, completion_tokens=6),
    "R:": CritiqueResult([None, None], error="critic failed: RuntimeError: boom"),
}


def scripted(messages, step_texts):
    return [SCRIPT[steps[0].split()[0]] for steps in step_texts]


@pytest.fixture(scope="module")
def result():
    setup = EvalSetup("scripted judge", "test", 7, 0.5, use_reference_answer=False)
    return evaluate_critic(EXAMPLES, scripted, [1, 2], ["intersection", "average"], setup)


# Q and R abstain at every k (Q: one unreadable, one failed critique; R: the request failed).
# k = 1: P {1} under both rules -> tp 1: P = R = F1 = 100; 1st err: P hit (1/1), Q and R miss
#        (0/2) -> F1 hm(1, 0) = 0; abstain 2/3 = 66.7%.
# k = 2: P's verdicts {1}, {}: intersection {} -> fn 1, no flags: P and F1 "-", R 0, 1st err 0/1;
#        average weights [0.5, 0] -> {1} (a tie reaches 0.5) -> as k = 1.
# Tokens: P 30 + 12 k/2, Q 20 + 6 k/2, R 0 -> k=1: (36 + 23) / 3 = 19.7 ~ 20; k=2: (42 + 26) / 3 = 22.7 ~ 23.
ROWS = [
    "| intersection | 1 | 100.0 | 100.0 | 100.0 | 100.0 | 0.0 | 0.0 | 66.7 | 20 |",
    "| intersection | 2 | - | 0.0 | - | 0.0 | 0.0 | 0.0 | 66.7 | 23 |",
    "| average | 1 | 100.0 | 100.0 | 100.0 | 100.0 | 0.0 | 0.0 | 66.7 | 20 |",
    "| average | 2 | 100.0 | 100.0 | 100.0 | 100.0 | 0.0 | 0.0 | 66.7 | 23 |",
]


def test_markdown_table_rows(result):
    md = markdown_report(result)
    table = md.split("## Scores (%)\n\n", 1)[1].split("\n\n", 1)[0].splitlines()
    assert table[0].startswith("| rule | k | step P | step R | step F1 | 1st-err acc (erroneous) |")
    assert table[2:] == ROWS


def test_markdown_header_notes_and_judge_summary(result):
    md = markdown_report(result)
    assert md.startswith("# Critic evaluation: scripted judge\n")
    assert "3 solutions, 1 with one corrupted step (seed 7); reference answer shown to the judge: no." in md
    assert "the first k of the 2 critiques sampled per solution in one request (n = 2)" in md
    assert "flagged when its weight" in md and ">= 0.5" in md
    # 6 critiques: failed 1 (Q) + 2 (R) = 3; readable 2 (P); unparseable 1 (Q's "garbled")
    assert "3 solutions x 2 critiques = 6 critiques; readable verdicts: 33.3%; unparseable: 1; failed: 3 (in 1 failed requests)." in md
    assert "judge tokens: 50 prompt + 18 completion" in md
    assert "e.g.: `critic failed: RuntimeError: boom`" in md


def test_json_is_standard_and_holds_every_cell(result):
    data = json.loads(json.dumps(result_to_json(result), allow_nan=False))  # NaN would raise
    assert (data["solutions"], data["erroneous"], data["ks"], data["flag_threshold"]) == (3, 1, [1, 2], 0.5)
    assert data["setup"]["judge"] == "scripted judge" and data["judge"]["unparseable_critiques"] == 1
    cells = {(c["rule"], c["k"]): c for c in data["cells"]}
    assert list(cells) == [("intersection", 1), ("intersection", 2), ("average", 1), ("average", 2)]
    assert cells["intersection", 2]["step_precision"] is None and cells["intersection", 2]["step_recall"] == 0.0
    assert cells["average", 2]["critic_tokens_per_solution"] == pytest.approx(68 / 3)
    assert cells["average", 1]["n_abstained"] == 2 and cells["average", 1]["false_negatives"] == 0


def test_run_directory_files(result, tmp_path):
    paths = write_run(tmp_path / "run", result)
    assert paths["markdown"].read_text() == markdown_report(result)
    assert json.loads(paths["json"].read_text())["cells"][0]["rule"] == "intersection"
    p, q, r = [json.loads(line) for line in paths["examples"].read_text().splitlines()]
    assert (p["uid"], p["first_error"], p["wrong_steps"], p["error_kind"]) == ("P", 1, [1], "off_by_delta")
    assert p["steps"] == EXAMPLES[0].steps and p["response_answer"] == "6" and p["reference_answer"] == "5"
    assert p["critiques"] == SCRIPT["P:"].texts and p["verdicts"] == [[1], []]
    assert p["votes"]["average"]["2"] == {"weights": [0.5, 0.0], "flagged": [1]}
    assert p["votes"]["intersection"]["2"] == {"weights": [0.0, 0.0], "flagged": []}
    assert q["verdicts"] == [None, None] and q["critiques"] == ["garbled", None] and q["request_error"] is None
    assert r["votes"]["intersection"]["1"] == {"weights": None, "flagged": None}
    assert r["request_error"] == "critic failed: RuntimeError: boom" and (r["prompt_tokens"], r["completion_tokens"]) == (0, 0)
