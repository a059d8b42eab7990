"""Token log probs computed inside the model's own LM head call, in chunks (no full logits).

``core.logprobs.chunked_head_logprobs`` needs the LM head's input (the final hidden states).
It is taken from inside the model's forward rather than by calling the decoder directly,
because the learner's model is a DeepSpeed engine: DeepSpeed starts its backward bookkeeping
(the ZeRO optimizer's backward prologue, the accumulation boundary) from hooks on the
engine's *outputs*, and ZeRO-3 gathers each module's weights in that module's own hooks. So
the head module is hooked for one forward call:

- a forward pre-hook keeps the head's input and hands the head zero positions, so the model's
  own ``lm_head(hidden)`` computes nothing;
- a forward hook, placed *before* every other forward hook of the head (ZeRO-3's post-forward
  hook would release the gathered weight), replaces the head's (empty) output by the chunked
  log probs, one autograd op on the head's weight. ZeRO-3's later hooks then treat that
  output as the head's: they gather the weight again before its backward and reduce its one
  gradient, exactly as for a plain ``Linear``.

The model returns those log probs where its logits would be, so they are the engine's output
and every gradient of the step flows through it, in the same order as with plain logits.
Models that post-process the head's output (final logit soft-capping) are refused: the log
probs would skip that step.

Legend: B rows, K kept positions, H hidden width, V vocabulary.
"""

from __future__ import annotations

from typing import Any

import torch

from capo_ray.core.logprobs import chunked_head_logprobs


def lm_head_of(model: Any) -> torch.nn.Module:
    """The output-embedding module of an HF causal LM, or of the one a DeepSpeed engine wraps."""
    inner = getattr(model, "module", model)
    softcap = getattr(getattr(inner, "config", None), "final_logit_softcapping", None)
    if softcap:
        raise ValueError(
            f"learner.logprob_chunk_tokens > 0 does not support models with final_logit_softcapping ({softcap}): "
            "set learner.logprob_chunk_tokens=0"
        )
    head = inner.get_output_embeddings()
    # Only the type here: under ZeRO-3 a partitioned weight has no [V, H] shape between calls.
    if not isinstance(getattr(head, "weight", None), torch.Tensor):
        raise ValueError(f"learner.logprob_chunk_tokens > 0 needs a Linear LM head, got {type(head).__name__}: "
                         "set learner.logprob_chunk_tokens=0")
    return head


class HeadLogprobs:
    """Context manager: during one model call, the LM head returns [B, K-1] log probs of
    ``targets`` (position p predicts token p+1, so the last kept position is not scored)
    instead of [B, K, V] logits. ``entropy`` holds the detached entropies afterwards."""

    def __init__(self, model: Any, targets: torch.Tensor, chunk_tokens: int, temperature: float,
                 with_entropy: bool) -> None:  # fmt: skip
        self.head = lm_head_of(model)
        self.targets, self.chunk_tokens = targets, chunk_tokens
        self.temperature, self.with_entropy = temperature, with_entropy
        self.entropy: torch.Tensor | None = None
        self._hidden: torch.Tensor | None = None
        self._handles: list[Any] = []

    def __enter__(self) -> "HeadLogprobs":
        self._handles = [self.head.register_forward_pre_hook(self._keep_input),
                         self.head.register_forward_hook(self._replace_output, prepend=True)]  # fmt: skip
        return self

    def __exit__(self, *exc: object) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles, self._hidden = [], None

    def _keep_input(self, module: torch.nn.Module, args: tuple) -> tuple | None:
        self._hidden = args[0]  # [B, K, H]
        return (args[0][:, :0],) + tuple(args[1:])

    def _replace_output(self, module: torch.nn.Module, args: tuple, output: torch.Tensor) -> torch.Tensor:
        hidden, self._hidden = self._hidden, None
        if hidden is None or hidden.shape[:2] != (self.targets.shape[0], self.targets.shape[1] + 1):
            got = None if hidden is None else tuple(hidden.shape)
            raise RuntimeError(f"LM head input {got} does not match targets {tuple(self.targets.shape)} plus one position")
        vocab = getattr(module, "out_features", None)
        if vocab is not None and self.targets.numel() and int(self.targets.max()) >= vocab:
            raise ValueError(f"targets must lie in 0..{vocab - 1}")  # a GPU gather would only device-assert
        lp, self.entropy = chunked_head_logprobs(hidden[:, :-1], self.targets, module.weight, module.bias,
                                                 self.chunk_tokens, self.temperature, self.with_entropy)  # fmt: skip
        return lp
