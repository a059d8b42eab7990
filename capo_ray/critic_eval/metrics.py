"""How well a critic finds wrong steps, scored against step-labelled solutions.

A prediction per example is the critic's set of wrong steps (1-based; after voting), or None
when it abstained (every critique failed or had no parseable verdict).

Two views:
- Step level: precision / recall / F1 of the wrong-step flags against ``wrong_steps``,
  micro-averaged over steps (over the labelled ones only, where a file labels just the first
  error: ``labelled_steps``). Abstained examples are left out (and counted separately): an
  abstention flags nothing and is handled by the trainer as "no process credit", not as
  "all steps right".
- First error (ProcessBench, Zheng et al. 2024): the earliest flagged step must equal the
  labelled ``first_error``, with "no flag" matching "no error". Accuracy is reported on the
  erroneous and on the error-free examples separately, and their harmonic mean is the
  headline number, as ProcessBench does. Here an abstention counts as a miss (ProcessBench
  scores an unparseable verdict as wrong), so a critic cannot gain by abstaining.

A ratio whose denominator is empty (precision with no flags, accuracy on an empty subset) is
NaN, never a made-up 0 or 1.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Protocol, Sequence


class StepLabels(Protocol):
    """The labelled side; ``StepErrorExample`` is one."""

    uid: str
    steps: list[str]
    first_error: int | None
    wrong_steps: frozenset[int]


@dataclass(frozen=True)
class CriticScores:
    n_examples: int
    n_abstained: int
    abstain_rate: float
    true_positives: int  # flagged steps that are labelled wrong
    false_positives: int  # flagged steps labelled right
    false_negatives: int  # wrong steps not flagged
    step_precision: float
    step_recall: float
    step_f1: float
    first_error_acc_erroneous: float  # over examples with an error
    first_error_acc_correct: float  # over examples without one
    first_error_f1: float  # harmonic mean of the two accuracies


def _ratio(numerator: int, denominator: int) -> float:
    return numerator / denominator if denominator else math.nan


def harmonic_mean(a: float, b: float) -> float:
    if math.isnan(a) or math.isnan(b):
        return math.nan
    return 0.0 if a + b == 0 else 2 * a * b / (a + b)


def first_flagged(prediction: frozenset[int]) -> int | None:
    return min(prediction) if prediction else None


def _check(predictions: Sequence[frozenset[int] | None], labels: Sequence[StepLabels]) -> None:
    if len(predictions) != len(labels):
        raise ValueError(f"score_critic: {len(predictions)} predictions but {len(labels)} labelled examples")
    for prediction, label in zip(predictions, labels):
        if prediction is not None and not all(1 <= step <= len(label.steps) for step in prediction):
            raise ValueError(
                f"score_critic: prediction {sorted(prediction)} for {label.uid} is outside its steps 1..{len(label.steps)}"
            )


def score_critic(predictions: Sequence[frozenset[int] | None], labels: Sequence[StepLabels]) -> CriticScores:
    """Scores of one critic's predictions (None = abstained) against the labels, in order."""
    _check(predictions, labels)
    tp = fp = fn = abstained = 0
    hits = {True: 0, False: 0}  # keyed by "the example has an error"
    totals = {True: 0, False: 0}
    for prediction, label in zip(predictions, labels):
        has_error = label.first_error is not None
        totals[has_error] += 1
        if prediction is None:
            abstained += 1
            continue
        labelled = getattr(label, "labelled_steps", None)
        scored = prediction if labelled is None else frozenset(s for s in prediction if s <= labelled)
        tp += len(scored & label.wrong_steps)
        fp += len(scored - label.wrong_steps)
        fn += len(label.wrong_steps - scored)
        hits[has_error] += first_flagged(prediction) == label.first_error
    precision, recall = _ratio(tp, tp + fp), _ratio(tp, tp + fn)
    acc_erroneous, acc_correct = _ratio(hits[True], totals[True]), _ratio(hits[False], totals[False])
    return CriticScores(
        n_examples=len(labels),
        n_abstained=abstained,
        abstain_rate=_ratio(abstained, len(labels)),
        true_positives=tp,
        false_positives=fp,
        false_negatives=fn,
        step_precision=precision,
        step_recall=recall,
        step_f1=harmonic_mean(precision, recall),
        first_error_acc_erroneous=acc_erroneous,
        first_error_acc_correct=acc_correct,
        first_error_f1=harmonic_mean(acc_erroneous, acc_correct),
    )
