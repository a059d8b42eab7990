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
    _, control = chosen_mode(parse_args(["--quick", "--organism", "organism"]))
    assert compose_config(run_overrides(control, MAIN[0], 0, tmp_path, 1e-4)).data.zero_share == 0
    # the study's default is the organism whose mistake the outcome sometimes cannot see
    assert chosen_mode(parse_args(["--quick"]))[1].model == chosen_mode(parse_args([]))[1].model == "organism-hidden"


def test_resume_reuses_only_a_finished_run_of_the_same_configuration(tmp_path):
    import json

    from bench.learning import finished_run
    from capo_ray.config.strict import to_dict

    _, mode = chosen_mode(parse_args(["--quick", "--steps", "3"]))
    overrides = run_overrides(mode, MAIN[0], seed=0, out=tmp_path, lr=1e-4)
    run_dir = tmp_path / "runs" / "capo-seed0"
    run_dir.mkdir(parents=True)
    assert finished_run(run_dir, overrides, 3) is None  # nothing there yet
    (run_dir / "config.json").write_text(json.dumps(to_dict(compose_config(overrides))))
    rows = [{"step": i, "time/step": 2.0, "time/eval": 0.5} for i in range(3)]
    (run_dir / "metrics.jsonl").write_text("\n".join(json.dumps(r) for r in rows[:2]))
    assert finished_run(run_dir, overrides, 3) is None  # stopped after 2 of 3 steps: run it again
    (run_dir / "metrics.jsonl").write_text("\n".join(json.dumps(r) for r in rows))
    assert finished_run(run_dir, overrides, 3) == {"rc": 0, "wall_s": 7.5, "reused": True}
    # another learning rate is another run, whatever its folder is called
    assert finished_run(run_dir, run_overrides(mode, MAIN[0], 0, tmp_path, lr=2e-4), 3) is None


def test_ablation_grid_covers_the_knobs_once_each(tmp_path):
    import json

    from bench.learning import ablation_cells
    from capo_ray.config.strict import to_dict

    _, mode = chosen_mode(parse_args([]))
    configs = {}
    for cell in (*MAIN, *ablation_cells()):
        cfg = compose_config(run_overrides(mode, cell, seed=0, out=tmp_path, lr=1e-4))
        body = to_dict(cfg)
        body["trainer"].pop("run_name")  # the only thing a cell's name changes
        configs[cell.name] = (cfg, json.dumps(body, sort_keys=True))
    # no two cells are the same run under two names
    assert len({body for _, body in configs.values()}) == len(configs)
    capo = [cfg for cfg, _ in configs.values() if cfg.algo.name == "capo"]
    assert {c.critic.flip_noise for c in capo} == {0, 0.2, 0.4}
    noisy = {(c.critic.vote, c.critic.k) for c in capo if c.critic.flip_noise == 0.2}
    # every rule at k 4 and 8, and k 1 (where the rules are the same)
    assert {(v, k) for v, k in noisy if k > 1} == {(v, k) for v in ("intersection", "majority", "union", "average")
                                                    for k in (4, 8)}
    assert any(k == 1 for _, k in noisy)
    assert {c.algo.w_process for c in capo} == {0.1, 1, 2}
    assert {c.algo.scale_std for c, _ in configs.values()} == {True, False}
