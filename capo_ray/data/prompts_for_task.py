"""The chat messages a training problem is asked with, per the data config: the arithmetic
task's own few-shot prompt, or the dataset's template (optionally with step demos)."""

from __future__ import annotations

from capo_ray.config import DataConfig
from capo_ray.data.arithmetic import few_shot_messages
from capo_ray.data.prompts import STEP_DEMOS, build_messages, template_for, to_chat_dicts
from capo_ray.records import Problem


def prompt_messages(cfg: DataConfig, problem: Problem) -> list[dict[str, str]]:
    if cfg.name == "arith":
        return few_shot_messages(problem.question)
    if cfg.name == "chain":
        from capo_ray.data.chain import chain_messages

        return chain_messages(problem.question, cfg.few_shot)
    demos = STEP_DEMOS if cfg.few_shot else ()
    return to_chat_dicts(build_messages(problem.question, template_for(cfg.name), demos))
