"""The resource plan: which actors the run needs and what each asks for, checked against the
Ray cluster before any actor starts (an impossible request otherwise waits forever).

Pure: it takes the typed config and a description of the cluster, so tests can check that
every cluster profile's plan adds up without starting Ray.
"""

from __future__ import annotations

from dataclasses import dataclass

from capo_ray.config import Config


class ResourceError(RuntimeError):
    """The cluster cannot host the plan; the message says what is missing."""


@dataclass(frozen=True)
class ActorPlan:
    role: str  # "learner" | "rollout" | "critic" | "reference"
    count: int
    cpus: float  # per actor
    gpus: float  # per actor (a tensor-parallel engine asks for all its GPUs in one bundle)

    @property
    def bundle(self) -> dict[str, float]:
        bundle = {"CPU": self.cpus}
        if self.gpus:
            bundle["GPU"] = self.gpus
        return bundle


def plan_resources(cfg: Config) -> list[ActorPlan]:
    c = cfg.cluster
    plans = [
        ActorPlan("learner", cfg.learner.num_workers, c.learner_cpus, c.learner_gpus),
        ActorPlan("rollout", cfg.rollout.num_engines, c.rollout_cpus, c.rollout_gpus),
        ActorPlan("reference", 1 if cfg.uses_reference else 0, c.reference_cpus, c.reference_gpus),
    ]
    if cfg.uses_critic and cfg.critic.uses_engines:
        plans.append(ActorPlan("critic", cfg.critic.num_engines, c.critic_cpus, c.critic_gpus))
    # GPUs per role (and per tensor-parallel engine) were checked at config load: Config._check_gpu_roles.
    return [p for p in plans if p.count > 0]


def placement_order(plans: list[ActorPlan]) -> list[ActorPlan]:
    """Plans in the order their placement groups are created: largest bundles (GPUs, then
    CPUs) first, so small bundles cannot fragment the nodes a large one needs."""
    return sorted(plans, key=lambda p: (-p.gpus, -p.cpus))


def totals(plans: list[ActorPlan]) -> dict[str, float]:
    out = {"CPU": 0.0, "GPU": 0.0}
    for p in plans:
        out["CPU"] += p.count * p.cpus
        out["GPU"] += p.count * p.gpus
    return out


def check_fits(plans: list[ActorPlan], cluster: dict[str, float], nodes: list[dict[str, float]]) -> None:
    """Raise ``ResourceError`` unless the totals fit ``cluster`` and each actor fits one node.

    ``cluster`` is ``ray.cluster_resources()``; ``nodes`` the per-node resources of alive nodes.
    """
    need = totals(plans)
    missing = [
        f"{key}: the plan needs {need[key]:g}, the cluster has {cluster.get(key, 0.0):g}"
        for key in ("CPU", "GPU")
        if need[key] > cluster.get(key, 0.0) + 1e-9
    ]
    for p in plans:
        fits = any(
            p.cpus <= n.get("CPU", 0.0) + 1e-9 and p.gpus <= n.get("GPU", 0.0) + 1e-9 for n in nodes
        )
        if not fits:
            missing.append(f"one {p.role} actor needs {p.bundle} on a single node; no node has that")
    if missing:
        lines = "\n  ".join(missing)
        plan = ", ".join(f"{p.count} x {p.role} {p.bundle}" for p in plans)
        raise ResourceError(f"not enough resources for this run:\n  {lines}\nplan: {plan}")
