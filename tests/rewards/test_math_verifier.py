"""MathVerifier: equivalence by math-verify, per-check deadlines, threads, no evaluation."""

import json
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from capo_ray.rewards import MathVerifier, Verdict, is_correct
from capo_ray.rewards.math import PendingCheck, triage

# (response answer, reference): the verifier must call these the same answer.
EQUIVALENT = [
    ("0.5", "\\frac{1}{2}"),
    ("1/2", "\\frac12"),
    ("\\dfrac{1}{2}", "\\frac{1}{2}"),
    ("\\tfrac{3}{4}", "0.75"),
    ("x = 3", "3"),
    ("y = 2x+1", "2x+1"),
    ("(1, 2]", "(1,2]"),
    ("\\left(1,2\\right]", "(1,2]"),
    ("\\{3,2,1\\}", "\\{1,2,3\\}"),
    ("1,2,3", "3,2,1"),
    ("50\\%", "50"),
    ("10 \\text{ cm}", "10"),
    ("18 dollars", "18"),
    ("1,000", "1000"),
    ("\\$18", "18"),
    ("3\\sqrt{2}", "\\sqrt{18}"),
    ("\\pi/2", "\\frac{\\pi}{2}"),
    ("90^\\circ", "90"),
    ("\\left( 3, \\frac{\\pi}{2} \\right)", "(3,\\frac{\\pi}{2})"),
    ("x^2+2x+1", "(x+1)^2"),
    ("3.0", "3"),
    ("\\frac{9}{3}", "3"),
    ("4210_{5}", "4210_5"),
    ("\\text{(C)}", "C"),
]

# (response answer, reference): different answers.
DIFFERENT = [
    ("2", "3"),
    ("-1", "1"),
    ("[1,2)", "(1,2]"),
    ("0.333", "\\frac13"),
    ("\\frac{1}{3}", "\\frac{1}{2}"),
    ("x^2+1", "(x+1)^2"),
    ("(3, \\pi)", "(3,\\frac{\\pi}{2})"),
    ("\\sqrt{2}", "2"),
    ("52_4", "52_8"),  # math-verify alone drops the base and says equal
    ("A", "B"),
    ("1000", "100"),
]


@pytest.fixture(scope="module")
def verifier():
    with MathVerifier(timeout_s=10.0, num_workers=2) as v:
        yield v


@pytest.fixture(scope="module")
def equivalence_verdicts(verifier):
    """All equivalence cases in one batch (one pool round trip for the whole module)."""
    pairs = EQUIVALENT + DIFFERENT
    responses = [f"Reasoning.\n\nSo the answer is $\\boxed{{{answer}}}$." for answer, _ in pairs]
    verdicts = verifier.verify_batch(responses, [reference for _, reference in pairs])
    return dict(zip(pairs, verdicts))


@pytest.mark.parametrize("pair", EQUIVALENT, ids=[f"{a} == {b}" for a, b in EQUIVALENT])
def test_equivalent_answers_are_correct(pair, equivalence_verdicts):
    verdict = equivalence_verdicts[pair]
    assert verdict == Verdict(True, "ok", pair[0])


@pytest.mark.parametrize("pair", DIFFERENT, ids=[f"{a} != {b}" for a, b in DIFFERENT])
def test_different_answers_are_incorrect(pair, equivalence_verdicts):
    verdict = equivalence_verdicts[pair]
    assert verdict == Verdict(False, "ok", pair[0])


def test_reference_forms(verifier):
    responses = ["\\boxed{72}", "\\boxed{0.5}", "\\boxed{\\frac{\\pi}{2}}", "#### 72"]
    references = [
        "72",
        "\\frac{1}{2}",
        "The angle is therefore $\\boxed{\\dfrac{\\pi}{2}}$.",
        "She sold 48+24 = <<48+24=72>>72 clips.\n#### 72",
    ]
    assert [v.correct for v in verifier.verify_batch(responses, references)] == [True] * 4


def test_statuses_for_missing_answers(verifier):
    verdicts = verifier.verify_batch(["I do not know.", "\\boxed{3}"], ["3", "   "])
    assert verdicts == [Verdict(False, "no_answer", None), Verdict(False, "error", "3")]


def test_triage_decides_common_cases_without_a_worker():
    assert triage("\\boxed{\\dfrac{1}{2}}", "\\frac{1}{2}") == Verdict(True, "ok", "\\dfrac{1}{2}")
    assert triage("#### 1,000", "1000") == Verdict(True, "ok", "1,000")
    assert triage("\\boxed{17}", "18") == Verdict(False, "ok", "17")
    assert triage("\\boxed{0.5}", "\\frac12") == Verdict(True, "ok", "0.5")  # exact rationals
    assert triage("The answer is x = 5.", "5") == Verdict(True, "ok", "x = 5")
    assert isinstance(triage("\\boxed{0.333}", "\\frac13"), PendingCheck)  # close: math-verify's call
    assert isinstance(triage("\\boxed{\\sqrt{18}}", "3\\sqrt2"), PendingCheck)


def test_length_mismatch_is_an_error(verifier):
    with pytest.raises(ValueError, match="2 responses but 1 references"):
        verifier.verify_batch(["a", "b"], ["a"])


def test_pathological_answer_times_out_and_pool_recovers():
    # 2 s: far beyond a normal check even on a loaded machine, far below 9^(9^(9^9)).
    with MathVerifier(timeout_s=2.0, num_workers=1) as verifier:
        verifier.wait_ready()
        start = time.perf_counter()
        verdicts = verifier.verify_batch(["\\boxed{9^{9^{9^{9}}}}", "\\boxed{\\sqrt{8}}"], ["1", "2\\sqrt{2}"])
        elapsed = time.perf_counter() - start
        assert verdicts[0] == Verdict(False, "timeout", "9^{9^{9^{9}}}")
        # The stuck worker was killed and replaced, so the next check in the same batch ran.
        assert verdicts[1] == Verdict(True, "ok", "\\sqrt{8}")
        # The deadline + a replacement's start-up + one check; never the unbounded computation.
        assert elapsed < 30.0
        assert verifier.verify_batch(["\\boxed{\\pi/2}"], ["\\frac{\\pi}{2}"])[0].correct


def test_verify_batch_from_threads(verifier):
    # math-verify's own timeout (signal.alarm) raises outside the main thread; ours must not.
    # Pairs the triage cannot decide, so every call goes through the worker pool.
    def check(i: int) -> list[Verdict]:
        responses = [f"\\boxed{{\\sqrt{{{8 * i * i}}}}}", "\\boxed{\\sqrt{2}}"]
        return verifier.verify_batch(responses, [f"{2 * i}\\sqrt{{2}}", "\\sqrt{3}"])

    with ThreadPoolExecutor(max_workers=4) as pool:
        results = list(pool.map(check, range(1, 9)))
    assert all(r[0].correct and not r[1].correct for r in results)
    assert all(v.status == "ok" for r in results for v in r)


def test_is_correct_in_a_thread():
    results = []
    thread = threading.Thread(target=lambda: results.append(is_correct("\\boxed{\\sqrt{8}}", "2\\sqrt{2}")))
    thread.start()
    thread.join(60)
    assert results == [True]
    assert is_correct("The answer is 5.", "5")
    assert not is_correct("\\boxed{6}", "5")


def test_is_correct_at_the_top_level_of_a_plain_script(tmp_path):
    # The shape of a user's quick check: no main guard, a pair only math-verify can decide.
    script = tmp_path / "check.py"
    script.write_text(
        "from capo_ray.rewards import is_correct\n"
        "print(is_correct('\\\\boxed{\\\\sqrt{8}}', '2\\\\sqrt{2}'), is_correct('\\\\boxed{x^2}', 'x^3'))\n"
    )
    repo = Path(__file__).resolve().parents[2]
    result = subprocess.run([sys.executable, str(script)], cwd=tmp_path, capture_output=True, text=True,
                            timeout=180, env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(repo), "HOME": str(Path.home())})
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["True", "False"]


def test_model_text_is_never_executed(verifier, tmp_path):
    marker = tmp_path / "pwned"
    payloads = [
        f"__import__('os').system('touch {marker}')",
        f"eval(\"__import__('os').system('touch {marker}')\")",
        f"\\text{{{marker}}}",
    ]
    verdicts = verifier.verify_batch([f"\\boxed{{{p}}}" for p in payloads], ["0"] * len(payloads))
    assert [v.correct for v in verdicts] == [False] * len(payloads)
    assert not marker.exists()
    assert not is_correct(f"\\boxed{{{payloads[0]}}}", "0")
    assert not marker.exists()


def test_closed_verifier_refuses_work():
    verifier = MathVerifier(timeout_s=1.0, num_workers=1)
    verifier.close()
    verifier.close()  # idempotent
    with pytest.raises(RuntimeError, match="closed"):
        verifier.verify_batch(["\\boxed{\\sqrt{8}}"], ["2\\sqrt{2}"])


DATA_DIR = Path(__file__).resolve().parents[2] / ".." / "shared" / "data"


@pytest.mark.skipif(not (DATA_DIR / "math500.jsonl").is_file(), reason="shared data directory not present")
def test_math500_gold_solutions_match_their_answers(verifier):
    # Real data: each worked solution (answer in its last \boxed{}) against the answer field.
    rows = [json.loads(line) for line in (DATA_DIR / "math500.jsonl").read_text().splitlines()]
    verdicts = verifier.verify_batch([r["solution"] for r in rows], [r["answer"] for r in rows])
    assert [r["answer"] for r, v in zip(rows, verdicts) if not v.correct] == []
