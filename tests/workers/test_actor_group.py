"""One way to start a role's actors: options from config, placement, start-up check."""

import pytest

from capo_ray.config.compose import compose_config
from capo_ray.driver.actors import Actors, role_options
from capo_ray.workers.actor_group import ActorOptions, start_group
from capo_ray.workers.update_settings import UpdateSettings
from capo_ray.workers.vllm_engine import engine_env


def test_role_options_come_from_the_cluster_section():
    cfg = compose_config(["cluster=gpu_1node", "+cluster.env_vars.NCCL_SOCKET_IFNAME=eth1"])
    critic = role_options(cfg, "critic", None)
    assert (critic.num_cpus, critic.num_gpus) == (8.0, 4.0)
    assert critic.env_vars == {"NCCL_SOCKET_IFNAME": "eth1"}  # GPU engines need no engine env
    learner = role_options(cfg, "learner", None)
    assert learner.env_vars == {"DS_ACCELERATOR": "cuda", "NCCL_SOCKET_IFNAME": "eth1"}
    cpu = role_options(compose_config(), "rollout", None, name_prefix="rollout-engine")
    assert cpu.env_vars == engine_env("cpu") and cpu.env_vars["VLLM_ENABLE_V1_MULTIPROCESSING"] == "0"
    assert cpu.ray_options(1)["name"] == "rollout-engine-1"


def test_cluster_env_vars_must_be_strings():
    from capo_ray.config import ConfigError

    with pytest.raises(ConfigError, match="cluster.env_vars.NCCL_IB_DISABLE: expected a string"):
        compose_config(["+cluster.env_vars.NCCL_IB_DISABLE=1"])


def test_ray_options_place_actor_i_on_bundle_i():
    pytest.importorskip("ray")
    pg = object()  # the strategy only stores it
    options = ActorOptions("critic", num_cpus=1.0, num_gpus=4.0, env_vars={"A": "1"}, placement_group=pg)
    opts = options.ray_options(2)
    assert opts["num_gpus"] == 4.0 and opts["runtime_env"] == {"env_vars": {"A": "1"}}
    assert opts["scheduling_strategy"].placement_group_bundle_index == 2 and "name" not in opts
    remapped = ActorOptions("learner", num_cpus=1.0, placement_group=pg, bundle_indices=[3, 5])
    assert remapped.ray_options(1)["scheduling_strategy"].placement_group_bundle_index == 5


def test_start_group_rejects_a_bad_bundle_list_before_starting_anything():
    with pytest.raises(ValueError, match="learner: bundle_indices has 1 entries for 2 actors"):
        start_group(object, ActorOptions("learner", 1.0, placement_group=object(), bundle_indices=[0]), [(), ()])
    with pytest.raises(ValueError, match="without a placement_group"):
        start_group(object, ActorOptions("learner", 1.0, bundle_indices=[0]), [()])


@pytest.mark.parametrize(
    "overrides, critic, reference",
    [([], True, True), (["algo=grpo"], False, True), (["algo.kl_coef=0"], True, False)],
)
def test_uses_critic_and_reference_are_decided_on_the_config(overrides, critic, reference):
    cfg = compose_config(overrides)
    assert (cfg.uses_critic, cfg.uses_reference) == (critic, reference)


def test_the_update_settings_are_built_once_from_config():
    cfg = compose_config(["algo.mini_batches=2", "algo.ppo_epochs=2", "learner.micro_batch_size=2"])
    update = Actors(cfg, groups=None, owns_ray=False).update
    assert update == UpdateSettings(
        clip_low=0.2, clip_high=0.2, kl_coef=0.001, agg="token_mean", ppo_epochs=2,
        mini_batch_size=cfg.responses_per_step // 2, micro_batch_size=2,
    )  # fmt: skip
    assert update.loss_args == {"clip_low": 0.2, "clip_high": 0.2, "kl_coef": 0.001, "agg": "token_mean"}
    with pytest.raises(Exception):
        update.ppo_epochs = 3  # frozen: every rank trains with what the driver built


@pytest.mark.parametrize(
    "kwargs, message",
    [({"agg": "mean"}, "unknown loss aggregation"), ({"ppo_epochs": 0}, "ppo_epochs must be >= 1")],
)
def test_update_settings_reject_bad_values(kwargs, message):
    base = dict(clip_low=0.2, clip_high=0.2, kl_coef=0.0, agg="token_mean", ppo_epochs=1, mini_batch_size=4,
                micro_batch_size=2)
    with pytest.raises(ValueError, match=message):
        UpdateSettings(**{**base, **kwargs})
