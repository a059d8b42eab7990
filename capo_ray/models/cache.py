"""Where converted model folders live: a cache outside the repository, built once per machine.

Conversion (GGUF -> HF safetensors) takes ~20 s and tests, the demo and the benchmarks all
reuse its result, so the folder is created atomically (build in a temp dir, then rename) and a
concurrent builder that loses the race simply uses the winner's folder.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from typing import Callable


def cache_root() -> Path:
    """``$CAPO_RAY_CACHE`` or ``~/.cache/capo_ray``."""
    root = os.environ.get("CAPO_RAY_CACHE") or os.path.join(Path.home(), ".cache", "capo_ray")
    return Path(root)


def build_once(name: str, build: Callable[[Path], None]) -> Path:
    """Return ``cache_root()/models/<name>``, calling ``build(tmp_dir)`` to create it if absent.

    A folder only appears under its final name once ``build`` has finished, so a crash midway
    never leaves a half-written model that later runs would load.
    """
    final = cache_root() / "models" / name
    if (final / "config.json").exists():
        return final
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{name}.", dir=final.parent))
    try:
        build(tmp)
        try:
            os.rename(tmp, final)
        except OSError:
            if not (final / "config.json").exists():
                raise
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return final
