import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from bench.habit_probe import main, multiplication_prefixes  # noqa: E402
from capo_ray.data.chain import Chain  # noqa: E402


def test_prefixes_stop_at_each_multiplication_on_the_right_solution():
    chain = Chain(3, (("+", 1), ("*", 2), ("-", 1), ("*", 3)))  # 4, 8, 7, 21
    assert multiplication_prefixes(chain) == [
        ("Step 1: 3 + 1 = 4\nStep 2: 4 * 2 = ", 12, 8, False),
        ("Step 1: 3 + 1 = 4\nStep 2: 4 * 2 = 8\nStep 3: 8 - 1 = 7\nStep 4: 7 * 3 = ", 28, 21, False),
    ]
    # a later "* 0" hides the habit from the answer; the "* 0" itself is no habit site
    assert multiplication_prefixes(Chain(3, (("*", 2), ("*", 0), ("+", 5)))) == [("Step 1: 3 * 2 = ", 9, 6, True)]
    # from 0 the habit product is the right one: nothing to probe
    assert multiplication_prefixes(Chain(0, (("*", 2),))) == []


def test_runs_on_the_small_organism(capsys):
    assert main(["--model", "organism-small", "--problems", "20", "--task", "organism-hidden"]) == 0
    out = capsys.readouterr().out
    assert "p(habit product)" in out and "visible to the outcome" in out and "hidden by a later * 0" in out
