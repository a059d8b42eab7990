"""Outcome verifiers: does a response's final answer match the reference? (CAPO step 2, r_v)

Two interchangeable verifiers behind one registry:
- ``math``: mathematical equivalence via math-verify, each check in a worker process with a
  deadline (``MathVerifier``);
- ``exact``: numbers as exact rationals, else same spelling, in-process (``ExactMatchVerifier``).

Both return one ``Verdict(correct, status, extracted)`` per pair from ``verify_batch``, have
``close()`` and are context managers. ``is_correct`` is the one-pair convenience.

Modules: ``extract`` (final answer out of text), ``numeric`` (exact number comparisons),
``pool`` (processes with per-task deadlines), ``math_check`` (the math-verify call, run only
inside pool workers), ``math`` / ``exact`` (the verifiers), ``verdict`` (the record).
"""

from __future__ import annotations

from typing import Callable

from capo_ray.rewards.exact import ExactMatchVerifier
from capo_ray.rewards.math import MathVerifier, is_correct
from capo_ray.rewards.verdict import Status, Verdict, Verifier


def _make_math(timeout_s: float, num_workers: int) -> Verifier:
    return MathVerifier(timeout_s=timeout_s, num_workers=num_workers)


def _make_exact(timeout_s: float, num_workers: int) -> Verifier:
    del timeout_s, num_workers  # in-process and linear-time: neither applies
    return ExactMatchVerifier()


# name -> factory(timeout_s, num_workers)
VERIFIERS: dict[str, Callable[[float, int], Verifier]] = {"math": _make_math, "exact": _make_exact}


def make_verifier(name: str, timeout_s: float, num_workers: int) -> Verifier:
    """Build the verifier registered as ``name`` (see ``VERIFIERS``)."""
    if name not in VERIFIERS:
        raise ValueError(f"unknown verifier {name!r}; valid names: {sorted(VERIFIERS)}")
    return VERIFIERS[name](timeout_s, num_workers)


__all__ = [
    "VERIFIERS",
    "ExactMatchVerifier",
    "MathVerifier",
    "Status",
    "Verdict",
    "Verifier",
    "is_correct",
    "make_verifier",
]
