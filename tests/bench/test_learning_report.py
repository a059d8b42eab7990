import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from bench.learning_report import headline, steps_to, summarize  # noqa: E402


def _run(cell, seed, accs):
    steps = [5 * (i + 1) for i in range(len(accs))]
    curves = {"step": steps, "eval_step": steps, "heldout_accuracy": accs, "wrong_steps_among_correct": [0.1] * len(accs),
              "step_s": [1.0] * len(accs), "judge_tokens_per_policy_token": [0.0] * len(accs)}
    return {"cell": cell, "algo": cell, "seed": seed, "ok": True, "overrides": [], "curves": curves}


def test_steps_to_target_and_headline_ratio():
    runs = [_run("grpo", 0, [0.1, 0.2, 0.3, 0.4]), _run("capo", 0, [0.2, 0.4, 0.5, 0.5])]
    assert steps_to(runs[0]["curves"], 0.35) == 20
    summary = summarize(runs)
    assert summary["target"] == 0.35  # GRPO's final: mean of its last two evaluations
    assert summary["ratio"]["median"] == 10 / 20
    assert headline(summary) == "CAPO/GRPO steps to target: 0.50x (final accuracy CAPO 0.50, GRPO 0.35; 1 seed)"


def test_capo_that_never_reaches_the_target_is_a_lower_bound():
    runs = [_run("grpo", 0, [0.3, 0.5, 0.5]), _run("capo", 0, [0.1, 0.1, 0.2])]
    line = headline(summarize(runs))
    assert line.startswith("CAPO/GRPO steps to target: >=1.50x")  # 15 steps (all) / GRPO's 10
    failed = summarize([dict(runs[0], ok=False), runs[1]])
    assert headline(failed).endswith("n/a (a CAPO or GRPO run is missing or failed)")


def test_no_ratio_when_grpo_ends_below_its_start():
    def with_start(run, start):
        c = run["curves"]
        c["eval_step"], c["heldout_accuracy"] = [0, *c["eval_step"]], [start, *c["heldout_accuracy"]]
        c["wrong_steps_among_correct"] = [0.1, *c["wrong_steps_among_correct"]]
        return run

    runs = [with_start(_run("grpo", 0, [0.6, 0.5, 0.4]), 0.7), with_start(_run("capo", 0, [0.7, 0.75, 0.8]), 0.7)]
    summary = summarize(runs)
    assert summary["cells"]["grpo"]["steps_to_target"] == [0]
    assert headline(summary) == ("CAPO/GRPO steps to target: n/a (GRPO ended no higher than its start, so no target; "
                                 "final accuracy CAPO 0.78, GRPO 0.45; 1 seed)")
