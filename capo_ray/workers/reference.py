"""The frozen reference policy: the initial weights, scored without gradients, for CAPO's KL
term (arXiv 2508.02298, method step 8: k3 KL to a frozen reference as a loss term).

One plain HF model per actor, no DeepSpeed: it never trains, and for the policies CAPO targets
(< 10B) one copy fits wherever the learner does. It shares ``sequence_logprobs`` with the
learner, so before the first update its log probs equal the learner's.
"""

from __future__ import annotations

import torch

from capo_ray.workers.forward import sequence_logprobs

_DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16}
SCORING_CHUNK_TOKENS = 4096  # positions per LM-head chunk when scoring (workers/chunked_head.py)


class ReferenceWorker:
    """Frozen copy of the policy at ``model_path``; ``compute_logprobs`` is its only job.
    Started like every role (``actor_group.start_group``), one actor per run.

    ``temperature`` must equal the rollout (and learner) temperature so that the KL compares
    the same distributions. ``dtype`` "bfloat16" halves memory on GPUs; the log probs are still
    computed in float32 (``core.logprobs`` upcasts half-precision logits).
    """

    def __init__(
        self, model_path: str, dtype: str, torch_threads: int, temperature: float, device: str
    ) -> None:
        from transformers import AutoModelForCausalLM

        if dtype not in _DTYPES:
            raise ValueError(f"dtype {dtype!r} is not one of {sorted(_DTYPES)}")
        if device not in ("cpu", "cuda"):
            raise ValueError(f"device {device!r} is not one of ['cpu', 'cuda']")
        # Explicit, because Ray sets OMP_NUM_THREADS from num_cpus (1 for fractional CPUs).
        torch.set_num_threads(torch_threads)
        self.temperature = temperature
        cuda = device == "cuda"
        self.device = torch.device("cuda", torch.cuda.current_device()) if cuda else torch.device("cpu")
        model = AutoModelForCausalLM.from_pretrained(model_path, dtype=_DTYPES[dtype])
        model.config.use_cache = False
        self.model = model.to(self.device).eval().requires_grad_(False)

    def compute_logprobs(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor,
        micro_batch_size: int,
        response_mask: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """[B, L] log probs under the reference weights, TrainBatch alignment, on CPU."""
        with torch.no_grad():
            out = sequence_logprobs(
                self.model,
                input_ids.to(self.device),
                attention_mask.to(self.device),
                micro_batch_size=micro_batch_size,
                temperature=self.temperature,
                response_mask=None if response_mask is None else response_mask.to(self.device),
                share_prefix=True,  # a group's prompt runs once (forward.py)
                # The learner's path (learner.logprob_chunk_tokens > 0 by default), so both
                # score the same way; without gradients the chunks cost nothing extra and the
                # [b, L, V] logits are never materialized.
                chunk_tokens=SCORING_CHUNK_TOKENS,
            )
        return out.cpu()
