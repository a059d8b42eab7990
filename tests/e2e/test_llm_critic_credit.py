"""The paper's LLM-as-GenPRM path with SmolLM2 as the judge, on a handful of hand-made
responses: critique prompts built by the core, k critiques in one request, each parsed or
abstained, votes and token credits shaped right. (SmolLM2 judges at chance: this checks the
mechanics, not the judgements.)"""

import os

import pytest
import torch

from capo_ray.driver import credit_stage as cs
from capo_ray.driver.metrics import critic_metrics
from capo_ray.models.smollm2 import load_tokenizer, smollm2_path
from capo_ray.records import Problem, Rollout
from capo_ray.rewards.verdict import Verdict
from capo_ray.workers.detokenize import incremental_offsets
from capo_ray.config.engine import EngineSettings
from capo_ray.workers.vllm_engine import EngineConfig

pytestmark = pytest.mark.slow

RESPONSES = [
    ("Compute 3 + 4 * 5.", "23", "Step 1: 4 * 5 = 20\nStep 2: 3 + 20 = 23\nThe answer is \\boxed{23}.", True),
    ("Compute 9 - 2.", "7", "Step 1: 9 - 2 = 6\nThe answer is \\boxed{6}.", False),
    ("Compute 6 * 3 - 4.", "14", "Step 1: 6 * 3 = 18\n\nStep 2: 18 - 4 = 15\n\nThe answer is \\boxed{15}.", False),
]


def _rollouts(tokenizer) -> list[Rollout]:
    out = []
    for i, (question, answer, text, _) in enumerate(RESPONSES):
        ids = tokenizer.encode(text, add_special_tokens=False) + [tokenizer.eos_token_id]
        decoded, offsets = incremental_offsets(tokenizer, ids)
        assert decoded == text
        out.append(Rollout(Problem(f"p{i}", question, answer), i, [1, 2], ids, decoded, offsets,
                           [-1.0] * len(ids), 0, "stop"))
    return out


def test_smollm2_genprm_critiques_votes_and_credit():
    os.environ.setdefault("VLLM_ENABLE_V1_MULTIPROCESSING", "0")
    from capo_ray.workers.critic_llm import CriticWorker

    tokenizer = load_tokenizer()
    rollouts = _rollouts(tokenizer)
    steps = cs.segment(rollouts)
    assert [len(s.texts) for s in steps] == [3, 2, 3]
    messages = cs.critique_messages(rollouts, steps, use_reference=True)
    assert "Wrong step list:" in messages[0][-1]["content"] and "Step 3:" in messages[0][-1]["content"]
    critic = CriticWorker(EngineConfig(model=str(smollm2_path()), seed=0, settings=EngineSettings(max_model_len=2048)))
    results = critic.critique(messages, k=2, temperature=0.7, max_tokens=64)
    assert [len(r.texts) for r in results] == [2, 2, 2]
    assert all(r.error is None and r.prompt_tokens > 0 and r.completion_tokens > 0 for r in results)
    judgements = cs.judge(results, steps, "majority")
    outcomes = [Verdict(ok, "ok", a) for _, a, _, ok in RESPONSES]
    credits = cs.assign_credit(rollouts, outcomes, steps, judgements, 2.0, 1.0, "outcome")
    for r, s, j, c, (_, _, _, ok) in zip(rollouts, steps, judgements, credits, RESPONSES):
        for v in j.verdicts:  # parsed (a set of valid step numbers) or abstained
            assert v is None or v <= set(range(1, len(s.texts) + 1))
        assert j.step_penalty is None or (len(j.step_penalty) == len(s.texts) and all(p in (0.0, 1.0) for p in j.step_penalty))
        assert c.rewards.shape == (len(r.response_ids),) and c.rewards.dtype == torch.float32
        inside = torch.zeros(len(r.response_ids), dtype=torch.bool)
        for lo, hi in s.token_spans:
            inside[lo:hi] = True
        outcome = 2.0 if ok else 0.0
        assert torch.all(c.rewards[~inside] == outcome)  # EOS and blank lines keep the outcome credit
        assert torch.all((c.rewards[inside] == outcome) | (c.rewards[inside] == outcome - 1.0))
    m = critic_metrics(steps, judgements, policy_tokens=sum(len(r.response_ids) for r in rollouts))
    assert m["critic/critiques_per_response"] == 2 and 0.0 <= m["critic/parse_rate"] <= 1.0
    assert m["critic/judge_tokens_per_policy_token"] > 1.0  # a judge reads far more than it is judging
