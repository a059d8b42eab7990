"""The one Hydra entry point shape shared by capo-ray-train, capo-ray-eval and
capo-ray-critic-eval: compose ``conf/<config_name>.yaml`` with the command line, convert it
strictly into ``schema`` (unknown keys and bad values fail here), then call ``run``."""

from __future__ import annotations

import os
from typing import Any, Callable

from capo_ray.config.compose import CONF_DIR
from capo_ray.config.strict import from_dict


def hydra_main(config_name: str, schema: type, run: Callable[[Any], Any], in_process_engine: bool = False) -> None:
    import hydra
    from omegaconf import OmegaConf

    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    if in_process_engine:  # the tool builds its engine in this process: give it the engine's env
        from capo_ray.workers.vllm_engine import detect_device, engine_env

        for key, value in engine_env(detect_device()).items():
            os.environ.setdefault(key, value)

    @hydra.main(config_path=str(CONF_DIR), config_name=config_name, version_base=None)
    def entry(dcfg) -> None:
        data = OmegaConf.to_container(dcfg, resolve=True)
        data.pop("hydra", None)
        run(from_dict(schema, data))

    entry()
