"""Peak memory of the run's processes on the driver's node, from /proc (VmHWM: the peak
resident set of each process). Ray names its worker processes ``ray::<Actor>``, which is how
actor processes are found without the state API (which needs the dashboard)."""

from __future__ import annotations

import os
from pathlib import Path

from capo_ray.driver.timer import peak_rss_gib


def _vm_hwm_kib(pid_dir: Path) -> int:
    try:
        for line in (pid_dir / "status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        pass
    return 0


def _is_ray_actor(pid_dir: Path) -> bool:
    try:
        return (pid_dir / "cmdline").read_bytes().startswith(b"ray::")
    except OSError:
        return False


def peak_rss_of_pids() -> float:
    """Largest peak RSS (GiB) among this process and the Ray actor processes of this user on
    this node; 0 for actors on other nodes (they are not visible here)."""
    uid = os.getuid()
    best = peak_rss_gib()
    proc = Path("/proc")
    if not proc.is_dir():
        return best
    for pid_dir in proc.iterdir():
        if not pid_dir.name.isdigit():
            continue
        try:
            if pid_dir.stat().st_uid != uid or not _is_ray_actor(pid_dir):
                continue
        except OSError:
            continue
        best = max(best, _vm_hwm_kib(pid_dir) / (1 << 20))
    return best
