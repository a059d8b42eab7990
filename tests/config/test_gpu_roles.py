"""On device=cuda, a role this run starts with no GPUs (or a tensor-parallel engine with the
wrong number) fails at config load, naming the user's key, before Ray or any actor starts."""

import pytest

from capo_ray.config.compose import compose_config
from capo_ray.config.strict import ConfigError

GPU = ["cluster=gpu_1node"]


@pytest.mark.parametrize(
    "overrides, message",
    [
        (["cluster.reference_gpus=0"], "cluster.reference_gpus: device=cuda needs GPUs for the reference (got 0)"),
        (["cluster.learner_gpus=0"], "cluster.learner_gpus: device=cuda needs GPUs for the learner"),
        (["cluster.rollout_gpus=0"], "cluster.rollout_gpus: device=cuda needs GPUs for the rollout"),
        (["cluster.critic_gpus=0"], "cluster.critic_gpus: device=cuda needs GPUs for the critic"),
        (["critic.engine.tensor_parallel_size=8"],
         "cluster.critic_gpus = 4 but critic.engine.tensor_parallel_size = 8: a GPU engine needs one GPU per"),
        (["rollout.engine.tensor_parallel_size=2"],
         "cluster.rollout_gpus = 1 but rollout.engine.tensor_parallel_size = 2"),
    ],
)  # fmt: skip
def test_gpu_role_without_its_gpus_fails_at_load(overrides, message):
    with pytest.raises(ConfigError) as err:
        compose_config(GPU + overrides)
    assert message in str(err.value)


def test_roles_the_run_does_not_start_need_no_gpus():
    # No KL term: no reference actor. grpo or an in-driver critic: no critic actors.
    assert compose_config(GPU + ["algo.kl_coef=0", "cluster.reference_gpus=0"]).cluster.reference_gpus == 0
    assert compose_config(GPU + ["algo=grpo", "cluster.critic_gpus=0"]).algo.name == "grpo"
    assert compose_config(GPU + ["critic=arith", "cluster.critic_gpus=0"]).critic.backend == "arith"
    cpu = compose_config(["cluster.reference_gpus=0"])  # the CPU default: no GPU anywhere
    assert cpu.cluster.device == "cpu"


def test_every_gpu_profile_passes():
    for profile in ("gpu_1node", "gpu_2node"):
        assert compose_config([f"cluster={profile}"]).cluster.device == "cuda"
