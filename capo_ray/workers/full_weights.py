"""Full (unsharded) weights out of a DeepSpeed engine, one tensor at a time.

Under ZeRO-3 every rank holds 1/N of each parameter; a full tensor exists only inside a
``GatheredParameters`` block, which is an all-gather: every rank must enter it, in the same
order. So all ranks iterate ``named_full_weights`` together and only rank 0 consumes the
tensors (to send them to the rollout engines or to write a file). Gathering one parameter at
a time keeps the extra memory at one tensor, whatever the model size. Under ZeRO-1/2 the
parameters are already full and the gather is a no-op.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import torch

WeightConsumer = Callable[[Iterator[tuple[str, torch.Tensor]], dict[str, Any]], Any]


def named_full_weights(module: torch.nn.Module, gather: bool) -> Iterator[tuple[str, torch.Tensor]]:
    """Yield (HF name, full tensor) for every parameter, then every persistent buffer.

    ``gather``: True under ZeRO-3. A yielded tensor is only valid until the next item (its
    gathered storage is freed): clone it to keep it. Tied weights appear once, under the name
    ``named_parameters`` gives them (e.g. ``model.embed_tokens.weight``, not ``lm_head.weight``).
    """
    import deepspeed

    for name, param in module.named_parameters():
        with deepspeed.zero.GatheredParameters([param], modifier_rank=None, enabled=gather):
            yield name, param.data
    for name, buffer in persistent_buffers(module):
        yield name, buffer


def persistent_buffers(module: torch.nn.Module) -> Iterator[tuple[str, torch.Tensor]]:
    """Buffers a state dict would save (rotary inv_freq tables and the like are not)."""
    for prefix, sub in module.named_modules():
        for name, buffer in sub.named_buffers(recurse=False):
            if buffer is not None and name not in sub._non_persistent_buffers_set:
                yield (f"{prefix}.{name}" if prefix else name), buffer


def consume_on_rank0(
    weights: Iterator[tuple[str, torch.Tensor]], rank: int, consumer: WeightConsumer, attached: dict[str, Any]
) -> Any:
    """Rank 0 returns ``consumer(weights, attached)``; other ranks just iterate (their part of
    each gather). Whatever the consumer did not take is drained afterwards, so an early return
    or an exception on rank 0 cannot leave the other ranks blocked inside a gather."""
    try:
        return consumer(weights, attached) if rank == 0 else None
    finally:
        for _ in weights:
            pass


def collect_state_dict(
    weights: Iterator[tuple[str, torch.Tensor]], _attached: dict[str, Any]
) -> dict[str, torch.Tensor]:
    """A consumer that copies every weight to CPU memory (for saving an HF folder)."""
    return {name: tensor.detach().to("cpu", copy=True) for name, tensor in weights}
