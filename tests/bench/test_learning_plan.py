import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from bench.learning import MAIN, chosen_mode, parse_args, run_overrides  # noqa: E402
from capo_ray.config.compose import compose_config  # noqa: E402
from capo_ray.models.organism import HIDDEN  # noqa: E402


def test_organism_flag_starts_every_run_from_that_organism_on_its_own_task(tmp_path):
    name, mode = chosen_mode(parse_args(["--quick", "--organism", "organism-hidden", "--seeds", "2"]))
    assert name == "quick" and mode.model == "organism-hidden" and mode.seeds == 2
    for cell in MAIN:
        cfg = compose_config(run_overrides(mode, cell, seed=1, out=tmp_path, lr=1e-4))
        assert cfg.model.path == "organism-hidden" and cfg.algo.name == cell.algo
        # RL asks the problems the organism learned: its value range and its "* 0" share
        assert (cfg.data.name, cfg.data.max_value, cfg.data.operand_max) == ("chain", HIDDEN.max_value, HIDDEN.operand_max)
        assert cfg.data.zero_share == HIDDEN.zero_share and cfg.data.seed == 1 and cfg.critic.seed == 1
    _, default = chosen_mode(parse_args(["--quick"]))
    assert compose_config(run_overrides(default, MAIN[0], 0, tmp_path, 1e-4)).data.zero_share == 0
