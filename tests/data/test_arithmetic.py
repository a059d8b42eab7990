from capo_ray.critics.arith import check_step
from capo_ray.data.arithmetic import FEW_SHOT, ArithmeticSpec, ArithmeticStream, _evaluate, few_shot_messages


def test_evaluate_uses_precedence_without_eval():
    assert _evaluate([3, 4, 5], ["+", "*"]) == 23
    assert _evaluate([6, 3, 4], ["*", "-"]) == 14
    assert _evaluate([2, 3, 4, 5], ["-", "*", "+"]) == -5  # 2 - 12 + 5


def test_stream_is_reproducible_and_batches_differ():
    spec = ArithmeticSpec(num_ops=2, operand_min=1, operand_max=20)
    a, b = ArithmeticStream(spec, seed=3), ArithmeticStream(spec, seed=3)
    assert a.batch(5, 8) == b.batch(5, 8)
    assert a.batch(5, 8) != a.batch(6, 8)
    for p in a.batch(0, 50):
        assert p.question.startswith("Compute ") and p.question.count(" ") == 5  # 3 operands, 2 ops
        nums = [int(t) for t in p.question[8:-1].split() if t.lstrip("-").isdigit()]
        assert all(1 <= n <= 20 for n in nums)


def test_few_shot_demos_are_correct_and_end_in_a_box():
    for _, answer in FEW_SHOT:
        lines = answer.splitlines()
        assert "\\boxed{" in lines[-1]
        assert all(check_step(line)[0] is False for line in lines[:-1])
    msgs = few_shot_messages("Compute 1 + 1.")
    assert msgs[0]["role"] == "system" and msgs[-1] == {"role": "user", "content": "Compute 1 + 1."}
    assert len(msgs) == 2 + 2 * len(FEW_SHOT)
