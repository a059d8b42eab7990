"""A stand-in for the learner's rank 0 in weight-sync tests and benchmarks: a plain HF model in
a Ray actor with a ``WeightSender`` (the DeepSpeed learner does the same with its gathered
ZeRO-3 parameters, see ``LearnerGroup.for_each_full_weight``). Not used by training.

Ray workers cannot import this file by name: callers register it with
``ray.cloudpickle.register_pickle_by_value``.
"""

from __future__ import annotations

import torch

from capo_ray.workers.weight_sync import SyncGroupSpec, SyncMeta, WeightSender


class HFSender:
    def __init__(self, path: str) -> None:
        from transformers import AutoModelForCausalLM

        torch.set_num_threads(1)
        self.module = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32).eval()
        self.sender: WeightSender | None = None

    def connect(self, spec: SyncGroupSpec, bucket_mb: float = 64.0, send_dtype: torch.dtype | None = None) -> None:
        self.sender = WeightSender(spec, bucket_mb, send_dtype)

    def plan(self, bucket_mb: float | None = None) -> SyncMeta:
        if bucket_mb is not None:
            self.sender.bucket_mb = bucket_mb
        return self.sender.plan(self.module.named_parameters())

    def send(self, meta: SyncMeta, version: int) -> dict:
        with torch.no_grad():
            return self.sender.send(self.module.named_parameters(), meta, version)

    def buffers_allocated(self) -> int:
        return self.sender.buffers.allocated

    def perturb(self, seed: int, std: float) -> None:
        gen = torch.Generator().manual_seed(seed)
        with torch.no_grad():
            for p in self.module.parameters():
                p.add_(torch.randn(p.shape, generator=gen) * std)

    def set_param(self, name: str, shape: tuple[int, ...]) -> None:
        """Replace a parameter by one of another shape (to provoke shape errors)."""
        module_name, _, attr = name.rpartition(".")
        setattr(self.module.get_submodule(module_name), attr, torch.nn.Parameter(torch.ones(shape)))

    def greedy(self, prompts: list[list[int]], max_new: int) -> list[list[int]]:
        out = []
        with torch.no_grad():
            for p in prompts:
                ids = torch.tensor([p])
                gen = self.module.generate(ids, attention_mask=torch.ones_like(ids), do_sample=False, max_new_tokens=max_new)
                out.append(gen[0, len(p) :].tolist())
        return out
