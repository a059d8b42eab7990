"""Training and evaluation problems, and the prompts that pose them.

- ``datasets``: math sets from local jsonl/parquet files or the HF hub, as ``Problem`` records;
- ``prompts``: chat messages asking for blank-line-separated steps and a boxed answer;
- ``arithmetic``: the built-in generator of arithmetic problems (with its own few-shot prompt);
- ``sources``: the per-step problem batches the trainer draws, resumable by step index.
"""
