"""Step metrics from the stage records: the flagged rate by step position (with the last
bucket pooling every step from the 8th on) and the cache-hit count read off the judgements."""

import pytest

from capo_ray.driver.metrics import critic_metrics, flagged_by_position
from capo_ray.driver.records import Judgement, Steps
from capo_ray.records import CritiqueResult


def judged(penalty, cached=False):
    return Judgement(critique=CritiqueResult(texts=["x"], cached=cached), verdicts=[frozenset()], step_penalty=penalty)


def steps_of(n):
    return Steps(char_spans=[(i, i + 1) for i in range(n)], token_spans=[(i, i + 1) for i in range(n)],
                 texts=[f"s{i}" for i in range(n)])


def test_steps_from_the_eighth_on_share_one_bucket():
    # a 10-step response flags steps 2, 8 and 10; a 3-step one flags step 2; a 9-step one
    # flags nothing: positions 8+ hold steps 8, 9, 10 of the first and 8, 9 of the third.
    long_ = [0, 1, 0, 0, 0, 0, 0, 1, 0, 1]
    out = flagged_by_position([judged([float(p) for p in long_]), judged([0.0, 1.0, 0.0]), judged([0.0] * 9)])
    assert out["critic/flagged_at_step_2"] == pytest.approx(2 / 3)
    assert out["critic/flagged_at_step_4"] == 0.0  # steps 4 of the long responses only
    assert out["critic/flagged_at_step_8plus"] == pytest.approx(2 / 5)
    assert set(out) == {f"critic/flagged_at_step_{p}" for p in range(1, 8)} | {"critic/flagged_at_step_8plus"}
    # every voted step is in exactly one bucket: nothing past step 8 is lost
    assert "critic/flagged_at_step_8" not in out and "critic/flagged_at_step_9" not in out


def test_buckets_no_step_reached_are_absent_and_abstentions_count_nowhere():
    abstained = Judgement(critique=CritiqueResult(texts=[None]), verdicts=[None], step_penalty=None)
    out = flagged_by_position([judged([1.0, 0.0]), abstained])
    assert out == {"critic/flagged_at_step_1": 1.0, "critic/flagged_at_step_2": 0.0}


def test_cache_hits_are_counted_from_the_judgements():
    judgements = [judged([0.0]), judged([1.0], cached=True), judged([0.0], cached=True)]
    grpo = Judgement(critique=None, verdicts=[], step_penalty=None)  # not judged: not a hit either
    m = critic_metrics([steps_of(1)] * 4, judgements + [grpo], policy_tokens=10)
    assert m["critic/cache_hits"] == 2.0 and m["critic/responses_judged"] == 3.0
