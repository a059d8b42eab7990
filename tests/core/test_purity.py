"""The core must stay importable without the distributed stack (docs/architecture.md, "A pure core")."""

import json
import subprocess
import sys

FORBIDDEN = ("ray", "vllm", "deepspeed", "transformers", "hydra", "omegaconf")

# Runs in a fresh interpreter: this test process may already hold ray etc. from other tests.
_PROBE = """
import importlib, json, pkgutil, sys
import capo_ray.core as core
names = [info.name for info in pkgutil.walk_packages(core.__path__, prefix="capo_ray.core.")]
for name in names:
    importlib.import_module(name)
roots = sorted({module.split(".")[0] for module in sys.modules})
print(json.dumps({"modules": names, "roots": roots}))
"""


def test_importing_every_core_module_imports_no_distributed_stack():
    result = subprocess.run([sys.executable, "-c", _PROBE], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    probe = json.loads(result.stdout.strip().splitlines()[-1])
    # The walk must have found the modules, or the check below proves nothing.
    expected = {"capo_ray.core.segment", "capo_ray.core.losses", "capo_ray.core.advantages"}
    assert expected <= set(probe["modules"])
    leaked = sorted(set(FORBIDDEN) & set(probe["roots"]))
    assert leaked == [], f"importing capo_ray.core pulled in {leaked}"
