"""Prompt encoding and the generate_fn adapters, with stand-in tokenizer and engines; and the
purity promise that lets the trainer's driver import the evaluation core."""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import dataclass

from capo_ray.data.prompts import STEP_DEMOS
from capo_ray.evaluation.generate import engine_generate_fn, rollout_generate_fn
from capo_ray.evaluation.prompting import chat_encoder
from capo_ray.records import Problem
from capo_ray.workers.vllm_engine import PromptOutput, SampleOutput


class FakeTokenizer:
    """Renders a chat as "role: content" lines; a token is one character."""

    def __init__(self) -> None:
        self.calls: list[dict] = []

    def apply_chat_template(self, messages, add_generation_prompt, tokenize):
        self.calls.append({"messages": messages, "add_generation_prompt": add_generation_prompt, "tokenize": tokenize})
        return "".join(f"{m['role']}: {m['content']}\n" for m in messages) + "assistant: "

    def encode(self, text, add_special_tokens):
        assert add_special_tokens is False  # the rendered template already has its specials
        return [ord(c) for c in text]

    def decode(self, ids, skip_special_tokens):
        assert skip_special_tokens
        return "".join(chr(i) for i in ids)


def test_chat_encoder_uses_the_benchmark_template_and_optional_demos():
    tok = FakeTokenizer()
    problem = Problem("u", "What is 6 * 7?", "42")
    ids = chat_encoder(tok, few_shot=False)("gsm8k_test", problem)
    text = "".join(chr(i) for i in ids)
    assert text.startswith("system: You are a careful math tutor.") and text.endswith("assistant: ")
    assert "user: What is 6 * 7?\n\nPut your final answer in \\boxed{}." in text
    assert tok.calls[-1]["add_generation_prompt"] is True and tok.calls[-1]["tokenize"] is False
    chat_encoder(tok, few_shot=True)("math500", problem)
    roles = [m["role"] for m in tok.calls[-1]["messages"]]
    assert roles == ["system"] + ["user", "assistant"] * len(STEP_DEMOS) + ["user"]
    assert "competition mathematician" in tok.calls[-1]["messages"][0]["content"]


class FakeEngine:
    def __init__(self) -> None:
        self.specs = []

    def generate(self, prompts, spec):
        self.specs.append(spec)
        return [PromptOutput(p, [SampleOutput([ord("a") + j], None, "stop") for j in range(spec.n)]) for p in prompts]


def test_engine_generate_fn_decodes_n_samples_per_prompt_in_order():
    engine = FakeEngine()
    texts = engine_generate_fn(engine, FakeTokenizer())([[1], [2]], 3, 0.0, 16)
    assert texts == [["a", "b", "c"], ["a", "b", "c"]]
    spec = engine.specs[0]
    assert (spec.n, spec.temperature, spec.top_p, spec.max_tokens, spec.logprobs) == (3, 0.0, 1.0, 16, False)


@dataclass
class _Sample:
    response_text: str


def test_rollout_generate_fn_takes_the_response_texts():
    calls = []

    def pool_generate(prompts, n, temperature, top_p, max_new_tokens):
        calls.append((len(prompts), n, temperature, top_p, max_new_tokens))
        return [[_Sample(f"{p[0]}-{j}") for j in range(n)] for p in prompts]

    assert rollout_generate_fn(pool_generate)([[5], [6]], 2, 0.6, 8) == [["5-0", "5-1"], ["6-0", "6-1"]]
    assert calls == [(2, 2, 0.6, 1.0, 8)]


_PROBE = """
import importlib, json, sys
for name in ("runner", "scoring", "results", "report", "prompting", "generate", "policy", "config", "benchmarks"):
    importlib.import_module("capo_ray.evaluation." + name)
print(json.dumps(sorted({m.split(".")[0] for m in sys.modules})))
"""


def test_the_evaluation_package_imports_no_distributed_stack():
    # A fresh interpreter: this test process may already hold vllm/ray from other tests.
    out = subprocess.run([sys.executable, "-c", _PROBE], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    roots = set(json.loads(out.stdout.strip().splitlines()[-1]))
    assert roots & {"ray", "vllm", "deepspeed", "transformers", "hydra", "omegaconf"} == set()
