"""Compose ``conf/`` with Hydra outside of ``@hydra.main`` (tests, benchmarks, notebooks)."""

from __future__ import annotations

from pathlib import Path

from capo_ray.config.root import Config, load_config

CONF_DIR = Path(__file__).resolve().parents[2] / "conf"


def compose_dict(overrides: list[str] | None = None, config_name: str = "config") -> dict:
    """The composed, resolved config as a plain dict (before typed validation)."""
    from hydra import compose, initialize_config_dir
    from omegaconf import OmegaConf

    with initialize_config_dir(config_dir=str(CONF_DIR), version_base=None):
        cfg = compose(config_name=config_name, overrides=list(overrides or []))
    data = OmegaConf.to_container(cfg, resolve=True)
    data.pop("hydra", None)
    return data


def compose_config(overrides: list[str] | None = None) -> Config:
    """Compose ``conf/config.yaml`` with command-line style overrides into a typed ``Config``."""
    return load_config(compose_dict(overrides))
