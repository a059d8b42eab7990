"""What the templates show, computed from the logged records (no HTML here): a response's
steps with their vote, its tokens with heat-map colours, its critiques with their verdicts."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from matplotlib import colormaps
from matplotlib.colors import TwoSlopeNorm, to_hex


@dataclass(frozen=True)
class StepView:
    number: int  # 1-based, as the critic saw it
    text: str
    vote: str  # "wrong" (penalized by the vote) | "right" | "unjudged" (no vote: abstained or no critic)
    penalty: float | None


@dataclass(frozen=True)
class TokenView:
    text: str
    step: int  # 1-based step number, 0 between steps
    value: float | None
    colour: str  # background, "#rrggbb"
    flagged: bool  # inside a step the vote penalized


@dataclass(frozen=True)
class CritiqueView:
    number: int
    text: str | None  # None: the request failed
    verdict: str  # "wrong steps: 2, 3" | "no wrong step" | "abstained"
    wrong: list[int] | None


def step_views(sample: dict[str, Any]) -> list[StepView]:
    penalty = sample.get("step_penalty")
    out = []
    for k, text in enumerate(sample.get("steps") or []):
        p = None if penalty is None else float(penalty[k])
        vote = "unjudged" if p is None else ("wrong" if p > 0 else "right")
        out.append(StepView(k + 1, text, vote, p))
    return out


def _colours(values: list[float]) -> list[str]:
    # Diverging map centred on 0: red below (penalized / disadvantaged), blue above.
    lo, hi = min(values + [-1e-6]), max(values + [1e-6])
    norm = TwoSlopeNorm(vcenter=0.0, vmin=min(lo, -1e-6), vmax=max(hi, 1e-6))
    cmap = colormaps["RdBu"]
    # Squash towards the centre so the text on top stays readable.
    return [to_hex(cmap(0.5 + 0.7 * (norm(v) - 0.5))) for v in values]


def token_views(sample: dict[str, Any], field: str) -> list[TokenView]:
    """One entry per policy token, coloured by ``field`` ("token_rewards"/"token_advantages")."""
    tokens = sample.get("tokens") or []
    values = sample.get(field)
    steps = sample.get("token_step") or [-1] * len(tokens)
    penalty = sample.get("step_penalty") or []
    if not values or len(values) != len(tokens):
        return [TokenView(t, s + 1, None, "#eeeeee", False) for t, s in zip(tokens, steps)]
    colours = _colours([float(v) for v in values])
    return [
        TokenView(t, s + 1, float(v), c, 0 <= s < len(penalty) and penalty[s] > 0)
        for t, s, v, c in zip(tokens, steps, values, colours)
    ]


def critique_views(sample: dict[str, Any]) -> list[CritiqueView]:
    texts = sample.get("critiques") or []
    verdicts = sample.get("verdicts") or [None] * len(texts)
    out = []
    for i, (text, wrong) in enumerate(zip(texts, verdicts)):
        if wrong is None:
            verdict = "abstained (request failed)" if text is None else "abstained (unreadable verdict)"
        elif wrong:
            verdict = "wrong steps: " + ", ".join(str(w) for w in wrong)
        else:
            verdict = "no wrong step"
        out.append(CritiqueView(i + 1, text, verdict, wrong))
    return out


def response_view(index: int, sample: dict[str, Any]) -> dict[str, Any]:
    return {
        "index": index,
        "sample": sample,
        "steps": step_views(sample),
        "reward_tokens": token_views(sample, "token_rewards"),
        "advantage_tokens": token_views(sample, "token_advantages"),
        "critiques": critique_views(sample),
        "flagged": bool(sample.get("flagged", any(p > 0 for p in sample.get("step_penalty") or []))),
    }
