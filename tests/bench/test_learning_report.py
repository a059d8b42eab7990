import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from bench.learning import curves_of  # noqa: E402
from bench.learning_report import headline, steps_to, summarize  # noqa: E402


def _run(cell, seed, accs):
    steps = [5 * (i + 1) for i in range(len(accs))]
    curves = {"step": steps, "eval_step": steps, "heldout_accuracy": accs, "wrong_steps_among_correct": [0.1] * len(accs),
              "heldout_greedy_accuracy": [0.9] * len(accs),
              "step_s": [1.0] * len(accs), "judge_tokens_per_policy_token": [0.0] * len(accs)}
    return {"cell": cell, "algo": cell, "seed": seed, "ok": True, "overrides": [], "curves": curves}


def test_steps_to_target_and_headline_ratio():
    runs = [_run("grpo", 0, [0.1, 0.2, 0.3, 0.4]), _run("capo", 0, [0.2, 0.4, 0.5, 0.5])]
    assert steps_to(runs[0]["curves"], 0.35) == 20
    summary = summarize(runs)
    assert summary["target"] == 0.35  # GRPO's final: mean of its last two evaluations
    assert summary["ratio"]["median"] == 10 / 20
    assert headline(summary) == ("CAPO/GRPO steps to target: 0.50x (final accuracy CAPO 0.50, GRPO 0.35; "
                                 "wrong steps among correct CAPO 0.10, GRPO 0.10; 1 seed)")


def test_each_seed_is_paired_with_its_own_grpo_final_so_no_seed_drops_out():
    runs = [_run("grpo", 0, [0.2, 0.4, 0.6, 0.6]), _run("grpo", 1, [0.2, 0.3, 0.4, 0.4]),
            _run("capo", 0, [0.3, 0.6, 0.6, 0.6]), _run("capo", 1, [0.4, 0.5, 0.5, 0.5])]
    summary = summarize(runs)
    assert summary["targets"] == {0: 0.6, 1: 0.4}
    assert summary["cells"]["grpo"]["steps_to_target"] == [15, 15]
    assert summary["cells"]["capo"]["steps_to_target"] == [10, 5]
    # with one target (the mean of GRPO's finals, 0.5) seed 1's GRPO would never reach it and
    # the seed where GRPO was slowest would leave the median
    assert summary["ratio"]["per_seed"] == [10 / 15, 5 / 15] and summary["ratio"]["median"] == 0.5


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
        c["heldout_greedy_accuracy"] = [0.9, *c["heldout_greedy_accuracy"]]
        return run

    runs = [with_start(_run("grpo", 0, [0.6, 0.5, 0.4]), 0.7), with_start(_run("capo", 0, [0.7, 0.75, 0.8]), 0.7)]
    summary = summarize(runs)
    assert summary["cells"]["grpo"]["steps_to_target"] == [0]
    assert headline(summary) == ("CAPO/GRPO steps to target: n/a (GRPO ended no higher than its start, so no target; "
                                 "final accuracy CAPO 0.78, GRPO 0.45; wrong steps among correct CAPO 0.10, "
                                 "GRPO 0.10; 1 seed)")


def test_curves_take_the_sampled_accuracy_as_held_out_accuracy_and_keep_greedy_beside_it():
    start = {"eval_start/chain_heldout/pass@1": 0.9, "eval_start/chain_heldout/avg@4": 0.6,
             "eval_start/chain_heldout/pass@4": 0.95, "eval_start/chain_heldout/sampled_wrong_step_rate_among_correct": 0.3,
             "eval_start/chain_heldout/wrong_step_rate_among_correct": 0.01}
    rows = [{"step": 0, "time/step": 2.0, "outcome/accuracy": 0.5, **start},
            {"step": 1, "time/step": 3.0, "time/eval": 1.0, "eval/chain_heldout/pass@1": 0.92,
             "eval/chain_heldout/avg@4": 0.7, "eval/chain_heldout/sampled_wrong_step_rate_among_correct": 0.2,
             "eval/chain_heldout/wrong_step_rate_among_correct": 0.0}]
    curves = curves_of(rows)
    assert curves["eval_step"] == [0, 2] and curves["eval_wall_s"] == [0.0, 6.0]
    assert curves["heldout_accuracy"] == [0.6, 0.7]  # avg@4, not pass@4
    assert curves["heldout_greedy_accuracy"] == [0.9, 0.92]
    assert curves["wrong_steps_among_correct"] == [0.3, 0.2]
    assert curves["greedy_wrong_steps_among_correct"] == [0.01, 0.0]
