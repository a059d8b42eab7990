"""A bounded cache of critiques keyed by the exact critique prompt.

Small policies often sample the same response several times in a group (and again in later
steps); judging it once saves a k-critique request each time. Failed requests are never cached,
so a transient judge failure is retried the next time the response appears.

A result served from the cache carries ``cached=True``, so the hit count travels with the
judgements it belongs to (``critic/cache_hits`` in driver/metrics.py counts them).
"""

from __future__ import annotations

import json
from collections import OrderedDict
from typing import Any

from capo_ray.records import CritiqueResult


def _key(messages: list[dict[str, str]]) -> str:
    return json.dumps(messages, sort_keys=True, ensure_ascii=False)


def prompt_key(messages: list[dict[str, str]]) -> str:
    """The identity of a critique prompt: two responses with equal keys are judged once."""
    return _key(messages)


class CritiqueCache:
    def __init__(self, max_entries: int) -> None:
        self.max_entries = max_entries
        self._items: OrderedDict[str, CritiqueResult] = OrderedDict()

    def __contains__(self, key: str) -> bool:
        """Whether a prompt (by ``prompt_key``) would be served without asking the critic."""
        return key in self._items

    def critique(
        self, critic: Any, messages: list[list[dict[str, str]]], step_texts: list[list[str]]
    ) -> list[CritiqueResult]:
        """Results for every prompt, in order, asking ``critic`` only for prompts not seen
        before (each distinct prompt once). A repeat, within this call or of an earlier one,
        comes back with ``cached=True`` and zero token cost."""
        keys = [_key(m) for m in messages]
        todo: dict[str, int] = {}
        for i, key in enumerate(keys):
            if key not in self._items and key not in todo:
                todo[key] = i
        fresh = critic.critique([messages[i] for i in todo.values()], [step_texts[i] for i in todo.values()])
        new = dict(zip(todo, fresh))
        out = []
        for i, key in enumerate(keys):
            if key in new and todo[key] == i:
                out.append(new[key])
            else:
                first = new.get(key) or self._items[key]
                # A repeat costs no judge tokens: report zero cost for it.
                out.append(CritiqueResult(texts=list(first.texts), error=first.error, cached=True))
        for key, result in new.items():
            if result.error is None and all(t is not None for t in result.texts) and self.max_entries > 0:
                self._items[key] = result
                self._items.move_to_end(key)
        while len(self._items) > self.max_entries:
            self._items.popitem(last=False)
        return out

    def state_dict(self) -> list[list]:
        """The cached critiques, oldest first. A hit skips the critic (and its random draws), so
        a resumed run needs the same cache to judge the same way as an uninterrupted one."""
        return [[key, list(r.texts), r.error] for key, r in self._items.items()]

    def load_state_dict(self, items: list[list]) -> None:
        self._items = OrderedDict((key, CritiqueResult(texts=list(texts), error=error)) for key, texts, error in items)
