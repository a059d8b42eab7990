"""``python -m capo_ray.sft [hydra overrides]`` (console script ``capo-ray-sft``).

Examples:
    capo-ray-sft sft.output=runs/sft-chain                           # SmolLM2 on chain solutions
    capo-ray-sft data=gsm8k_train sft.steps=200 sft.output=runs/sft-gsm8k
    capo-ray-sft sft.pairs=my_pairs.jsonl model.path=/models/base sft.output=runs/sft-mine
"""

from __future__ import annotations


def main() -> None:
    from capo_ray.config.entry import hydra_main
    from capo_ray.sft.config import SftConfig
    from capo_ray.sft.runner import run

    hydra_main("sft", SftConfig, run)


if __name__ == "__main__":
    main()
