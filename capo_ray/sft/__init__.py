"""Supervised fine-tuning: the cold start CAPO's recipe begins RL from (``python -m capo_ray.sft``).

- ``examples``: (chat prompt, response) pairs from a jsonl file or generated task solutions;
- ``encode``: pairs -> ``TrainBatch`` rows with the prompt tokens masked out of the loss;
- ``learners``: the DeepSpeed ZeRO learner group (the RL learner, SFT objective) or an
  in-process plain-torch learner (one process, for tiny models such as the organism);
- ``runner``: the loop (progress bar, loss per step, HF folder out); ``cli``: the Hydra entry.
"""
