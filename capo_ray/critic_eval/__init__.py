"""Critic evaluation: score a critic (model, k, voting rule) on step-labelled solutions before
a training run depends on it (docs/algorithm.md, "Critic quality never checked").

Pure parts (plain Python: no ray, vllm or model code):
- ``calculator``: GSM8K calculator notes and exact arithmetic without eval;
- ``corruption``: one GSM8K solution step corrupted, the change carried forward exactly;
- ``step_errors``: the step-error benchmark (records, labels, seeded selection);
- ``metrics``: step-level precision/recall/F1 and ProcessBench first-error accuracy;
- ``runner``: judge once with K = max(ks) critiques, score every (voting rule, k);
- ``report``: results.md / results.json / examples.jsonl.

The CLI (``cli``, with ``config``; console script ``capo-ray-critic-eval``) starts the judge.
"""


def main() -> None:
    """Console-script entry; imported lazily so the pure modules stay free of hydra."""
    from capo_ray.critic_eval.cli import main as cli_main

    cli_main()
