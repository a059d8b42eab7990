"""Critic evaluation: score a critic (model, k, voting rule) on step-labelled solutions before
a training run depends on it (CAPO_SPEC, "Critic quality never checked").

Pure parts (plain Python: no ray, vllm or model code):
- ``calculator``: GSM8K calculator notes and exact arithmetic without eval;
- ``corruption``: one GSM8K solution step corrupted, the change carried forward exactly;
- ``step_errors``: the step-error benchmark (records, labels, seeded selection);
- ``metrics``: step-level precision/recall/F1 and ProcessBench first-error accuracy.
"""
