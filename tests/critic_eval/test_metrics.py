"""Critic metrics against hand-computed values."""

import math
from dataclasses import dataclass

import pytest

from capo_ray.critic_eval.metrics import CriticScores, first_flagged, harmonic_mean, score_critic


@dataclass(frozen=True)
class Label:
    uid: str
    steps: list[str]
    first_error: int | None
    wrong_steps: frozenset[int]


def _label(uid: str, n_steps: int, first_error: int | None) -> Label:
    wrong = frozenset() if first_error is None else frozenset({first_error})
    return Label(uid, [f"step {i}" for i in range(1, n_steps + 1)], first_error, wrong)


LABELS = [
    _label("A", 4, 2),
    _label("B", 3, None),
    _label("C", 5, 4),
    _label("D", 2, None),
    _label("E", 3, 1),
]
PREDICTIONS = [
    frozenset({2, 3}),  # A: right first error, and step 3 (which only carries the error) flagged too
    frozenset({1}),  # B: a false alarm on a clean solution
    None,  # C: abstained
    frozenset(),  # D: rightly silent
    frozenset({3}),  # E: flags the wrong step
]


def test_hand_computed_scores():
    scores = score_critic(PREDICTIONS, LABELS)
    # Step level, C left out: A gives tp 1 (step 2), fp 1 (step 3); B fp 1; D nothing;
    # E fp 1 (step 3), fn 1 (step 1). tp 1, fp 3, fn 1.
    # precision 1/4, recall 1/2, F1 = 2 * (1/8) / (3/4) = 1/3.
    # First error: erroneous A hit, C miss (abstained), E miss -> 1/3; clean B miss, D hit -> 1/2;
    # harmonic mean 2 * (1/6) / (5/6) = 2/5.
    expected = CriticScores(
        n_examples=5,
        n_abstained=1,
        abstain_rate=0.2,
        true_positives=1,
        false_positives=3,
        false_negatives=1,
        step_precision=0.25,
        step_recall=0.5,
        step_f1=pytest.approx(1 / 3),
        first_error_acc_erroneous=pytest.approx(1 / 3),
        first_error_acc_correct=0.5,
        first_error_f1=pytest.approx(0.4),
    )
    assert scores == expected


def test_perfect_critic():
    perfect = [label.wrong_steps for label in LABELS]
    scores = score_critic(perfect, LABELS)
    assert (scores.step_precision, scores.step_recall, scores.step_f1) == (1.0, 1.0, 1.0)
    assert (scores.first_error_acc_erroneous, scores.first_error_acc_correct, scores.first_error_f1) == (1.0, 1.0, 1.0)
    assert scores.abstain_rate == 0.0


def test_silent_critic_scores_only_on_clean_examples():
    scores = score_critic([frozenset()] * len(LABELS), LABELS)
    # No flags: precision undefined (NaN), recall 0 of 3 wrong steps, F1 undefined.
    assert math.isnan(scores.step_precision) and scores.step_recall == 0.0 and math.isnan(scores.step_f1)
    # First error: every clean example right (2/2), every erroneous one wrong (0/3): harmonic mean 0.
    assert (scores.first_error_acc_erroneous, scores.first_error_acc_correct, scores.first_error_f1) == (0.0, 1.0, 0.0)


def test_all_abstained():
    scores = score_critic([None] * len(LABELS), LABELS)
    assert scores.abstain_rate == 1.0 and scores.n_abstained == 5
    assert math.isnan(scores.step_precision) and math.isnan(scores.step_recall)
    assert scores.first_error_acc_erroneous == 0.0 and scores.first_error_acc_correct == 0.0


def test_undefined_subset_accuracy_is_nan():
    clean_only = [LABELS[1], LABELS[3]]
    scores = score_critic([frozenset(), frozenset()], clean_only)
    assert math.isnan(scores.first_error_acc_erroneous) and math.isnan(scores.first_error_f1)
    assert scores.first_error_acc_correct == 1.0


def test_helpers():
    assert first_flagged(frozenset({4, 2, 7})) == 2 and first_flagged(frozenset()) is None
    assert harmonic_mean(1.0, 0.5) == pytest.approx(2 / 3)
    assert harmonic_mean(0.0, 0.0) == 0.0 and math.isnan(harmonic_mean(math.nan, 1.0))


def test_invalid_inputs():
    with pytest.raises(ValueError, match="2 predictions but 5 labelled"):
        score_critic(PREDICTIONS[:2], LABELS)
    with pytest.raises(ValueError, match=r"prediction \[0, 2\] for A is outside its steps 1..4"):
        score_critic([frozenset({0, 2})] + PREDICTIONS[1:], LABELS)
    with pytest.raises(ValueError, match="outside its steps 1..3"):
        score_critic([PREDICTIONS[0], frozenset({4})] + PREDICTIONS[2:], LABELS)
