"""Problem sources for the trainer: one ``batch(index, size)`` call per step.

Batches depend only on (seed, index), so a run resumed at step i sees exactly the problems
it would have seen had it never crashed.
"""

from __future__ import annotations

import random
from typing import Protocol

from capo_ray.config import DataConfig
from capo_ray.data.arithmetic import ArithmeticSpec, ArithmeticStream
from capo_ray.records import Problem


class ProblemSource(Protocol):
    def batch(self, index: int, size: int) -> list[Problem]: ...


class DatasetStream:
    """Epochs over a fixed list of problems, each epoch in its own seeded order."""

    def __init__(self, problems: list[Problem], seed: int) -> None:
        if not problems:
            raise ValueError("the training dataset is empty")
        self.problems = problems
        self.seed = seed
        self._orders: dict[int, list[int]] = {}

    def _order(self, epoch: int) -> list[int]:
        if epoch not in self._orders:
            order = list(range(len(self.problems)))
            random.Random(f"{self.seed}:epoch{epoch}").shuffle(order)
            self._orders = {epoch: order}  # keep one epoch: batches are requested in order
        return self._orders[epoch]

    def batch(self, index: int, size: int) -> list[Problem]:
        n = len(self.problems)
        out = []
        for pos in range(index * size, (index + 1) * size):
            epoch, within = divmod(pos, n)
            out.append(self.problems[self._order(epoch)[within]])
        return out


def chain_spec(cfg: DataConfig):
    from capo_ray.data.chain import ChainSpec

    return ChainSpec(cfg.min_ops, cfg.max_ops, cfg.operand_min, cfg.operand_max, tuple(cfg.operators), cfg.max_value,
                     cfg.zero_share)


def make_source(cfg: DataConfig, split: str = "train") -> ProblemSource:
    """The problems of ``split``: "train", or "heldout" (only the chain task has one)."""
    if cfg.name == "chain":
        from capo_ray.data.chain import ChainStream

        return ChainStream(chain_spec(cfg), cfg.seed, split)
    if split != "train":
        raise ValueError(f"data.name={cfg.name!r} has no {split!r} stream (only data=chain does)")
    if cfg.name == "arith":
        spec = ArithmeticSpec(cfg.num_ops, cfg.operand_min, cfg.operand_max, tuple(cfg.operators))
        return ArithmeticStream(spec, cfg.seed)
    from capo_ray.data.datasets import load_problems

    return DatasetStream(load_problems(cfg.name, path=cfg.path, data_dir=cfg.data_dir), cfg.seed)
