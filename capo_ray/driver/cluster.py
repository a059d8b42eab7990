"""Start the run's actors from the typed config and give the trainer one facade over them.

Order (a mistake must surface before anything expensive starts): connect to / start Ray ->
check the resource plan against the cluster -> placement groups -> learner group, rollout
engines, reference, critic pool (``driver.actors.Actors``) -> weight-sync group.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from typing import Any

from capo_ray.config import Config
from capo_ray.driver.placement import ActorPlan, ResourceError, check_fits, placement_order, plan_resources
from capo_ray.models.resolve import resolve_model_path

log = logging.getLogger("capo_ray")


@dataclass
class PlacementGroups:
    """One placement group per role (one bundle per actor); ``role_options`` reads them."""

    by_role: dict[str, Any] = field(default_factory=dict)

    def remove(self) -> None:
        from ray.util.placement_group import remove_placement_group

        for pg in self.by_role.values():
            remove_placement_group(pg)
        self.by_role.clear()


def connect_ray(cfg: Config) -> bool:
    """Join the configured cluster (or the one a `ray job submit` runs us in), else start a
    local one bound to loopback. Returns True when this call started Ray."""
    import ray

    if ray.is_initialized():
        return False
    env = {"TOKENIZERS_PARALLELISM": "false"}
    address = cfg.cluster.address or os.environ.get("RAY_ADDRESS")
    if address:
        # No runtime_env here: inside `ray job submit` the job's own runtime_env (set by
        # launch/submit.sh) applies, and Ray refuses a second one.
        ray.init(address=address, log_to_driver=True)
    else:
        ray.init(
            num_cpus=cfg.cluster.num_cpus, include_dashboard=False,
            runtime_env={"env_vars": env}, _node_ip_address="127.0.0.1",
        )
    return True


def check_cluster(plans: list[ActorPlan]) -> None:
    """Fail fast, naming what is missing, instead of waiting forever on actors Ray cannot place."""
    import ray

    nodes = [n["Resources"] for n in ray.nodes() if n.get("Alive")]
    check_fits(plans, ray.cluster_resources(), nodes)


def create_placement_groups(plans: list[ActorPlan], strategy: str, timeout_s: float) -> PlacementGroups:
    import ray
    from ray.util.placement_group import placement_group

    groups = PlacementGroups()
    # Largest bundles first: a 4-GPU critic bundle needs a node with 4 free GPUs, which
    # one-GPU bundles reserved before it could fragment away.
    for plan in placement_order(plans):
        groups.by_role[plan.role] = placement_group([plan.bundle] * plan.count, strategy=strategy)
    try:
        ray.get([pg.ready() for pg in groups.by_role.values()], timeout=timeout_s)
    except ray.exceptions.GetTimeoutError:
        groups.remove()
        raise ResourceError(
            f"placement groups not ready after {timeout_s:.0f} s (strategy {strategy}); "
            "the cluster has the resources in total but cannot place the bundles as asked"
        ) from None
    return groups


def start_actors(cfg: Config):
    """Everything the trainer drives (``driver.actors.Actors``), started and connected
    (weights at version 0)."""
    from capo_ray.driver.actors import Actors

    from capo_ray.driver.console import console

    with console.stage("ray cluster"):
        started = connect_ray(cfg)
    plans = plan_resources(cfg)
    groups = None
    try:
        with console.stage("placement groups"):
            check_cluster(plans)
            groups = create_placement_groups(plans, cfg.cluster.placement_strategy, cfg.cluster.startup_timeout_s)
        with console.stage("policy weights"):
            model_path = resolve_model_path(cfg.model.path)
        return Actors.start(cfg, model_path, groups, owns_ray=started)
    except BaseException:
        if groups is not None:
            groups.remove()
        if started:
            import ray

            ray.shutdown()
        raise
