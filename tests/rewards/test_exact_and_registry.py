"""ExactMatchVerifier and the verifier registry."""

import pytest

from capo_ray.rewards import VERIFIERS, ExactMatchVerifier, MathVerifier, Verdict, make_verifier


@pytest.mark.parametrize(
    ("response", "reference", "correct"),
    [
        ("\\boxed{0.5}", "\\frac{1}{2}", True),
        ("\\boxed{\\dfrac{1}{2}}", "1/2", True),
        ("#### 1,000", "1000", True),
        ("The answer is 18 dollars.", "18", True),
        ("\\boxed{4.0}", "#### 4", True),
        ("\\boxed{\\left(1,2\\right)}", "(1, 2)", True),  # same spelling
        ("\\boxed{0.333}", "\\frac13", False),
        ("\\boxed{17}", "18", False),
        ("\\boxed{2(x+1)}", "2x+2", False),  # no algebra here: that is the math verifier's job
        ("\\boxed{52_4}", "52_8", False),
    ],
)
def test_exact_verdicts(response, reference, correct):
    with ExactMatchVerifier() as verifier:
        assert verifier.verify_batch([response], [reference])[0].correct is correct


def test_exact_statuses():
    verdicts = ExactMatchVerifier().verify_batch(["nothing", "\\boxed{3}"], ["3", ""])
    assert verdicts == [Verdict(False, "no_answer", None), Verdict(False, "error", "3")]


def test_verdict_cannot_be_correct_without_a_check():
    with pytest.raises(ValueError, match="timeout"):
        Verdict(True, "timeout", "3")


def test_registry_builds_each_verifier():
    assert set(VERIFIERS) == {"math", "exact"}
    with make_verifier("exact", timeout_s=1.0, num_workers=1) as exact:
        assert isinstance(exact, ExactMatchVerifier)
    with make_verifier("math", timeout_s=1.0, num_workers=1) as math_verifier:
        assert isinstance(math_verifier, MathVerifier)


def test_registry_error_lists_valid_names():
    with pytest.raises(ValueError, match=r"unknown verifier 'sympy'; valid names: \['exact', 'math'\]"):
        make_verifier("sympy", timeout_s=1.0, num_workers=1)
