"""capo-ray-critic-eval on outside ProcessBench-format data, for the arith, openai and hybrid
judges (the openai endpoint is the fault proxy's stand-in judge: no model needed), with a
critique prompt template file."""

import json

import pytest

from capo_ray.config.judge_service import HybridConfig, OpenAIJudgeConfig
from capo_ray.critic_eval.cli import run
from capo_ray.critic_eval.config import CriticEvalConfig, JudgeConfig, StepDataConfig
from capo_ray.critics.fault_proxy import FaultProxy

ROWS = [  # arithmetic slips the checker sees; the stand-in LLM judge always says "no wrong step"
    {"problem": "Compute 4 * 5 + 1.", "steps": ["4 * 5 = 21", "21 + 1 = 22", "The answer is 22."], "label": 0},
    {"problem": "Compute 2 + 3.", "steps": ["2 + 3 = 5", "The answer is 5."], "label": -1},
    {"problem": "Compute 6 - 1 + 2.", "steps": ["6 - 1 = 5", "5 + 2 = 8", "The answer is 8."], "label": 1},
    {"problem": "Compute 3 * 3.", "steps": ["3 * 3 = 9", "The answer is 9."], "label": -1},
]
TEMPLATE = "system: Grade.\nuser: |\n  {problem}\n  {steps}\n  Answer with `Wrong step list: [...]`.\n"


@pytest.fixture(scope="module")
def stand_in():
    proxy = FaultProxy().start()
    yield proxy
    proxy.stop()


def _run(tmp_path, judge, name, ks=(1, 2)):
    data = tmp_path / "pb.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in ROWS))
    cfg = CriticEvalConfig(ks=list(ks), rules=["majority", "union"], output_dir=str(tmp_path), run_name=name,
                           judge=judge, dataset=StepDataConfig(path=str(data)))  # fmt: skip
    result = json.loads((run(cfg) / "results.json").read_text())
    return {(c["rule"], c["k"]): c for c in result["cells"]}, result


def test_arith_on_processbench_data_finds_every_first_error(tmp_path):
    cells, result = _run(tmp_path, JudgeConfig(backend="arith"), "arith")
    assert result["solutions"] == 4 and result["erroneous"] == 2 and result["setup"]["dataset"].startswith("pb.jsonl")
    for cell in cells.values():
        assert cell["first_error_acc_erroneous"] == 1.0 and cell["first_error_acc_correct"] == 1.0
        assert cell["first_error_f1"] == 1.0 and cell["step_precision"] == 1.0


def test_openai_stand_in_and_hybrid_veto_and_voter(tmp_path, stand_in):
    endpoint = OpenAIJudgeConfig(base_url=stand_in.url + "/v1", model="stand-in", request_timeout_s=10, step_deadline_s=30)
    template = tmp_path / "t.yaml"
    template.write_text(TEMPLATE)
    llm, _ = _run(tmp_path, JudgeConfig(backend="openai", openai=endpoint, prompt_template=str(template)), "openai")
    # "no wrong step" everywhere: right on the correct solutions, wrong on the erroneous ones
    assert llm[("majority", 2)]["first_error_acc_correct"] == 1.0 and llm[("majority", 2)]["first_error_acc_erroneous"] == 0.0
    assert llm[("majority", 2)]["first_error_f1"] == 0.0
    veto, _ = _run(tmp_path, JudgeConfig(backend="hybrid", openai=endpoint, hybrid=HybridConfig(mode="veto")), "veto")
    assert all(c["first_error_f1"] == 1.0 for c in veto.values())  # the checker overrules the misses
    voter, res = _run(tmp_path, JudgeConfig(backend="hybrid", openai=endpoint, hybrid=HybridConfig(mode="voter")), "voter")
    assert res["judge"]["critiques_per_solution"] == 3  # K = 2 sampled + the checker
    assert voter[("union", 1)]["first_error_f1"] == 1.0  # union: the checker's flag counts
    # majority at k=1: checker vs one LLM critique, 1 of 2 is no majority -> misses
    assert voter[("majority", 1)]["first_error_acc_erroneous"] == 0.0
    assert stand_in.n_asked and set(stand_in.n_asked) == {2}  # one request with n = K per solution
