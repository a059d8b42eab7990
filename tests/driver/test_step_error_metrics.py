"""The held-out step-error metrics use the critic's full checks, the chain question included."""

from types import SimpleNamespace

from capo_ray.data.chain import Chain
from capo_ray.driver.periodic_eval import step_error_metrics

CHAIN = Chain(38, (("-", 5), ("+", 6)))


def _record(response: str, correct: bool) -> SimpleNamespace:
    return SimpleNamespace(question=CHAIN.question, greedy=SimpleNamespace(responses=[response], correct=[correct]))


def test_a_copied_operation_counts_as_a_wrong_step_though_its_arithmetic_holds():
    right = _record("Step 1: 38 - 5 = 33\nStep 2: 33 + 6 = 39\nThe answer is \\boxed{39}.", True)
    copied = _record("Step 1: 38 - 5 = 33\nStep 2: 33 - 5 = 28\nThe answer is \\boxed{28}.", False)
    slipped = _record("Step 1: 38 - 5 = 31\nStep 2: 33 + 6 = 39\nThe answer is \\boxed{39}.", True)
    metrics = step_error_metrics([right, copied, slipped], "eval/chain_heldout")
    assert metrics["eval/chain_heldout/step_error_rate"] == 2 / 3
    assert metrics["eval/chain_heldout/wrong_step_rate_among_correct"] == 1 / 2


def test_samples_at_the_rollout_temperature_are_counted_apart_from_greedy():
    right = "Step 1: 38 - 5 = 33\nStep 2: 33 + 6 = 39\nThe answer is \\boxed{39}."
    slipped = "Step 1: 38 - 5 = 31\nStep 2: 33 + 6 = 39\nThe answer is \\boxed{39}."
    record = SimpleNamespace(
        question=CHAIN.question,
        greedy=SimpleNamespace(responses=[right], correct=[True]),
        sampled=SimpleNamespace(responses=[right, slipped, slipped, "The answer is \\boxed{7}."],
                                correct=[True, True, True, False]),
    )
    metrics = step_error_metrics([record], "eval/chain_heldout")
    assert metrics["eval/chain_heldout/step_error_rate"] == 0.0
    # The answer without its steps is flagged too: the chain checks want every operation applied.
    assert metrics["eval/chain_heldout/sampled_step_error_rate"] == 3 / 4
    assert metrics["eval/chain_heldout/sampled_wrong_step_rate_among_correct"] == 2 / 3
