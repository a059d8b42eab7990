"""The outcome of one answer check, and the interface every verifier offers."""

from __future__ import annotations

from dataclasses import dataclass
from types import TracebackType
from typing import Literal, Protocol, Sequence

# ok: the check ran and ``correct`` is its answer; no_answer: the response states no final
# answer; timeout: the check ran past its deadline; error: the check crashed or the reference
# holds no answer. Only "ok" can be correct: the other three are counted, never silently
# turned into a wrong-but-valid answer (docs/algorithm.md: a failed check must be visible).
Status = Literal["ok", "timeout", "error", "no_answer"]


@dataclass(frozen=True)
class Verdict:
    correct: bool
    status: Status
    extracted: str | None  # the response's final answer as extracted, None if it has none

    def __post_init__(self) -> None:
        if self.correct and self.status != "ok":
            raise ValueError(f"Verdict: status {self.status!r} cannot be correct")


class Verifier(Protocol):
    """What the reward worker needs from an outcome verifier."""

    def verify_batch(self, responses: Sequence[str], references: Sequence[str]) -> list[Verdict]: ...

    def close(self) -> None: ...

    def __enter__(self) -> "Verifier": ...

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None: ...


def check_lengths(responses: Sequence[str], references: Sequence[str]) -> None:
    if len(responses) != len(references):
        raise ValueError(f"verify_batch: {len(responses)} responses but {len(references)} references")
