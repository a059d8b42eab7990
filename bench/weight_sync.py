"""Weight-sync speed: SmolLM2-135M from a learner-like Ray actor to a RolloutWorker actor.

The learner actor holds the HF model in float32 (as a trainer would) and broadcasts it over the
private gloo group in buckets of several sizes; each size is synced ``--repeats`` times and
the median reported as seconds, MB/s and seconds per MB (MB = 2^20 bytes actually sent). Before
timing, a perturbed sync is checked end to end: the engine's greedy output must equal HF
greedy with the learner's new weights (float32 engine) or at least change (bfloat16 engine).

    .venv/bin/python bench/weight_sync.py [--engine-dtype float32] [--bucket-mb 1 16 64 256]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # run from a checkout without installing

import torch  # noqa: E402

sys.path.insert(0, str(ROOT / "bench"))
import hf_sender  # noqa: E402  (the learner stand-in, shared with tests/workers/test_weight_sync.py)

PROMPT = [1, 4093, 198, 1780, 314, 216, 35, 1232, 216, 36, 47, 2, 198, 1, 520, 9531, 198]  # chat-ish ids


def engine_greedy(ray, engine, max_new: int) -> list[int]:
    return ray.get(engine.generate.remote([PROMPT], 1, 0.0, 1.0, max_new))[0][0].response_ids


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--engine-dtype", default="float32", choices=["float32", "bfloat16"])
    p.add_argument("--send-dtype", default=None, choices=[None, "bfloat16"], help="cast before sending")
    p.add_argument("--bucket-mb", type=float, nargs="+", default=[1, 16, 64, 256])
    p.add_argument("--repeats", type=int, default=3)
    args = p.parse_args()

    import ray
    from ray import cloudpickle

    from capo_ray.models.smollm2 import smollm2_path
    from capo_ray.workers.rollout import RolloutWorker
    from capo_ray.workers.weight_sync import connect_weight_sync, sync_weights
    from capo_ray.config.engine import EngineSettings
    from capo_ray.workers.vllm_engine import EngineConfig, engine_env

    cloudpickle.register_pickle_by_value(hf_sender)
    env = {"PYTHONPATH": str(ROOT)}
    ray.init(address="local", num_cpus=2, include_dashboard=False, _node_ip_address="127.0.0.1", runtime_env={"env_vars": env})
    try:
        path = str(smollm2_path())
        learner = ray.remote(num_cpus=1)(hf_sender.HFSender).remote(path)
        cfg = EngineConfig(model=path, seed=0, settings=EngineSettings(dtype=args.engine_dtype, max_model_len=512, kv_cache_gib=0.25))
        engine = ray.remote(num_cpus=1)(RolloutWorker).options(runtime_env={"env_vars": {**env, **engine_env("cpu")}}).remote(cfg)
        ray.get([learner.__ray_ready__.remote(), engine.__ray_ready__.remote()])
        send_dtype = getattr(torch, args.send_dtype) if args.send_dtype else None
        connect_weight_sync(lambda spec: learner.connect.remote(spec, 64.0, send_dtype), [engine], "127.0.0.1", "gloo", 300)

        before = engine_greedy(ray, engine, 16)
        ray.get(learner.perturb.remote(0, 0.05))
        meta = ray.get(learner.plan.remote(64.0))
        sync_weights(lambda: learner.send.remote(meta, 1), [engine], meta, 1, 300)
        after, expected = engine_greedy(ray, engine, 16), ray.get(learner.greedy.remote([PROMPT], 16))[0]
        print(f"check: engine greedy == HF greedy after sync: {after == expected}; changed: {after != before}")

        version = 1
        print(f"load {os.getloadavg()[0]:.1f}; engine {args.engine_dtype}, send {args.send_dtype or 'float32'}")
        for mb in args.bucket_mb:
            meta = ray.get(learner.plan.remote(mb))
            times = []
            for _ in range(args.repeats):
                version += 1
                start = time.perf_counter()
                sync_weights(lambda: learner.send.remote(meta, version), [engine], meta, version, 300)
                times.append(time.perf_counter() - start)
            secs, size = statistics.median(times), meta.num_bytes / 2**20
            print(f"bucket {mb:6.1f} MB: {len(meta.buckets):4d} buckets, {size:6.1f} MB, {secs:6.3f} s, "
                  f"{size / secs:7.1f} MB/s, {secs / size * 1000:6.2f} ms/MB", flush=True)  # fmt: skip
    finally:
        ray.shutdown()


if __name__ == "__main__":
    main()
