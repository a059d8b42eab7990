"""Which weights to evaluate: a built-in name, an HF folder or hub name, a training checkpoint
(``<checkpoint>/hf/``, the HF export the trainer saves) or a run directory (its latest
complete checkpoint)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from capo_ray.driver.checkpoint import STATE_FILE
from capo_ray.models.resolve import resolve_model_path

BUILTIN_MODELS = ("smollm2", "tiny")
HF_EXPORT = "hf"  # <checkpoint_dir>/hf/: config.json + safetensors + tokenizer
_STEP = re.compile(r"step_(\d+)$")


@dataclass(frozen=True)
class Policy:
    path: str  # what vLLM and the tokenizer load: an HF folder or a hub name
    label: str  # default row name in the results table


def resolve_policy(model: str) -> Policy:
    if model in BUILTIN_MODELS:
        return Policy(resolve_model_path(model), model)
    folder = Path(model).expanduser()
    if folder.is_dir():
        return _from_folder(folder.resolve())
    if model.startswith(("/", ".", "~")):
        raise FileNotFoundError(f"model {model!r}: no such folder")
    return Policy(model, model)  # a hub name, for machines with internet


def _from_folder(folder: Path) -> Policy:
    if (folder / "config.json").is_file():
        # A bare checkpoint export (".../step_000010/hf") is named after its checkpoint.
        if folder.name == HF_EXPORT and _STEP.search(folder.parent.name):
            return Policy(str(folder), _checkpoint_label(folder.parent))
        return Policy(str(folder), folder.name)
    if (folder / HF_EXPORT / "config.json").is_file():
        return Policy(str(folder / HF_EXPORT), _checkpoint_label(folder))
    if (folder / "checkpoints").is_dir():
        ckpt = latest_exported_checkpoint(folder)
        return Policy(str(ckpt / HF_EXPORT), _checkpoint_label(ckpt))
    raise FileNotFoundError(
        f"model folder {str(folder)!r} is none of: an HF folder (config.json), a checkpoint "
        f"({HF_EXPORT}/config.json), a run directory (checkpoints/step_*/{HF_EXPORT}); "
        f"built-in models: {list(BUILTIN_MODELS)}"
    )


def latest_exported_checkpoint(run_dir: Path) -> Path:
    """The highest-step checkpoint that is complete (its trainer state written, which the
    trainer does last) and has an HF export."""
    steps = []
    for ckpt in (run_dir / "checkpoints").iterdir():
        match = _STEP.search(ckpt.name)
        if match and (ckpt / STATE_FILE).is_file() and (ckpt / HF_EXPORT / "config.json").is_file():
            steps.append((int(match.group(1)), ckpt))
    if not steps:
        raise FileNotFoundError(
            f"run directory {str(run_dir)!r} has no complete checkpoint with an HF export "
            f"(checkpoints/step_*/{STATE_FILE} and checkpoints/step_*/{HF_EXPORT}/config.json)"
        )
    return max(steps)[1]


def _checkpoint_label(ckpt: Path) -> str:
    # run name + step: two checkpoints of different runs stay distinguishable in one table.
    return f"{ckpt.parent.parent.name}/{ckpt.name}" if ckpt.parent.name == "checkpoints" else ckpt.name
