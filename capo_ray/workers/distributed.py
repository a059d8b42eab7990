"""Rendezvous for a group of Ray actors that form one torch.distributed world.

The same code path serves a 2-core CPU box (gloo over loopback) and a GPU cluster (NCCL across
nodes); only ``comm_backend`` and the device selection differ. The driver:

1. creates N actors (``actor_group.start_group``), optionally pinned to placement-group bundles;
2. asks each actor for its node IP and picks the master address (``master_address``);
3. asks rank 0 for a free port *on its own node* (the port must be free where rank 0 listens);
4. gives every actor its ``rendezvous_env`` and lets them all join concurrently.

No launcher (torchrun / deepspeed) is involved: Ray is the launcher, as in OpenRLHF and verl.
"""

from __future__ import annotations

import socket
from collections.abc import Sequence
from typing import Any

LOOPBACK = "127.0.0.1"


def node_ip() -> str:
    """The IP address Ray uses for the node this process runs on."""
    import ray

    return ray.util.get_node_ip_address()


def free_port(host: str = LOOPBACK) -> int:
    """A TCP port that is free on ``host`` right now.

    There is a short race between closing this probe socket and the process-group store
    binding it; frameworks accept it because the window is milliseconds and a clash fails loudly.
    """
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def master_address(node_ips: Sequence[str]) -> str:
    """Where the rendezvous store listens: loopback when every rank shares one node (nothing
    leaves the machine, no firewall or interface choice matters), else rank 0's node IP."""
    if not node_ips:
        raise ValueError("master_address needs the node IP of at least one rank")
    return LOOPBACK if len(set(node_ips)) == 1 else node_ips[0]


def local_ranks(node_ips: Sequence[str]) -> list[int]:
    """Rank of each actor among the actors on its own node (LOCAL_RANK), in global rank order."""
    seen: dict[str, int] = {}
    out = []
    for ip in node_ips:
        out.append(seen.get(ip, 0))
        seen[ip] = out[-1] + 1
    return out


def rendezvous_env(
    rank: int, world_size: int, local_rank: int, master_addr: str, master_port: int
) -> dict[str, str]:
    """The variables torch.distributed's ``env://`` init (and DeepSpeed) read."""
    if not 0 <= rank < world_size:
        raise ValueError(f"rank {rank} is outside a world of size {world_size}")
    if not 0 < master_port < 65536:
        raise ValueError(f"master_port {master_port} is not a TCP port")
    return {
        "MASTER_ADDR": master_addr,
        "MASTER_PORT": str(master_port),
        "RANK": str(rank),
        "WORLD_SIZE": str(world_size),
        "LOCAL_RANK": str(local_rank),
    }


def comm_backend(device: str) -> str:
    """gloo on CPU, NCCL on CUDA: the only backend difference between the two kinds of machine."""
    backends = {"cpu": "gloo", "cuda": "nccl"}
    if device not in backends:
        raise ValueError(f"unknown device {device!r}; valid devices: {sorted(backends)}")
    return backends[device]


def accelerator_env(device: str) -> dict[str, str]:
    """Environment an actor needs *before* it imports deepspeed: DeepSpeed picks its accelerator
    at import time, and on a machine without CUDA it must be told ``cpu`` explicitly."""
    comm_backend(device)  # validates the name
    from capo_ray.hardware import cpu_worker_env

    return {"DS_ACCELERATOR": device, **(cpu_worker_env() if device == "cpu" else {})}


class RankActor:
    """Methods every rank actor needs for the rendezvous (mixed into the worker classes)."""

    def node_ip(self) -> str:
        return node_ip()

    def free_port(self, host: str) -> int:
        # Run inside rank 0's process, so the port is probed on the node that will listen.
        return free_port(host)


def rendezvous(actors: Sequence[Any]) -> list[dict[str, str]]:
    """Compute every rank's torch.distributed environment for ``actors`` (rank = list index)."""
    import ray

    ips = ray.get([a.node_ip.remote() for a in actors])
    addr = master_address(ips)
    port = ray.get(actors[0].free_port.remote("" if addr != LOOPBACK else LOOPBACK))
    locals_ = local_ranks(ips)
    return [rendezvous_env(r, len(actors), locals_[r], addr, port) for r in range(len(actors))]


def init_process_group(device: str, timeout_s: float = 1800.0) -> None:
    """Join the torch.distributed world described by this process's RANK/WORLD_SIZE/MASTER_*
    variables, through DeepSpeed so that its collectives wrapper (``deepspeed.comm``) is set up.

    On CPU, DeepSpeed's TorchBackend JIT-compiles a shared-memory all-reduce op
    (``deepspeed_shm_comm``, ~25 s on a 2-core machine) at init. That op only serves
    ``inference_all_reduce`` (tensor-parallel inference); ZeRO training never calls it. The
    probe result it checks is a module-level dict that DeepSpeed documents as editable, so we
    mark the op unavailable and the build is skipped; training collectives stay on gloo.
    """
    from datetime import timedelta

    import deepspeed

    if device == "cpu":
        deepspeed.ops.__compatible_ops__["deepspeed_shm_comm"] = False
    deepspeed.init_distributed(dist_backend=comm_backend(device), timeout=timedelta(seconds=timeout_s))

