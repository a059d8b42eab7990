"""SFT examples: a chat prompt (messages) and the assistant response to learn.

Sources give ``batch(index, size)`` like the trainer's problem sources, so a run is
reproducible and a generated source never repeats itself:

- ``PairsSource``: a jsonl file, one object per line, either ``{"prompt": str | messages,
  "response": str}`` or ``{"messages": [..., {"role": "assistant", "content": ...}]}``; a
  bad row fails naming the file and line;
- ``ChainSolutions``: solutions of the ``chain`` task's train stream, with the configured
  share of propagating errors, ignored slips and habits (capo_ray/data/chain.py);
- ``Gsm8kSolutions``: GSM8K train solutions rewritten in the step format the trainer asks for
  (calculator notes removed, one blank-line-separated step per line, a boxed answer).
"""

from __future__ import annotations

import json
import random
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from capo_ray.config import DataConfig
from capo_ray.data.chain import SolutionErrors
from capo_ray.data.prompts_for_task import prompt_messages
from capo_ray.records import Problem

_ROLES = ("system", "user", "assistant")


@dataclass(frozen=True)
class Example:
    prompt: tuple[tuple[str, str], ...]  # (role, content) chat turns before the response
    response: str

    def messages(self) -> list[dict[str, str]]:
        return [{"role": role, "content": content} for role, content in self.prompt]


class ExampleSource(Protocol):
    def batch(self, index: int, size: int) -> list[Example]: ...


def _as_turns(messages: list[dict[str, str]]) -> tuple[tuple[str, str], ...]:
    return tuple((m["role"], m["content"]) for m in messages)


def _parse_row(row: object, where: str) -> Example:
    if not isinstance(row, dict):
        raise ValueError(f"{where}: expected a JSON object, got {type(row).__name__}")
    if "messages" in row:
        messages = row["messages"]
        if not isinstance(messages, list) or not messages or not isinstance(messages[-1], dict) \
                or messages[-1].get("role") != "assistant":
            raise ValueError(f"{where}: 'messages' must be a list ending with an assistant turn")
        prompt, response = messages[:-1], messages[-1].get("content")
    elif "prompt" in row and "response" in row:
        prompt, response = row["prompt"], row["response"]
        if isinstance(prompt, str):
            prompt = [{"role": "user", "content": prompt}]
    else:
        raise ValueError(f"{where}: need 'prompt' and 'response', or 'messages'; got keys {sorted(row)}")
    if not isinstance(response, str) or not response.strip():
        raise ValueError(f"{where}: the response must be a non-empty string")
    if not isinstance(prompt, list) or not prompt:
        raise ValueError(f"{where}: the prompt must be a string or a non-empty list of messages")
    for turn in prompt:
        if not (isinstance(turn, dict) and turn.get("role") in _ROLES and isinstance(turn.get("content"), str)):
            raise ValueError(f"{where}: each message needs a role in {list(_ROLES)} and a string content")
    return Example(_as_turns(prompt), response)


def read_pairs(path: str | Path) -> list[Example]:
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"SFT data file {str(path)!r} does not exist")
    out = []
    with path.open(encoding="utf-8") as handle:
        for line_no, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            where = f"{path}:{line_no}"
            try:
                row = json.loads(line)
            except json.JSONDecodeError as err:
                raise ValueError(f"{where}: not valid JSON ({err.msg})") from None
            out.append(_parse_row(row, where))
    if not out:
        raise ValueError(f"{path}: no examples")
    return out


class PairsSource:
    """Epochs over a fixed list, each epoch in its own seeded order."""

    def __init__(self, examples: list[Example], seed: int) -> None:
        self.examples, self.seed = examples, seed
        self._epoch, self._order = -1, []

    def batch(self, index: int, size: int) -> list[Example]:
        out = []
        for pos in range(index * size, (index + 1) * size):
            epoch, within = divmod(pos, len(self.examples))
            if epoch != self._epoch:
                self._order = list(range(len(self.examples)))
                random.Random(f"{self.seed}:sft-epoch{epoch}").shuffle(self._order)
                self._epoch = epoch
            out.append(self.examples[self._order[within]])
        return out


class ChainSolutions:
    """Chain problems of the train stream with solutions that contain the configured errors.

    ``ramp_steps`` > 0 is a curriculum: batch ``i < ramp_steps`` draws problems of 1 to ``m``
    operations, ``m`` growing from 2 to ``max_ops``, so copying and the operation table are
    learned on short chains first. Short chains are never in the 3-6 held-out stream, and a
    ramp problem still comes from the train split of its own shorter stream."""

    def __init__(self, data: DataConfig, errors: SolutionErrors, ramp_steps: int = 0) -> None:
        from capo_ray.data.sources import chain_spec

        self.data, self.spec, self.ramp_steps, self.errors = data, chain_spec(data), ramp_steps, errors

    def stream(self, index: int):
        from dataclasses import replace

        from capo_ray.data.chain import ChainStream

        spec = self.spec
        if index < self.ramp_steps:
            top = min(spec.max_ops, 2 + (spec.max_ops - 1) * index // self.ramp_steps)
            spec = replace(spec, min_ops=1, max_ops=top)
        return ChainStream(spec, self.data.seed, "train")

    def batch(self, index: int, size: int) -> list[Example]:
        from capo_ray.data.chain import solution_text, to_problem

        rng = random.Random(f"sft-errors:{self.data.seed}:{index}")
        out = []
        for chain in self.stream(index).chains(index, size):
            problem = to_problem(chain, "")
            text = solution_text(chain, rng, self.errors).text
            out.append(Example(_as_turns(prompt_messages(self.data, problem)), text))
        return out


_NOTE = re.compile(r"<<[^<>]*>>")


def gsm8k_solution(raw_answer: str) -> str | None:
    """A GSM8K answer field ("...<<48/2=24>>24 ...\\n#### 72") in the trainer's step format:
    notes removed, steps separated by blank lines, the final answer boxed."""
    body, sep, final = raw_answer.rpartition("####")
    if not sep or not final.strip():
        return None
    steps = [line.strip() for line in _NOTE.sub("", body).splitlines() if line.strip()]
    return "\n\n".join(steps + [f"The answer is \\boxed{{{final.strip().replace(',', '')}}}."])


class Gsm8kSolutions:
    """GSM8K train solutions, asked the way ``data=gsm8k_train`` asks during RL."""

    def __init__(self, data: DataConfig, seed: int) -> None:
        from capo_ray.data.datasets import read_rows, resolve_data_dir

        path = Path(data.path) if data.path else resolve_data_dir(data.data_dir) / "gsm8k_train.jsonl"
        examples = []
        for line_no, row in read_rows(path):  # names file and line on a malformed row
            question, raw = row.get("question"), row.get("answer")
            if not isinstance(question, str) or not isinstance(raw, str):
                raise ValueError(f"{path}:{line_no}: need a JSON object with 'question' and 'answer'")
            solution = gsm8k_solution(raw)
            if solution is None:
                raise ValueError(f"{path}:{line_no}: the answer has no '#### <final answer>' line")
            problem = Problem(uid=f"gsm8k_train:{line_no}", question=question, answer="")
            examples.append(Example(_as_turns(prompt_messages(data, problem)), solution))
        self.pairs = PairsSource(examples, seed)

    def batch(self, index: int, size: int) -> list[Example]:
        return self.pairs.batch(index, size)


def make_examples(data: DataConfig, pairs_path: str | None, errors: SolutionErrors, seed: int) -> ExampleSource:
    """``pairs_path`` (a jsonl of chat pairs) when given, else solutions of ``data``'s task."""
    if pairs_path:
        return PairsSource(read_pairs(pairs_path), seed)
    if data.name == "chain":
        return ChainSolutions(data, errors)
    if data.name == "gsm8k_train":
        return Gsm8kSolutions(data, seed)
    raise ValueError(
        f"data.name={data.name!r} has no built-in solutions to fine-tune on: use data=chain, "
        "data=gsm8k_train, or sft.pairs=<jsonl of prompt/response pairs>"
    )
