"""bench/vs_trl.py's report: the warm-up step is left out, the overhead is split by stage, and
the last line is the ratio in the form the README and the review read."""

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from bench.vs_trl import STAGES, print_report, steady_mean  # noqa: E402


def _capo(name, seconds, critic):
    stages = {s: [0.0] * len(seconds) for s in STAGES}
    stages["critic"] = critic
    return {"name": name, "seconds": seconds, "tokens": [400.0] * len(seconds), "reward": [0.5] * len(seconds),
            "stages": stages}


def test_report_leaves_out_warmup_and_ends_with_the_ratio(capsys):
    args = argparse.Namespace(model="tiny", prompts=4, group=4, max_new=96, temperature=1.0, lr=1e-5, kl=0.001, steps=3)
    runs = {
        "trl": {"name": "TRL GRPOTrainer", "seconds": [500.0, 100.0, 100.0], "tokens": [400.0] * 3, "reward": [0.5] * 3},
        "grpo": _capo("capo-ray GRPO", [90.0, 40.0, 40.0], [0.0, 0.0, 0.0]),
        "capo_llm": _capo("capo-ray CAPO llm", [99.0, 50.0, 50.0], [9.0, 10.0, 10.0]),
    }
    assert steady_mean([500.0, 100.0, 100.0]) == 100.0
    print_report(args, runs)
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[-1] == "capo-ray GRPO / TRL seconds per optimizer step: 0.40x"
    assert lines[-2] == "capo-ray GRPO / TRL generated tokens/s: 2.50x"
    overhead = next(line for line in lines if line.startswith("capo-ray CAPO llm - GRPO"))
    assert "critic +10.00" in overhead and "total +10.00 (+25.0%)" in overhead
