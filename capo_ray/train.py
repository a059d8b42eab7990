"""Entry point: ``python -m capo_ray.train [hydra overrides]`` (console script ``capo-ray-train``).

Order matters for users: the config is validated first, then the Ray cluster is checked
against the resource plan, and only then does any actor start.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

from capo_ray.config import Config

log = logging.getLogger("capo_ray")


def make_run_dir(cfg: Config) -> Path:
    name = cfg.trainer.run_name or time.strftime(f"{cfg.algo.name}-%Y%m%d-%H%M%S")
    run_dir = Path(cfg.trainer.output_dir).resolve() / name
    run_dir.mkdir(parents=True, exist_ok=True)
    return run_dir


def run(cfg: Config) -> Path:
    """Train with a validated config; returns the run directory (metrics, report, checkpoints)."""
    from capo_ray.driver.console import console

    started_at = time.monotonic()  # trainer.time_budget_s covers start-up and restarts too
    run_dir = make_run_dir(cfg)
    console.open(run_dir, cfg.logging.verbose)
    try:
        return _train(cfg, run_dir, started_at)
    finally:
        console.close()


def _train(cfg: Config, run_dir: Path, started_at: float) -> Path:
    from capo_ray.driver.cluster import start_actors
    from capo_ray.driver.console import CONSOLE, console
    from capo_ray.driver.recovery import ActorRecovery, is_recoverable
    from capo_ray.driver.trainer import Trainer, write_config
    from capo_ray.models.resolve import load_policy_tokenizer

    write_config(run_dir, cfg)
    where = "" if cfg.logging.verbose else " (engine, Ray and library output: logs/output.log)"
    log.info("run directory: %s%s", run_dir, where, extra=CONSOLE)
    with console.stage("policy tokenizer"):
        tokenizer = load_policy_tokenizer(cfg.model.path)
    failures = 0
    # A dead engine, critic or reference is replaced inside the Trainer; what that cannot fix
    # (a dead learner rank, a failed sync, a stale rollout) restarts every actor here.
    recovery = ActorRecovery.from_config(cfg.trainer)
    while True:
        workers = start_actors(cfg)
        try:
            history = Trainer(cfg, workers, tokenizer, run_dir, started_at=started_at, recovery=recovery).fit()
            break
        except Exception as err:
            failures += 1
            if not is_recoverable(err) or failures > cfg.trainer.max_step_failures:
                raise
            recovery.restarted()
            log.error(
                "recovering from failure %d/%d (%s: %s): restarting every actor and resuming "
                "from the last checkpoint", failures, cfg.trainer.max_step_failures,
                type(err).__name__, str(err).splitlines()[0] if str(err) else "",
            )
        finally:
            workers.shutdown()
    log.info("done: %d steps (%d actors replaced in place, %d restarts); report at %s", len(history),
             recovery.replaced, failures, run_dir / "report.md", extra=CONSOLE)
    return run_dir


def main() -> None:
    from capo_ray.config.entry import hydra_main

    hydra_main("config", Config, run)


if __name__ == "__main__":
    main()
