"""The two SFT learners behind one ``step(batch, lr)`` call.

``GroupLearner`` is the RL learner itself: the DeepSpeed ZeRO ``LearnerGroup`` (Ray actors,
gloo/NCCL process group, ZeRO 1-3) trained with the ``sft`` objective, so a model fine-tuned
here went through exactly the code, sharding and precision the RL run uses. Its learning rate
is the learner's constant ``lr``.

``TorchLearner`` runs in the calling process with plain torch (same forward, same masked NLL
from capo_ray.core.losses) and a warmup + cosine schedule. It exists for models of a few
million parameters trained from scratch (the organism): there a Ray cluster and DeepSpeed add
start-up time and processes but nothing the model needs, and one thread keeps a long build
from crowding a shared machine.
"""

from __future__ import annotations

import math
from typing import Any

import torch

from capo_ray.core.losses import masked_nll
from capo_ray.records import TrainBatch
from capo_ray.workers.forward import sequence_logprobs


def lr_at(step: int, total: int, lr: float, warmup: int, min_ratio: float, schedule: str) -> float:
    """Linear warmup over ``warmup`` steps, then constant or cosine down to ``min_ratio * lr``."""
    if warmup and step < warmup:
        return lr * (step + 1) / warmup
    if schedule == "constant":
        return lr
    progress = (step - warmup) / max(1, total - warmup)
    return lr * (min_ratio + (1 - min_ratio) * 0.5 * (1 + math.cos(math.pi * min(progress, 1.0))))


class TorchLearner:
    def __init__(self, model_path: str, lr: float, weight_decay: float, grad_clip: float,
                 micro_batch_size: int, threads: int, seed: int) -> None:
        from transformers import AutoModelForCausalLM, AutoTokenizer

        torch.set_num_threads(threads)
        torch.manual_seed(seed)
        self.model = AutoModelForCausalLM.from_pretrained(model_path, dtype=torch.float32)
        self.model.config.use_cache = False
        self.tokenizer = AutoTokenizer.from_pretrained(model_path)
        decay = [p for p in self.model.parameters() if p.dim() >= 2]
        no_decay = [p for p in self.model.parameters() if p.dim() < 2]
        self.optimizer = torch.optim.AdamW(
            [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}], lr=lr,
            betas=(0.9, 0.98),  # the organism's measured recipe (docs/learning-study.md): short from-scratch runs
        )
        self.grad_clip, self.micro = grad_clip, micro_batch_size

    def step(self, batch: TrainBatch, lr: float) -> dict[str, float]:
        """One optimizer step over ``batch``; micro-batch losses are weighted by their share of
        the batch's response tokens, so the step's gradient is that of the batch token mean."""
        self.model.train()
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        total = float(batch.response_mask.sum().clamp(min=1))
        loss_sum = 0.0
        for begin in range(0, len(batch), self.micro):
            micro = batch.slice(begin, begin + self.micro)
            logprobs = sequence_logprobs(self.model, micro.input_ids, micro.attention_mask, len(micro),
                                         response_mask=micro.response_mask)
            loss, _ = masked_nll(logprobs, micro.response_mask)
            share = float(micro.response_mask.sum()) / total
            (loss * share).backward()
            loss_sum += share * float(loss.detach())
        norm = torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.grad_clip or float("inf"))
        self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)
        return {"loss": loss_sum, "grad_norm": float(norm), "lr": lr, "tokens": total}

    def save(self, path: str) -> None:
        self.model.config.use_cache = True
        self.model.save_pretrained(path, safe_serialization=True)
        self.tokenizer.save_pretrained(path)
        self.model.config.use_cache = False

    def close(self) -> None:
        pass


class GroupLearner:
    def __init__(self, model_path: str, lr: float, weight_decay: float, grad_clip: float, micro_batch_size: int,
                 threads: int, seed: int, num_workers: int, zero_stage: int, num_cpus: float | None,
                 gradient_checkpointing: bool) -> None:
        import ray

        from capo_ray.workers.actor_group import ActorOptions
        from capo_ray.workers.learner import LearnerSettings
        from capo_ray.workers.learner_group import LearnerGroup

        self._own_ray = not ray.is_initialized()
        if self._own_ray:
            ray.init(num_cpus=num_cpus, include_dashboard=False, log_to_driver=True)
        self.micro = micro_batch_size
        self.world = num_workers
        settings = LearnerSettings(
            model_path=model_path, zero_stage=zero_stage, precision="fp32", lr=lr, grad_clip=grad_clip,
            micro_batch_size=micro_batch_size, mini_batch_size=micro_batch_size * num_workers,
            torch_threads=threads, device="cpu", weight_decay=weight_decay, seed=seed,
            gradient_checkpointing=gradient_checkpointing, log_entropy=False,
        )
        self.group = LearnerGroup(settings, num_workers, ActorOptions("learner", num_cpus=0.5))

    def step(self, batch: TrainBatch, lr: float) -> dict[str, float]:
        # The whole batch is one mini-batch: one optimizer step, like TorchLearner.
        unit = self.world * self.micro
        mini = -(-len(batch) // unit) * unit
        from capo_ray.workers.update_settings import UpdateSettings

        update = UpdateSettings(clip_low=0.2, clip_high=0.2, kl_coef=0.0, agg="token_mean", ppo_epochs=1,
                                mini_batch_size=mini, micro_batch_size=self.micro, objective="sft")
        out = self.group.train(batch, update)
        return {"loss": out["loss"], "grad_norm": out["grad_norm"], "lr": out["lr"], "tokens": out["tokens"]}

    def save(self, path: str) -> None:
        self.group.save_hf(path)

    def close(self) -> None:
        import ray

        self.group.shutdown()
        if self._own_ray:
            ray.shutdown()
