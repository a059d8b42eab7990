"""critic=hybrid: the exact checker with an LLM critic, as a voter or as a veto."""

from capo_ray.config.components import CriticConfig
from capo_ray.config.judge_service import HybridConfig
from capo_ray.critics.hybrid import HybridCritic, checker_verdicts, veto
from capo_ray.driver import credit_stage as cs
from capo_ray.driver.records import Steps
from capo_ray.records import CritiqueResult

# step 1 false arithmetic, step 2 no arithmetic (logic only), step 3 true arithmetic
STEPS = ["4 * 5 = 21", "So we should add the remaining apples.", "21 + 1 = 22"]
SEG = [Steps(char_spans=[(0, 1)] * 3, token_spans=[(0, 1), (1, 2), (2, 3)], texts=STEPS)]


class ScriptedLLM:
    """An LLM critic that returns fixed critique texts (what a real one might say)."""

    def __init__(self, texts):
        self.texts = texts

    def critique(self, messages, step_texts):
        return [CritiqueResult(texts=list(self.texts), prompt_tokens=100, completion_tokens=20) for _ in messages]

    def shutdown(self):
        pass


def _hybrid(texts, mode, votes=1):
    c = CriticConfig(backend="hybrid", hybrid=HybridConfig(mode=mode, checker_votes=votes))
    (result,) = HybridCritic(ScriptedLLM(texts), c).critique([[{"role": "user", "content": "x"}]], [STEPS])
    return result


def test_checker_verdicts_and_veto():
    assert checker_verdicts(STEPS) == [True, None, False]
    # LLM says {2, 3}: step 3's arithmetic holds (checker: right), step 1's does not (checker:
    # wrong), step 2 cannot be checked (LLM's verdict kept) -> {1, 2}
    assert veto(frozenset({2, 3}), checker_verdicts(STEPS)) == frozenset({1, 2})


def test_veto_overrules_checkable_steps_and_keeps_the_rest():
    # The LLM misses the slip in step 1 and wrongly flags step 3; one critique is unreadable.
    result = _hybrid(["Step 3 is wrong. Wrong step list: [2, 3]", "no verdict here", "Wrong step list: []"], "veto")
    (j,) = cs.judge([result], SEG, "majority")
    assert j.verdicts == [frozenset({1, 2}), None, frozenset({1})]
    assert j.step_penalty == [1.0, 0.0, 0.0]  # step 1 by both readable ones; step 2 by 1 of 2: no majority
    assert "overrules step(s) 1, 3" in result.texts[0] and result.texts[1] == "no verdict here"
    assert (result.prompt_tokens, result.completion_tokens) == (100, 20)


def test_voter_adds_the_checker_as_more_voters():
    llm = ["Wrong step list: [2]", "Wrong step list: [2]", "Wrong step list: []"]
    one = _hybrid(llm, "voter", votes=1)
    assert len(one.texts) == 4
    (j,) = cs.judge([one], SEG, "majority")
    # votes per step over 4 critiques: step 1: checker only (1/4), step 2: 2/4, step 3: 0
    assert j.step_penalty == [0.0, 0.0, 0.0]  # majority needs > half: 2 of 4 is not
    (u,) = cs.judge([one], SEG, "union")
    assert u.step_penalty == [1.0, 1.0, 0.0]  # union: the checker's find is added
    four = _hybrid(llm, "voter", votes=4)
    (j4,) = cs.judge([four], SEG, "majority")
    assert j4.step_penalty == [1.0, 0.0, 0.0]  # 4 checker votes of 7 on step 1: a majority
