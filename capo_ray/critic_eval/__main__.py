"""``python -m capo_ray.critic_eval [hydra overrides]``: the same as ``capo-ray-critic-eval``."""

from capo_ray.critic_eval.cli import main

if __name__ == "__main__":
    main()
