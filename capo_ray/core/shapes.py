"""Boundary checks shared by the core's tensor functions.

Shape legend: B responses, G group size, T tokens, V vocabulary, S steps, K critiques.
The core checks shapes where data enters a function, so a mismatch fails with the argument's
name and both shapes instead of a broadcasting surprise three calls later.
"""

from __future__ import annotations

import torch


def check_2d(name: str, tensor: torch.Tensor) -> tuple[int, int]:
    """Return (B, T) of a [B, T] tensor, or raise ValueError naming ``name``."""
    if not isinstance(tensor, torch.Tensor):
        raise ValueError(f"{name} must be a torch.Tensor of shape [B, T], got {type(tensor).__name__}")
    if tensor.dim() != 2:
        raise ValueError(f"{name} must have shape [B, T], got {tuple(tensor.shape)}")
    return int(tensor.shape[0]), int(tensor.shape[1])


def check_same_shape(reference_name: str, reference: torch.Tensor, **others: torch.Tensor | None) -> None:
    """Raise ValueError unless every tensor in ``others`` (None skipped) has ``reference``'s shape."""
    for name, tensor in others.items():
        if tensor is None:
            continue
        if not isinstance(tensor, torch.Tensor):
            raise ValueError(f"{name} must be a torch.Tensor, got {type(tensor).__name__}")
        if tensor.shape != reference.shape:
            raise ValueError(
                f"{name} has shape {tuple(tensor.shape)}, expected {tuple(reference.shape)} "
                f"(the shape of {reference_name})"
            )


def check_positive(name: str, value: float) -> None:
    """Raise ValueError unless ``value`` > 0 (eps, clip ranges)."""
    if not value > 0:
        raise ValueError(f"{name} must be > 0, got {value!r}")
