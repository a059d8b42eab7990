import pytest

from capo_ray.config import ConfigError
from capo_ray.config.compose import compose_dict
from capo_ray.config.strict import from_dict
from capo_ray.sft.config import SftConfig
from capo_ray.sft.learners import lr_at


def _load(*overrides):
    return from_dict(SftConfig, compose_dict(list(overrides), config_name="sft"))


def test_sft_yaml_composes_and_mirrors_every_field():
    data = compose_dict([], config_name="sft")
    cfg = from_dict(SftConfig, data)
    assert cfg.sft.backend == "deepspeed" and cfg.data.name == "chain" and cfg.model.path == "smollm2"
    assert set(data["sft"]) == set(vars(cfg.sft))
    gsm = _load("data=gsm8k_train", "sft.steps=3", "model=organism")
    assert gsm.data.name == "gsm8k_train" and gsm.sft.steps == 3 and gsm.model.path == "organism"


@pytest.mark.parametrize("override, key", [
    ("sft.schedule=cosine", "sft.schedule"),  # a schedule needs the torch backend
    ("sft.propagate_error=-0.1", "sft.propagate_error"),
    ("sft.steps=0", "sft.steps"),
    ("sft.batch_size=3", "sft.batch_size"),  # not divisible over the 2 default learner ranks
    ("sft.bogus=1", "bogus"),
])
def test_config_mistakes_fail_at_load_naming_the_key(override, key):
    with pytest.raises((ConfigError, Exception), match=key.replace(".", r"\.")):
        _load(override)


def test_lr_schedule_warms_up_then_decays_to_the_floor():
    lrs = [lr_at(s, 100, 1e-3, 10, 0.1, "cosine") for s in range(100)]
    assert lrs[0] == pytest.approx(1e-4) and lrs[9] == pytest.approx(1e-3)
    assert all(a >= b for a, b in zip(lrs[10:], lrs[11:])) and lrs[-1] == pytest.approx(1e-4, rel=0.05)
    assert lr_at(50, 100, 1e-3, 0, 0.1, "constant") == 1e-3
