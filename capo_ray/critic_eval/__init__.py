"""Critic evaluation: score a critic (model, k, voting rule) on step-labelled solutions before
a training run depends on it (docs/algorithm.md, "Critic quality never checked").

Pure modules (plain Python: no ray, vllm or model code):
- ``corruption``: one GSM8K solution step corrupted, the change carried forward exactly (it
  reads and recomputes equations with ``capo_ray.critics.calculator``, the arith critic's own
  exact calculator);
- ``step_errors``: the step-error benchmark (records, labels, seeded selection);
- ``metrics``: step-level precision/recall/F1 and ProcessBench first-error accuracy;
- ``runner``: judge once with K = max(ks) critiques, score every (voting rule, k);
- ``report``: results.md / results.json / examples.jsonl;
- ``config``: the typed config (``conf/critic_eval.yaml``), checked before the judge starts.

``cli`` (console script ``capo-ray-critic-eval``, also ``python -m capo_ray.critic_eval``)
composes the config, builds the benchmark, starts the judge and writes the report.
"""


def main() -> None:
    """Console-script entry; imported lazily so the pure modules stay free of hydra."""
    from capo_ray.critic_eval.cli import main as cli_main

    cli_main()
