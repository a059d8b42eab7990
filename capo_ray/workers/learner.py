"""The policy learner: one DeepSpeed ZeRO engine per rank, each rank a Ray actor.

``LearnerWorker`` is a plain class; ``capo_ray.workers.learner_group.LearnerGroup`` wraps it
with ``ray.remote``, wires the torch.distributed rendezvous and splits batches across ranks. The
driver only talks to the group; every group method runs on all ranks because ZeRO's collectives
need every rank.

Loss normalization (why the micro-batch losses are re-weighted): the core's ``policy_loss``
aggregates within the tensors it is given (token mean or sequence mean). A mini-batch is cut
into micro-batches on every rank, and DeepSpeed averages gradients over ranks, so a plain sum
of micro-batch means would weight a token of a short micro-batch more than one of a long
micro-batch. Each micro-batch loss is therefore scaled by its share of the *global*
mini-batch's tokens (token_mean) or non-empty rows (seq_mean_*) times world_size: the
accumulated, rank-averaged gradient is then exactly that of the aggregate over the whole
mini-batch, independent of micro-batch size and rank count.
"""

from __future__ import annotations

import os
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import torch

from capo_ray.core.losses import masked_nll, policy_loss
from capo_ray.records import TrainBatch
from capo_ray.workers.distributed import RankActor, init_process_group
from capo_ray.workers.ds_config import DEVICES, PRECISIONS, build_ds_config
from capo_ray.workers.learner_batch import (
    _accumulation_steps,
    _rows_per_step,
    _require_old_logprobs,
    _to_device,
    _counts,
    _global_counts,
)
from capo_ray.workers.forward import sequence_logprobs
from capo_ray.workers.update_settings import UpdateSettings
from capo_ray.workers.full_weights import (
    WeightConsumer,
    collect_state_dict,
    consume_on_rank0,
    named_full_weights,
)

# DeepSpeed returns its own leftovers in client_state too; the caller's dict lives under this key.
_CLIENT_KEY = "capo_ray_client_state"


@dataclass(frozen=True)
class LearnerSettings:
    """Everything a learner rank needs to build its engine (the driver fills it from config).

    ``mini_batch_size`` / ``micro_batch_size`` set the engine's initial gradient accumulation;
    ``train`` may use other sizes except with ``offload`` (DeepSpeed's CPU-offload optimizer
    fixes accumulation at build time). ``temperature`` must equal the rollout temperature:
    the PPO ratio compares log probs of the distribution that was sampled.
    """

    model_path: str
    zero_stage: int
    precision: str  # "fp32" | "bf16"
    lr: float
    grad_clip: float  # 0 disables clipping
    micro_batch_size: int  # rows per forward/backward on one rank
    mini_batch_size: int  # rows per optimizer step over all ranks
    torch_threads: int
    device: str  # "cpu" | "cuda"
    weight_decay: float = 0.0
    betas: tuple[float, float] = (0.9, 0.999)
    adam_eps: float = 1e-8
    gradient_checkpointing: bool = False
    temperature: float = 1.0
    seed: int = 0
    offload: bool = False
    log_entropy: bool = True  # entropy metric: one extra softmax over the kept logits
    logprob_chunk_tokens: int = 0  # > 0: log probs from the LM head in chunks (workers.chunked_head)
    warmup_steps: int = 0  # optimizer steps of linear lr warmup (0: the full rate from the first)
    dist_timeout_s: float = 1800.0

    def __post_init__(self) -> None:
        if self.precision not in PRECISIONS or self.device not in DEVICES:
            raise ValueError(f"precision must be one of {PRECISIONS} and device one of {DEVICES}")
        if not (self.lr > 0 and self.torch_threads >= 1 and self.temperature > 0):
            raise ValueError("need lr > 0, torch_threads >= 1 and temperature > 0")
        if self.mini_batch_size < 1 or self.micro_batch_size < 1:
            raise ValueError("mini_batch_size and micro_batch_size must be >= 1")
        if self.warmup_steps < 0:
            raise ValueError("warmup_steps must be >= 0")


class LearnerWorker(RankActor):
    """One learner rank. Call ``setup`` (all ranks concurrently) before anything else."""

    def __init__(self, settings: LearnerSettings) -> None:
        self.settings = settings
        # Explicit, because Ray sets OMP_NUM_THREADS from num_cpus (1 for fractional CPUs).
        torch.set_num_threads(settings.torch_threads)
        torch.manual_seed(settings.seed)
        self.rank, self.world_size = 0, 1
        self.device = torch.device("cpu")
        self.engine: Any = None
        self._attached: dict[str, Any] = {}
        self._hf_ds_config: Any = None  # transformers only keeps a weak reference to it

    # --- construction ---------------------------------------------------------------------

    def setup(self, env: dict[str, str]) -> None:
        """Join the process group described by ``env`` (distributed.rendezvous_env), load the
        model and build the DeepSpeed engine. Collective: all ranks must call it together."""
        s = self.settings
        env = dict(env)
        if s.device == "cuda":
            # Ray normally shows an actor only its own GPU(s): index by what is visible.
            env["LOCAL_RANK"] = str(int(env["LOCAL_RANK"]) % torch.cuda.device_count())
            torch.cuda.set_device(int(env["LOCAL_RANK"]))
            self.device = torch.device("cuda", int(env["LOCAL_RANK"]))
        os.environ.update(env)
        self.rank, self.world_size = int(env["RANK"]), int(env["WORLD_SIZE"])
        init_process_group(s.device, s.dist_timeout_s)
        self._build_engine(_accumulation_steps(s.mini_batch_size, s.micro_batch_size, self.world_size))

    def _build_engine(self, accumulation_steps: int) -> None:
        import deepspeed

        s = self.settings
        ds_config = build_ds_config(
            zero_stage=s.zero_stage,
            micro_batch_size=s.micro_batch_size,
            gradient_accumulation_steps=accumulation_steps,
            world_size=self.world_size,
            grad_clip=s.grad_clip,
            precision=s.precision,
            device=s.device,
            offload=s.offload,
        )
        model = self._load_model(ds_config)
        optimizer = self._optimizer(model)
        self.engine, *_ = deepspeed.initialize(model=model, optimizer=optimizer, config=ds_config,
                                               lr_scheduler=self._warmup(optimizer))  # fmt: skip

    def _load_model(self, ds_config: dict[str, Any]) -> torch.nn.Module:
        from transformers import AutoModelForCausalLM

        s = self.settings
        if s.zero_stage == 3:
            # Makes from_pretrained create each weight already partitioned (zero.Init), so no
            # rank ever holds the full model; a bare zero.Init around from_pretrained fails.
            from transformers.integrations import HfDeepSpeedConfig

            self._hf_ds_config = HfDeepSpeedConfig(ds_config)
        # fp32 master weights; with precision bf16 DeepSpeed casts the module itself.
        model = AutoModelForCausalLM.from_pretrained(s.model_path, dtype=torch.float32)
        model.config.use_cache = False
        if s.gradient_checkpointing:
            # Non-reentrant checkpointing works with ZeRO-3's parameter hooks and no_grad inputs.
            model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
        return model

    def _optimizer(self, model: torch.nn.Module) -> torch.optim.Optimizer:
        """AdamW as a client optimizer. torch's AdamW needs no JIT build (DeepSpeedCPUAdam takes
        ~60 s to compile on first use); with offload, DeepSpeed requires its CPU Adam."""
        s = self.settings
        decay, no_decay = [], []
        for param in model.parameters():
            if param.requires_grad:
                # Norm weights and biases (1-D) are not decayed; ZeRO-3 keeps the real shape
                # of a partitioned parameter in ds_shape.
                (no_decay if len(getattr(param, "ds_shape", param.shape)) < 2 else decay).append(param)
        groups = [
            {"params": decay, "weight_decay": s.weight_decay},
            {"params": no_decay, "weight_decay": 0.0},
        ]
        if s.offload:
            from deepspeed.ops.adam import DeepSpeedCPUAdam

            return DeepSpeedCPUAdam(groups, lr=s.lr, betas=s.betas, eps=s.adam_eps, adamw_mode=True)
        return torch.optim.AdamW(groups, lr=s.lr, betas=s.betas, eps=s.adam_eps)

    def _warmup(self, optimizer: torch.optim.Optimizer) -> torch.optim.lr_scheduler.LRScheduler | None:
        """Linear warmup over ``warmup_steps`` optimizer steps. Why: a fresh Adam's first updates
        are sign(g) * lr for every weight, however noisy its gradient; on a small policy one such
        step at 3e-4 moved the sampled tokens' distribution by 0.09 nats of KL (the study's
        organism, docs/learning-study.md). DeepSpeed steps the scheduler with each optimizer
        step and keeps its state in checkpoints."""
        warmup = self.settings.warmup_steps
        if not warmup:
            return None
        return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: min(1.0, (step + 1) / warmup))

    # --- training -------------------------------------------------------------------------

    def train(self, shard: TrainBatch, update: UpdateSettings) -> dict[str, float]:
        """Train on this rank's ``shard`` (``learner_group.shard_rows``): for each epoch, one
        optimizer step per mini-batch (``update.mini_batch_size`` rows over all ranks).

        On-policy shortcut: with one epoch and one mini-batch the weights have not moved since
        the rollout, so old log probs = current log probs (detached) and the ratio is exactly
        1; this saves a forward pass and ignores the engine-vs-learner numerical mismatch.
        ``update.off_policy`` (rollouts sampled with older weights, trainer.rollout_ahead) turns it off.
        Otherwise ``shard.old_logprobs`` must hold the behaviour log probs (from
        ``compute_logprobs`` before training, or from the rollout engine).

        ``update.objective="sft"`` trains the masked NLL of the response tokens instead (the SFT cold
        start, capo_ray/sft): advantages, old and reference log probs are then unused.

        Returns this rank's weighted metric sums (``LearnerGroup`` combines ranks).
        """
        start = time.perf_counter()
        u, micro_batch_size = update, update.micro_batch_size
        rows = _rows_per_step(len(shard), u.mini_batch_size, micro_batch_size, self.world_size)
        self._set_accumulation(micro_batch_size, rows // micro_batch_size)
        num_steps = len(shard) // rows
        on_policy = u.ppo_epochs == 1 and num_steps == 1 and not u.off_policy
        if not on_policy and u.objective == "policy":
            _require_old_logprobs(shard)
        shard = _to_device(shard, self.device)
        loss_args = u.loss_args
        self.engine.train()
        sums: dict[str, float] = defaultdict(float)
        for epoch in range(u.ppo_epochs):
            for step in range(num_steps):
                where = f"epoch {epoch}, mini-batch {step}"
                mini = shard.slice(step * rows, (step + 1) * rows)
                step_sums = self._optimizer_step(mini, micro_batch_size, on_policy, loss_args, where, u.objective)
                for key, value in step_sums.items():
                    sums[key] += value
        sums["optimizer_steps"] = float(u.ppo_epochs * num_steps)
        sums["tokens"] = float(shard.response_mask.sum())
        sums["seconds"] = time.perf_counter() - start
        return dict(sums)

    def _set_accumulation(self, micro_batch_size: int, accumulation_steps: int) -> None:
        engine = self.engine
        if (micro_batch_size, accumulation_steps) == (
            engine.train_micro_batch_size_per_gpu(),
            engine.gradient_accumulation_steps(),
        ):
            return
        if self.settings.offload:
            raise ValueError(
                f"with offload the engine's micro-batch size ({engine.train_micro_batch_size_per_gpu()}) and "
                f"accumulation steps ({engine.gradient_accumulation_steps()}) are fixed at build time; "
                f"train() asked for {micro_batch_size} and {accumulation_steps}"
            )
        engine.set_train_micro_batch_size(micro_batch_size)
        engine.set_train_batch_size(micro_batch_size * accumulation_steps * self.world_size)

    def _optimizer_step(
        self, mini: TrainBatch, micro_batch_size: int, on_policy: bool, loss_args: dict[str, Any], where: str,
        objective: str = "policy",
    ) -> dict[str, float]:
        """Forward/backward every micro-batch of ``mini``, then one optimizer step."""
        total_tokens, total_rows = _global_counts(mini.response_mask, self.device)
        token_weighted = loss_args["agg"] == "token_mean"
        sums: dict[str, float] = defaultdict(float)
        starts = range(0, len(mini), micro_batch_size)
        for i, begin in enumerate(starts):
            micro = mini.slice(begin, begin + micro_batch_size)
            # The boundary is set explicitly rather than left to DeepSpeed's micro-step
            # counter, which drifts when train() calls change the accumulation count.
            self.engine.set_gradient_accumulation_boundary(i == len(starts) - 1)
            logprobs, entropy = self._micro_forward(micro)
            if objective == "sft":
                loss, stats = masked_nll(logprobs, micro.response_mask, loss_args["agg"])
            else:
                old = logprobs.detach() if on_policy else micro.old_logprobs
                loss, stats = policy_loss(
                    logprobs, old, micro.ref_logprobs, micro.advantages, micro.response_mask, **loss_args
                )
            tokens, rows = _counts(micro.response_mask)
            token_share = tokens / total_tokens
            loss_share = token_share if token_weighted else rows / total_rows
            self._check_finite(loss, f"{where}, micro-batch {i}")
            self.engine.backward(loss * (loss_share * self.world_size), scale_wrt_gas=False)
            for key in ("pg_loss", "kl"):
                sums[key] += loss_share * float(stats[key])
            sums["loss"] += loss_share * float(loss.detach())
            for key in ("clip_frac", "approx_kl"):
                sums[key] += token_share * float(stats[key])
            if entropy is not None:
                sums["entropy"] += float((entropy * micro.response_mask).sum()) / total_tokens
        self.engine.step()
        norm = self.engine.get_global_grad_norm()
        sums["grad_norm"] = float("nan") if norm is None else float(norm)
        sums["lr"] = float(self.engine.get_lr()[0])
        return sums

    def _micro_forward(self, micro: TrainBatch) -> tuple[torch.Tensor, torch.Tensor | None]:
        out = sequence_logprobs(
            self.engine,
            micro.input_ids,
            micro.attention_mask,
            micro_batch_size=len(micro),
            temperature=self.settings.temperature,
            with_entropy=self.settings.log_entropy,
            response_mask=micro.response_mask,
            share_prefix=self._share_prefix,
            chunk_tokens=self.settings.logprob_chunk_tokens,
        )
        return out if self.settings.log_entropy else (out, None)

    @property
    def _share_prefix(self) -> bool:
        # ZeRO-3 needs equal forward counts on all ranks; HF drops the cache under checkpointing.
        return self.settings.zero_stage != 3 and not self.settings.gradient_checkpointing

    def _check_finite(self, loss: torch.Tensor, where: str) -> None:
        # Agreed over all ranks: one rank raising alone would leave the others blocked in
        # the next collective instead of failing.
        bad = torch.tensor([0.0 if torch.isfinite(loss) else 1.0], device=self.device)
        torch.distributed.all_reduce(bad, op=torch.distributed.ReduceOp.MAX)
        if bad.item():
            raise FloatingPointError(
                f"non-finite loss on some learner rank at optimizer step {self.engine.global_steps} "
                f"({where}); this rank's loss is {float(loss.detach())}"
            )

    # --- scoring ----------------------------------------------------------------------------

    def compute_logprobs(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor,
        micro_batch_size: int,
        response_mask: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Log probs of this rank's rows under the current weights ([b, L], TrainBatch
        alignment, on CPU). Collective under ZeRO-3: all ranks call it with equal row counts."""
        self.engine.eval()
        with torch.no_grad():
            out = sequence_logprobs(
                self.engine,
                input_ids.to(self.device),
                attention_mask.to(self.device),
                micro_batch_size=micro_batch_size,
                temperature=self.settings.temperature,
                response_mask=None if response_mask is None else response_mask.to(self.device),
                share_prefix=self._share_prefix,
                chunk_tokens=self.settings.logprob_chunk_tokens,
            )
        return out.cpu()

    # --- weights and checkpoints ------------------------------------------------------------

    def named_full_weights(self) -> Iterator[tuple[str, torch.Tensor]]:
        """(HF name, full tensor) of every weight; see ``full_weights.named_full_weights``.
        Under ZeRO-3 all ranks must iterate it together: prefer ``for_each_full_weight``."""
        return named_full_weights(self.engine.module, gather=self.settings.zero_stage == 3)

    def attach(self, key: str, factory: Callable[..., Any], *args: Any, **kwargs: Any) -> None:
        """On rank 0 only, build ``factory(*args, **kwargs)`` and keep it under ``key`` for later
        ``for_each_full_weight`` consumers (e.g. a weight sender holding a process group)."""
        if self.rank == 0:
            old = self._attached.pop(key, None)
            if hasattr(old, "close"):  # a re-formed sync group replaces the sender: free its group
                old.close()
            self._attached[key] = factory(*args, **kwargs)

    def for_each_full_weight(self, consumer: WeightConsumer) -> Any:
        """Rank 0 returns ``consumer(weights_iterator, attached_objects)``; the other ranks
        take part in the gathers. Collective: all ranks call it."""
        return consume_on_rank0(self.named_full_weights(), self.rank, consumer, self._attached)

    def save_hf(self, path: str) -> None:
        """Write the full weights as an HF folder (config, safetensors, tokenizer of the source
        model) from rank 0. Collective: all ranks call it."""
        state = self.for_each_full_weight(collect_state_dict)
        if self.rank == 0:
            from transformers import AutoTokenizer

            self.engine.module.save_pretrained(path, state_dict=state, safe_serialization=True)
            AutoTokenizer.from_pretrained(self.settings.model_path).save_pretrained(path)

    def save_checkpoint(self, directory: str, tag: str, client_state: dict[str, Any]) -> None:
        """DeepSpeed checkpoint (weights, optimizer state, step counters) plus ``client_state``
        for crash resume. Collective; multi-node needs ``directory`` on a shared filesystem."""
        # Nested under one key: DeepSpeed's returned client_state also holds its own leftovers
        # (ds_config, buffer names, ...), which would otherwise mix with the caller's keys.
        self.engine.save_checkpoint(directory, tag=tag, client_state={_CLIENT_KEY: dict(client_state)})

    def load_checkpoint(self, directory: str, tag: str | None = None) -> dict[str, Any]:
        """Restore a ``save_checkpoint`` (``tag`` None: the latest) and return its client_state."""
        path, client_state = self.engine.load_checkpoint(directory, tag=tag)
        if path is None:
            raise FileNotFoundError(f"no DeepSpeed checkpoint found in {directory!r} (tag {tag!r})")
        return dict((client_state or {}).get(_CLIENT_KEY, {}))


# --- helpers -----------------------------------------------------------------------------------
