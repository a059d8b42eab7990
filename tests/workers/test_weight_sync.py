"""Weight sync over a private gloo group: a learner-like Ray actor holding an HF model
perturbs its weights and broadcasts them in buckets to a RolloutWorker actor; the engine's
greedy output then equals HF greedy with the new weights. Mismatched metas and wrong shapes
raise on every side instead of hanging, and an engine left with mixed weights refuses to
generate until a good sync."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch

from capo_ray.models.tiny import tiny_model_path
from capo_ray.config.engine import EngineSettings
from capo_ray.workers.vllm_engine import EngineConfig, engine_env
from capo_ray.workers.weight_sync import SyncMeta, WeightSyncError, plan_buckets

REPO = str(Path(__file__).resolve().parents[2])
sys.path.insert(0, str(Path(REPO) / "bench"))
import hf_sender  # noqa: E402  (the learner stand-in shared with bench/weight_sync.py)

HFLearner = hf_sender.HFSender
PROMPTS = [[1, 9690, 198, 504, 3458], [1, 4093, 28, 253, 30, 216, 33]]
MAX_NEW = 10
TIMEOUT_S = 60.0


def test_plan_buckets_layout():
    # Sizes in float32 bytes: a=4 KiB, b=8 KiB, c (bf16)=2 KiB, d=4 KiB; limit 10 KiB.
    # float32 stream a, b, d: a+b = 12 KiB > 10 -> [a] closes when b arrives; [b] closes when
    # d arrives; [d] closes at the end. c alone. Order by last member index: a(0), b(1), c(2), d(3).
    meta = plan_buckets(
        [("a", (1024,), torch.float32), ("b", (2048,), torch.float32), ("c", (1024,), torch.bfloat16),
         ("d", (1024,), torch.float32)],
        bucket_mb=10 / 1024,
    )  # fmt: skip
    assert [b.names for b in meta.buckets] == [("a",), ("b",), ("c",), ("d",)]
    assert [b.dtype for b in meta.buckets] == ["torch.float32"] * 2 + ["torch.bfloat16", "torch.float32"]
    assert meta.num_bytes == 4096 + 8192 + 2048 + 4096
    again = SyncMeta.from_dict(meta.to_dict())
    assert again == meta
    bigger = plan_buckets([("a", (1024,), torch.float32), ("b", (1024,), torch.float32)], bucket_mb=1)
    assert [b.names for b in bigger.buckets] == [("a", "b")]
    assert bigger.fingerprint != meta.fingerprint


def _pair(timeout_s: float = 20.0):
    """A sender and a receiver-side group in two threads of this process (gloo over loopback)."""
    from concurrent.futures import ThreadPoolExecutor

    from capo_ray.workers.weight_sync.session import Rendezvous
    from capo_ray.workers.weight_sync import SyncGroup, SyncGroupSpec, WeightSender

    rdv = Rendezvous("127.0.0.1", timeout_s)
    spec = SyncGroupSpec(rdv.host, rdv.port, 0, 2, "gloo", timeout_s)
    with ThreadPoolExecutor(2) as pool:
        sender = pool.submit(WeightSender, spec, 0.001)
        group = pool.submit(SyncGroup, SyncGroupSpec(rdv.host, rdv.port, 1, 2, "gloo", timeout_s))
        return rdv, sender.result(), group.result()


def _receive_all(group, meta, version):
    from capo_ray.workers.weight_sync import WeightReceiver

    receiver = WeightReceiver(group, meta)
    receiver.handshake(version)
    got = {name: t.clone() for name, t in receiver.tensors()}
    return got, receiver.finish(failed=False)


def test_protocol_round_trip_mixed_dtypes_without_engines():
    from concurrent.futures import ThreadPoolExecutor

    gen = torch.Generator().manual_seed(0)
    weights = [
        ("emb", torch.randn(300, 4, generator=gen)),  # 4.7 KB: larger than a 1 KB bucket
        ("ids", torch.arange(5)),
        *[(f"w{i}", torch.randn(3, 5, generator=gen)) for i in range(30)],
    ]
    # bf16 tensors interleaved with float32 ones: a bf16 bucket completes while a float32
    # bucket is still open, so buckets leave in an order other than the tensors arrive.
    weights[5:5] = [(f"h{i}", torch.randn(7, generator=gen).to(torch.bfloat16)) for i in range(3)]
    weights.insert(12, ("h3", torch.randn(7, generator=gen).to(torch.bfloat16)))
    rdv, sender, group = _pair()
    meta = sender.plan(weights)
    assert {b.dtype for b in meta.buckets} == {"torch.float32", "torch.bfloat16", "torch.int64"}
    with ThreadPoolExecutor(2) as pool:
        sent = pool.submit(sender.send, iter(weights), meta, 3)
        got, ok = pool.submit(_receive_all, group, meta, 3).result(timeout=30)
    assert sent.result(timeout=30)["bytes"] == meta.num_bytes and ok
    assert sorted(got) == sorted(n for n, _ in weights)
    assert list(got) != [n for n, _ in weights]  # buckets really were reordered
    for name, t in weights:
        assert torch.equal(got[name], t) and got[name].dtype == t.dtype


def test_protocol_errors_without_engines():
    from concurrent.futures import ThreadPoolExecutor

    weights = [(f"w{i}", torch.ones(64)) for i in range(10)]
    rdv, sender, group = _pair()
    meta = sender.plan(weights)
    with ThreadPoolExecutor(2) as pool:
        # The receiver expects another version: both sides raise at the header.
        sent = pool.submit(sender.send, iter(weights), meta, 1)
        recv = pool.submit(_receive_all, group, meta, 2)
        with pytest.raises(WeightSyncError, match="header mismatch"):
            recv.result(timeout=30)
        with pytest.raises(WeightSyncError, match="rejected the sync header"):
            sent.result(timeout=30)
        # A tensor of the wrong shape midway: the sender aborts, the receiver stops too.
        bad = weights[:6] + [("w6", torch.ones(65))] + weights[7:]
        sent = pool.submit(sender.send, iter(bad), meta, 1)
        recv = pool.submit(_receive_all, group, meta, 1)
        with pytest.raises(WeightSyncError, match="aborted"):
            recv.result(timeout=30)
        with pytest.raises(WeightSyncError, match="does not match the meta"):
            sent.result(timeout=30)
        # The weights end early: abort before the last bucket.
        sent = pool.submit(sender.send, iter(weights[:-1]), meta, 1)
        recv = pool.submit(_receive_all, group, meta, 1)
        with pytest.raises(WeightSyncError, match="aborted"):
            recv.result(timeout=30)
        with pytest.raises(WeightSyncError, match="ended before 'w9'"):
            sent.result(timeout=30)
        # One weight too many after every bucket went out: reported by the final flag exchange.
        sent = pool.submit(sender.send, iter(weights + [("extra", torch.ones(1))]), meta, 1)
        got, ok = pool.submit(_receive_all, group, meta, 1).result(timeout=30)
        assert not ok and len(got) == len(weights)
        with pytest.raises(WeightSyncError, match="'extra' is not in the meta"):
            sent.result(timeout=30)
        # The group is still in step after all those failures: a good sync goes through.
        sent = pool.submit(sender.send, iter(weights), meta, 2)
        got, ok = pool.submit(_receive_all, group, meta, 2).result(timeout=30)
        assert ok and sent.result(timeout=30)["version"] == 2


@pytest.fixture(scope="module")
def cluster():
    ray = pytest.importorskip("ray")
    from ray import cloudpickle

    from capo_ray.workers.rollout import RolloutWorker
    from capo_ray.workers.weight_sync import connect_weight_sync

    # The learner stand-in lives outside the package, which Ray workers cannot import by name.
    cloudpickle.register_pickle_by_value(hf_sender)
    ray.init(
        address="local",  # a fresh cluster even when another one runs on this machine
        num_cpus=2,
        include_dashboard=False,
        _node_ip_address="127.0.0.1",
        runtime_env={"env_vars": {"PYTHONPATH": REPO}},
    )
    try:
        path = str(tiny_model_path())
        learner = ray.remote(num_cpus=0.5)(HFLearner).remote(path)
        cfg = EngineConfig(model=path, seed=0, settings=EngineSettings(dtype="float32", max_model_len=256, kv_cache_gib=0.25))
        env = {**engine_env("cpu"), "PYTHONPATH": REPO}
        engine = ray.remote(num_cpus=1)(RolloutWorker).options(runtime_env={"env_vars": env}).remote(cfg)
        ray.get([engine.weight_version.remote(), learner.__ray_ready__.remote()])  # built, not timed
        session = connect_weight_sync(
            lambda spec: learner.connect.remote(spec, bucket_mb=1.0), [engine], "127.0.0.1", "gloo", TIMEOUT_S
        )
        yield learner, engine, session
    finally:
        ray.shutdown()


def engine_greedy(engine) -> list[list[int]]:
    import ray

    out = ray.get(engine.generate.remote(PROMPTS, n=1, temperature=0.0, top_p=1.0, max_new_tokens=MAX_NEW))
    return [g[0].response_ids for g in out]


def sync(learner, engine, meta, version):
    from capo_ray.workers.weight_sync import sync_weights

    return sync_weights(lambda: learner.send.remote(meta, version), [engine], meta, version, TIMEOUT_S)


@pytest.mark.slow
def test_sync_makes_engine_follow_learner(cluster):
    import ray

    learner, engine, _ = cluster
    before = engine_greedy(engine)
    assert before == ray.get(learner.greedy.remote(PROMPTS, MAX_NEW))
    assert ray.get(engine.weight_version.remote()) == 0

    ray.get(learner.perturb.remote(seed=1, std=0.05))
    meta = ray.get(learner.plan.remote(bucket_mb=0.1))
    assert len(meta.buckets) > 2  # the 12.6 MB embedding alone, then ~0.1 MB buckets
    stats = sync(learner, engine, meta, version=1)
    assert stats["bytes"] == meta.num_bytes and stats["buckets"] == len(meta.buckets)
    after = engine_greedy(engine)
    assert after == ray.get(learner.greedy.remote(PROMPTS, MAX_NEW))
    assert after != before
    assert ray.get(engine.weight_version.remote()) == 1

    # A second update with tiny buckets (many per layer): the streamed reload still lands.
    ray.get(learner.perturb.remote(seed=2, std=0.05))
    meta = ray.get(learner.plan.remote(bucket_mb=0.01))
    assert len(meta.buckets) > 10  # buckets now split the layers' tensors between them
    sync(learner, engine, meta, version=2)
    assert engine_greedy(engine) == ray.get(learner.greedy.remote(PROMPTS, MAX_NEW))
    samples = ray.get(engine.generate.remote(PROMPTS, n=2, temperature=1.0, top_p=1.0, max_new_tokens=4))
    assert {s.weight_version for g in samples for s in g} == {2}


@pytest.mark.slow
def test_mismatched_meta_raises_and_keeps_engine_usable(cluster):
    import ray

    from capo_ray.workers.weight_sync import sync_weights

    learner, engine, _ = cluster
    version = ray.get(engine.weight_version.remote())
    before = engine_greedy(engine)
    sender_meta = ray.get(learner.plan.remote(bucket_mb=0.1))
    engine_meta = ray.get(learner.plan.remote(bucket_mb=0.2))  # other layout, other fingerprint
    assert engine_meta.fingerprint != sender_meta.fingerprint
    with pytest.raises(WeightSyncError, match="sender.*engine 0|mismatch"):
        sync_weights(lambda: learner.send.remote(sender_meta, version + 1), [engine], engine_meta, version + 1, TIMEOUT_S)
    # Rejected at the header: nothing was loaded, the engine keeps its weights and version.
    assert ray.get(engine.weight_version.remote()) == version
    assert engine_greedy(engine) == before


@pytest.mark.slow
def test_wrong_shapes_raise_then_a_good_sync_recovers(cluster):
    import ray

    learner, engine, _ = cluster
    good_meta = ray.get(learner.plan.remote(bucket_mb=1.0))
    name = good_meta.buckets[-1].names[-1]  # the last tensor: earlier buckets already loaded
    shape = good_meta.buckets[-1].shapes[-1]
    ray.get(learner.set_param.remote(name, (shape[0] + 1,)))

    # 1) The sender's weights no longer match the meta: it aborts, both sides raise.
    with pytest.raises(WeightSyncError, match="does not match the meta"):
        sync(learner, engine, good_meta, version=10)
    # Earlier buckets reached the model: it now holds mixed weights and must not generate.
    with pytest.raises(Exception, match="not usable"):
        engine_greedy(engine)

    # 2) A meta planned from the wrong shape: the engine's vLLM load fails, it drains the
    #    remaining buckets and reports, so the sender raises too (no hang).
    bad_meta = ray.get(learner.plan.remote(bucket_mb=1.0))
    with pytest.raises(WeightSyncError, match="failed to load"):
        sync(learner, engine, bad_meta, version=11)

    # 3) Restore the right shape and sync: the engine is usable again and follows the learner.
    ray.get(learner.set_param.remote(name, shape))
    ray.get(learner.perturb.remote(seed=3, std=0.05))
    sync(learner, engine, good_meta, version=12)
    assert ray.get(engine.weight_version.remote()) == 12
    assert engine_greedy(engine) == ray.get(learner.greedy.remote(PROMPTS, MAX_NEW))
