"""Typed configuration: one dataclass per component (``components``), the whole run
(``Config``), strict loading from Hydra's composed dict (``load_config``)."""

from capo_ray.config.components import (
    AlgoConfig,
    ClusterConfig,
    CriticConfig,
    DataConfig,
    LearnerConfig,
    LoggingConfig,
    ModelConfig,
    RolloutConfig,
    TrainerConfig,
)
from capo_ray.config.root import Config, load_config
from capo_ray.config.strict import ConfigError

__all__ = [
    "AlgoConfig",
    "ClusterConfig",
    "Config",
    "ConfigError",
    "CriticConfig",
    "DataConfig",
    "LearnerConfig",
    "LoggingConfig",
    "ModelConfig",
    "RolloutConfig",
    "TrainerConfig",
    "load_config",
]
