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


def _setup_logging(run_dir: Path) -> None:
    """Log to stderr and to this run's train.log, replacing the handlers of an earlier run in
    the same process (tests, notebooks) so one run's log never collects another's lines."""
    fmt = logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s")
    root = logging.getLogger("capo_ray")
    root.setLevel(logging.INFO)
    for old in list(root.handlers):
        root.removeHandler(old)
        old.close()
    for handler in (logging.StreamHandler(), logging.FileHandler(run_dir / "train.log")):
        handler.setFormatter(fmt)
        root.addHandler(handler)


def run(cfg: Config) -> Path:
    """Train with a validated config; returns the run directory (metrics, report, checkpoints)."""
    from capo_ray.driver.cluster import start_actors
    from capo_ray.driver.recovery import is_recoverable
    from capo_ray.driver.trainer import Trainer, write_config
    from capo_ray.models.resolve import load_policy_tokenizer

    run_dir = make_run_dir(cfg)
    _setup_logging(run_dir)
    write_config(run_dir, cfg)
    log.info("run directory: %s", run_dir)
    tokenizer = load_policy_tokenizer(cfg.model.path)
    failures = 0
    while True:
        workers = start_actors(cfg)
        try:
            history = Trainer(cfg, workers, tokenizer, run_dir).fit()
            break
        except Exception as err:
            failures += 1
            if not is_recoverable(err) or failures > cfg.trainer.max_step_failures:
                raise
            log.error(
                "recovering from failure %d/%d (%s: %s): restarting every actor and resuming "
                "from the last checkpoint", failures, cfg.trainer.max_step_failures,
                type(err).__name__, str(err).splitlines()[0] if str(err) else "",
            )
        finally:
            workers.shutdown()
    log.info("done: %d steps (%d recovered failures); report at %s", len(history), failures, run_dir / "report.md")
    return run_dir


def main() -> None:
    from capo_ray.config.entry import hydra_main

    hydra_main("config", Config, run)


if __name__ == "__main__":
    main()
