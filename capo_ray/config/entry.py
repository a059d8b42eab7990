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
    if in_process_engine:
        # In-process vLLM engine core: ~2 s start-up on CPU instead of ~15 s (docs/cpu-notes.md).
        os.environ.setdefault("VLLM_ENABLE_V1_MULTIPROCESSING", "0")

    @hydra.main(config_path=str(CONF_DIR), config_name=config_name, version_base=None)
    def entry(dcfg) -> None:
        data = OmegaConf.to_container(dcfg, resolve=True)
        data.pop("hydra", None)
        run(from_dict(schema, data))

    entry()
