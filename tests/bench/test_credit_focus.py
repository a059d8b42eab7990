import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from bench.credit_focus import main, token_kinds  # noqa: E402
from capo_ray.data.chain import Chain  # noqa: E402

CHAIN = Chain(38, (("-", 5), ("+", 6)))


def test_tokens_of_a_slip_are_told_apart_from_the_rest_of_a_right_answer():
    lines = ["Step 1: 38 - 5 = 31\n", "Step 2: 33 + 6 = 39\n", "The answer is \\boxed{39}."]
    text = "".join(lines)
    offsets, start = [], 0
    for line in lines:
        offsets.append((start, start + len(line)))
        start += len(line)
    kinds = token_kinds(text, offsets, CHAIN.question, correct=True)
    assert kinds == ["right answer, flagged step", "right answer, other step", "right answer, other step"]


def test_runs_on_the_small_organism(capsys):
    assert main(["--model", "organism-small", "--problems", "2", "--samples", "2"]) == 0
    out = capsys.readouterr().out
    assert "| wrong answer, flagged step |" in out and "| right answer, other step |" in out
