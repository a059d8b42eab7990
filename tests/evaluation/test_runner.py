"""evaluate() with a scripted policy: hand-computed pass@1 / avg@k / pass@k (derivation in
conftest.py), verifier failures counted, one generate and one verify call per mode."""

from __future__ import annotations

import random

import pytest

from capo_ray.evaluation.results import EvalSettings, SampleSet
from capo_ray.evaluation.scoring import score_mode


def test_scores_per_benchmark_match_the_hand_computed_values(result):
    g, a = result.scores["gsm8k_test"], result.scores["aime24"]
    assert (g.num_problems, a.num_problems) == (2, 1)
    assert g.greedy.accuracy == 0.5 and a.greedy.accuracy == 0.0
    assert g.sampled.accuracy == 3 / 8 and g.sampled.pass_at_k == 1.0
    assert a.sampled.accuracy == 0.0 and a.sampled.pass_at_k == 0.0
    assert g.sampled.samples_per_problem == 4 and g.greedy.samples_per_problem == 1


def test_metrics_and_macro_averages(result):
    assert result.metric_names() == ["pass@1", "avg@4", "pass@4"]
    assert result.metric("pass@1") == {"gsm8k_test": 0.5, "aime24": 0.0}
    # Unweighted over benchmarks: gsm8k_test's 2 problems count no more than aime24's 1.
    assert result.average("pass@1") == 0.25
    assert result.average("avg@4") == 0.1875
    assert result.average("pass@4") == 0.5
    with pytest.raises(ValueError, match=r"unknown metric 'avg@8'; this result has \['pass@1', 'avg@4', 'pass@4'\]"):
        result.metric("avg@8")


def test_verifier_failures_are_counted_not_folded(result):
    g, a = result.scores["gsm8k_test"], result.scores["aime24"]
    assert g.sampled.status_counts == {"ok": 6, "no_answer": 1, "timeout": 1, "error": 0}
    assert g.greedy.status_counts == {"ok": 2, "no_answer": 0, "timeout": 0, "error": 0}
    assert a.greedy.status_counts == {"ok": 0, "no_answer": 0, "timeout": 0, "error": 1}
    # no_answer is the model's failure, not the verifier's: it is not in the failure count.
    assert (g.sampled.verifier_failures, a.greedy.verifier_failures) == (1, 1)
    flat = result.flat_metrics()
    assert flat["eval/gsm8k_test/verifier_failures"] == 1 and flat["eval/aime24/verifier_failures"] == 1
    assert flat["eval/avg/avg@4"] == 0.1875 and flat["eval/gsm8k_test/pass@1"] == 0.5


def test_one_generate_and_one_verify_call_per_mode_across_benchmarks(scenario):
    scenario.run()
    # (prompts, n, temperature, max_new_tokens): greedy is n = 1 at temperature 0.
    assert scenario.policy.calls == [(3, 1, 0.0, 32), (3, 4, 0.7, 32)]
    assert scenario.verifier.batches == [3, 12]


def test_per_problem_records_keep_everything_for_inspection(result):
    a, b = result.problems["gsm8k_test"]
    assert (a.uid, a.source, a.question, a.reference) == ("A", "g:1", "2 + 2?", "4")
    assert a.sampled.extracted == ["4", "5", "4", None]
    assert a.sampled.statuses == ["ok", "ok", "ok", "timeout"]
    assert a.sampled.correct == [True, False, True, False]
    assert b.sampled.statuses[0] == "no_answer" and b.greedy.correct == [False]
    assert [r.uid for r in result.problems["aime24"]] == ["C"]


def test_greedy_only_and_sampled_only(make_scenario):
    only_greedy = make_scenario(EvalSettings(greedy=True, k=0, temperature=1.0, max_new_tokens=8))
    r = only_greedy.run()
    assert r.metric_names() == ["pass@1"] and len(only_greedy.policy.calls) == 1
    assert r.scores["aime24"].sampled is None and r.problems["aime24"][0].sampled is None
    only_sampled = make_scenario(EvalSettings(greedy=False, k=2, temperature=1.0, max_new_tokens=8))
    r = only_sampled.run()
    # first two samples: A [4, 5] -> 1 of 2; B [no box, 11] -> 0 of 2: avg@2 = 1/4, pass@2 = 1/2
    assert r.metric_names() == ["avg@2", "pass@2"]
    assert r.metric("avg@2")["gsm8k_test"] == 0.25 and r.metric("pass@2")["gsm8k_test"] == 0.5


@pytest.mark.parametrize(
    "settings, message",
    [
        (EvalSettings(greedy=False, k=0, temperature=1.0, max_new_tokens=8), "nothing to do"),
        (EvalSettings(greedy=True, k=4, temperature=0.0, max_new_tokens=8), "needs temperature > 0"),
        (EvalSettings(greedy=True, k=-1, temperature=1.0, max_new_tokens=8), "k must be >= 0"),
        (EvalSettings(greedy=True, k=0, temperature=1.0, max_new_tokens=0), "max_new_tokens must be >= 1"),
    ],
)
def test_bad_settings_are_refused(make_scenario, settings, message):
    with pytest.raises(ValueError, match=message):
        make_scenario(settings).run()


def test_empty_benchmark_is_refused(scenario):
    scenario.problems["aime24"] = []
    with pytest.raises(ValueError, match=r"no problems for benchmarks \['aime24'\]"):
        scenario.run()


def test_a_generate_fn_returning_the_wrong_shape_is_an_error(scenario):
    scenario.policy.sampled = {uid: texts[:3] for uid, texts in scenario.policy.sampled.items()}
    with pytest.raises(ValueError, match=r"generate_fn returned 3 groups of sizes \[3\] for 3 prompts x n = 4"):
        scenario.run()


def test_pass_at_k_bounds_avg_at_k_on_random_outcomes():
    # Invariants: avg@k <= pass@k, both in [0, 1]; pass@k == avg@k when k == 1.
    rng = random.Random(0)
    for _ in range(200):
        k = rng.randint(1, 6)
        sets = []
        for _ in range(rng.randint(1, 5)):
            correct = [rng.random() < 0.3 for _ in range(k)]
            sets.append(SampleSet(["x"] * k, [None] * k, ["ok"] * k, correct))
        s = score_mode(sets)
        assert 0 <= s.accuracy <= s.pass_at_k <= 1
        if k == 1:
            assert s.accuracy == s.pass_at_k


def test_score_mode_rejects_ragged_samples_and_unknown_statuses():
    one, two = SampleSet(["x"], [None], ["ok"], [True]), SampleSet(["x"] * 2, [None] * 2, ["ok"] * 2, [True] * 2)
    with pytest.raises(ValueError, match="differing or zero sample counts"):
        score_mode([one, two])
    with pytest.raises(ValueError, match="unknown verdict statuses"):
        score_mode([SampleSet(["x"], [None], ["weird"], [False])])
