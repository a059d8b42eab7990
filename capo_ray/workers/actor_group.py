"""The one way every role (learner ranks, rollout engines, reference, critic engines) starts
its Ray actors: placement, options and a start-up check in one place.

``ActorOptions`` says where and with what a role's actors run; ``start_group`` creates one
actor per init-argument tuple (actor i on bundle ``bundle_indices[i]``, default i, of the
role's placement group); ``wait_ready`` turns a start-up failure or a hang into one error that
names the role.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class ActorOptions:
    role: str  # "learner" | "rollout" | "reference" | "critic": names actors and errors
    num_cpus: float
    num_gpus: float = 0.0  # per actor (a tensor-parallel engine holds all of its GPUs)
    env_vars: Mapping[str, str] = field(default_factory=dict)
    placement_group: Any = None
    bundle_indices: Sequence[int] | None = None
    name_prefix: str | None = None  # actors named "<prefix>-<i>" (findable, e.g. by fault-injection tests)

    def ray_options(self, index: int) -> dict[str, Any]:
        """``ray.remote(...).options(**...)`` for actor ``index`` of the role."""
        options: dict[str, Any] = {
            "num_cpus": self.num_cpus,
            "num_gpus": self.num_gpus,
            "runtime_env": {"env_vars": dict(self.env_vars)},
        }
        if self.name_prefix:
            options["name"] = f"{self.name_prefix}-{index}"
        if self.placement_group is not None:
            from ray.util.scheduling_strategies import PlacementGroupSchedulingStrategy

            bundle = index if self.bundle_indices is None else int(self.bundle_indices[index])
            options["scheduling_strategy"] = PlacementGroupSchedulingStrategy(
                placement_group=self.placement_group, placement_group_bundle_index=bundle
            )
        return options


def start_group(actor_cls: type, options: ActorOptions, init_args: Sequence[tuple[Any, ...]]) -> list[Any]:
    """One actor of ``actor_cls`` (a plain class) per entry of ``init_args``. Returns at once;
    call ``wait_ready`` (or a first method) to see start-up errors."""
    if not init_args:
        raise ValueError(f"{options.role}: no actors to start")
    bundles = options.bundle_indices
    if bundles is not None and len(bundles) != len(init_args):
        raise ValueError(f"{options.role}: bundle_indices has {len(bundles)} entries for {len(init_args)} actors")
    if bundles is not None and options.placement_group is None:
        raise ValueError(f"{options.role}: bundle_indices given without a placement_group")
    return [start_one(actor_cls, options, i, args) for i, args in enumerate(init_args)]


def start_one(actor_cls: type, options: ActorOptions, index: int, init_args: tuple[Any, ...]) -> Any:
    """Actor ``index`` of a role alone, where ``start_group`` put it (same bundle, same name):
    how a dead actor is replaced in place (driver/recovery.py)."""
    import ray

    return ray.remote(actor_cls).options(**options.ray_options(index)).remote(*init_args)


def wait_ready(handles: Sequence[Any], role: str, timeout_s: float | None) -> None:
    """Block until every actor's constructor has finished. A constructor's exception comes
    back as Ray's own error (it names the actor class and carries the cause); actors not up
    within ``timeout_s`` (e.g. resources that never free up; None waits) raise naming the role."""
    import ray

    try:
        ray.get([h.__ray_ready__.remote() for h in handles], timeout=timeout_s)
    except ray.exceptions.GetTimeoutError:
        raise RuntimeError(f"{role} actors did not start within {timeout_s:.0f} s") from None


def kill_actors(handles: Sequence[Any]) -> None:
    import ray

    for handle in handles:
        if handle is not None:
            ray.kill(handle)
