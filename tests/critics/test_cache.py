from capo_ray.critics.cache import CritiqueCache
from capo_ray.records import CritiqueResult


class CountingCritic:
    def __init__(self, fail_first: bool = False):
        self.calls: list[int] = []
        self.fail_first = fail_first

    def critique(self, messages, step_texts):
        self.calls.append(len(messages))
        if self.fail_first:
            self.fail_first = False
            return [CritiqueResult(texts=[None], error="boom") for _ in messages]
        return [CritiqueResult(texts=[m[0]["content"]], prompt_tokens=5, completion_tokens=3) for m in messages]


def msg(text):
    return [{"role": "user", "content": text}]


def critique(cache, critic, messages):
    """(results, hits): the hit count is read off the results, as the step metrics read it."""
    out = cache.critique(critic, messages, [["s"]] * len(messages))
    return out, sum(r.cached for r in out)


def test_identical_prompts_are_judged_once_within_and_across_calls():
    cache, critic = CritiqueCache(100), CountingCritic()
    out, hits = critique(cache, critic, [msg("a"), msg("b"), msg("a")])
    assert critic.calls == [2] and hits == 1
    assert [r.texts for r in out] == [["a"], ["b"], ["a"]]
    assert [r.cached for r in out] == [False, False, True]
    assert out[2].prompt_tokens == 0  # the repeat cost nothing
    out, hits = critique(cache, critic, [msg("b"), msg("c")])
    assert critic.calls == [2, 1] and hits == 1


def test_failures_are_not_cached_and_the_cache_is_bounded():
    cache, critic = CritiqueCache(1), CountingCritic(fail_first=True)
    out, _ = critique(cache, critic, [msg("a")])
    assert out[0].error == "boom"
    out, hits = critique(cache, critic, [msg("a")])
    assert hits == 0 and out[0].texts == ["a"]  # retried, not served from a cached failure
    critique(cache, critic, [msg("b")])
    _, hits = critique(cache, critic, [msg("a")])
    assert hits == 0  # evicted: the cache holds one entry
