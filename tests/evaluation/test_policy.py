"""Which weights a `model=` value evaluates: HF folder, checkpoint, run directory, hub name."""

from __future__ import annotations

from pathlib import Path

import pytest

from capo_ray.evaluation.policy import resolve_policy


def _hf(folder: Path) -> Path:
    folder.mkdir(parents=True)
    (folder / "config.json").write_text("{}")
    return folder


def _checkpoint(run: Path, step: int, complete: bool = True, export: bool = True) -> Path:
    ckpt = run / "checkpoints" / f"step_{step:06d}"
    ckpt.mkdir(parents=True)
    if export:
        _hf(ckpt / "hf")
    if complete:
        (ckpt / "trainer_state.json").write_text('{"step": %d}' % step)
    return ckpt


def test_hf_folder_is_used_as_is(tmp_path):
    folder = _hf(tmp_path / "my-model")
    policy = resolve_policy(str(folder))
    assert policy.path == str(folder) and policy.label == "my-model"


def test_checkpoint_dir_and_its_hf_export_name_the_run_and_step(tmp_path):
    ckpt = _checkpoint(tmp_path / "capo-run", 10)
    for given in (ckpt, ckpt / "hf"):
        policy = resolve_policy(str(given))
        assert policy.path == str(ckpt / "hf") and policy.label == "capo-run/step_000010"


def test_run_dir_picks_the_latest_complete_exported_checkpoint(tmp_path):
    run = tmp_path / "run"
    _checkpoint(run, 2)
    _checkpoint(run, 10)
    _checkpoint(run, 11, complete=False)  # crashed while saving: not a checkpoint yet
    _checkpoint(run, 12, export=False)  # no HF export: nothing vLLM can load
    _checkpoint(run, 9)  # numeric order, not creation order
    assert resolve_policy(str(run)).path == str(run / "checkpoints" / "step_000010" / "hf")


def test_run_dir_without_a_usable_checkpoint_says_what_is_missing(tmp_path):
    run = tmp_path / "run"
    _checkpoint(run, 3, complete=False)
    with pytest.raises(FileNotFoundError, match="no complete checkpoint with an HF export"):
        resolve_policy(str(run))


def test_unrecognised_folder_and_missing_path_are_clear_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"is none of: an HF folder .* built-in models: \['smollm2', 'tiny'\]"):
        resolve_policy(str(tmp_path))
    with pytest.raises(FileNotFoundError, match="no such folder"):
        resolve_policy(str(tmp_path / "missing"))


def test_hub_name_passes_through():
    assert resolve_policy("Qwen/Qwen2.5-7B").path == "Qwen/Qwen2.5-7B"
