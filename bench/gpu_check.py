"""GPU check kit: what can be verified on ONE GPU machine that has PyTorch but maybe no vLLM,
no DeepSpeed and no network. One line per check, with its figure; exit 1 when a check fails.

    python bench/gpu_check.py                 # cuda when visible, else cpu
    python bench/gpu_check.py --device cpu    # the CPU-capable parts (the test suite runs this)

Checks, each through the project's own code (no model download: a random Llama from config):
  learner   forward + backward + PPO loss (workers.forward.sequence_logprobs, core.losses) in
            bf16 on CUDA (fp32 on CPU) with the chunked log-probs (--chunk-tokens), its peak
            memory and seconds;
  learner_full  the same on the full-logits path (chunk 0): the peak the chunking saves;
  zero2     one DeepSpeed ZeRO-2 optimizer step, world size 1, through the same code (the engine
            as the model, engine.backward, chunked log-probs), with its grad norm and peak
            (skipped without deepspeed; ~15 s of DeepSpeed start-up on a 2-core CPU);
  sync      the weight sender over the private sync group (NCCL on CUDA, gloo on CPU), world
            size 1: bucket packing, the bf16 cast, broadcasts, handshake and failure flags;
  sync_timeout  a collective that never completes ends in WeightSyncError within its deadline
            (the bounded wait that replaces NCCL's watchdog kill), not a hang;
  vllm      the installed vLLM release is the supported one (skipped without vllm).
docs/gpu.md lists what these checks do not cover.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # run from a checkout without installing

import torch  # noqa: E402


def _model(device: str, dtype: torch.dtype, hidden: int, layers: int, vocab: int):
    from transformers import LlamaConfig, LlamaForCausalLM

    cfg = LlamaConfig(vocab_size=vocab, hidden_size=hidden, intermediate_size=hidden * 3, num_hidden_layers=layers,
                      num_attention_heads=max(1, hidden // 64), num_key_value_heads=max(1, hidden // 256),
                      max_position_embeddings=8192, tie_word_embeddings=False)  # fmt: skip
    torch.manual_seed(0)
    with torch.device(device):  # initialized where it runs: a 0.8B model's CPU init takes a while
        model = LlamaForCausalLM(cfg)
    return model.to(dtype=dtype)


def _batch(args, device):
    """Random token rows, the last three quarters of each scored (a prompt plus a response)."""
    ids = torch.randint(0, args.vocab, (args.rows, args.length), device=device)
    response = torch.zeros(ids.shape, device=device)
    response[:, args.length // 4 :] = 1.0
    return ids, torch.ones_like(ids), response


def _learner_step(model, args, chunk_tokens: int, backward) -> tuple[float, float]:
    """One micro-batch through the learner's own code: sequence_logprobs (chunked log-probs when
    chunk_tokens > 0) and the PPO loss, then ``backward(loss)``. Returns (loss, seconds)."""
    from capo_ray.core.losses import policy_loss
    from capo_ray.workers.forward import sequence_logprobs

    device = next(model.parameters()).device
    ids, attention, response = _batch(args, device)
    start = time.perf_counter()
    lp = sequence_logprobs(model, ids, attention, micro_batch_size=args.rows, response_mask=response,
                           chunk_tokens=chunk_tokens)  # fmt: skip
    adv = torch.randn(ids.shape, device=device) * response
    loss, _ = policy_loss(lp, lp.detach(), None, adv, response, 0.2, 0.2, 0.0, "token_mean")
    backward(loss)
    if device.type == "cuda":
        torch.cuda.synchronize()
    loss = loss.detach()
    if not torch.isfinite(loss) or lp.dtype != torch.float32:
        raise RuntimeError(f"loss {float(loss)} / log-prob dtype {lp.dtype}: expected a finite fp32 loss")
    return float(loss), time.perf_counter() - start


def _peak(args) -> str:
    return f"peak {torch.cuda.max_memory_allocated() / 2**30:.2f} GiB" if args.device == "cuda" else "peak n/a on cpu"


def _learner(args, chunk_tokens: int) -> str:
    dtype = torch.bfloat16 if args.device == "cuda" else torch.float32
    model = _model(args.device, dtype, args.hidden, args.layers, args.vocab).train()
    if args.device == "cuda":
        torch.cuda.reset_peak_memory_stats()
    loss, secs = _learner_step(model, args, chunk_tokens, lambda loss: loss.backward())
    grads = sum(p.grad is not None for p in model.parameters())
    chunks = f"chunks of {chunk_tokens}" if chunk_tokens else "full logits"
    line = (f"{str(dtype)[6:]} {args.rows}x{args.length} tokens, {chunks}, loss {loss:.4f}, {grads} grads, "
            f"{secs:.2f} s, {_peak(args)}")  # fmt: skip
    if args.device == "cuda":
        peaks = vars(args).setdefault("peaks", {})
        peaks[bool(chunk_tokens)] = torch.cuda.max_memory_allocated() / 2**30
        if len(peaks) == 2:
            line += f"; chunking saves {peaks[False] - peaks[True]:.2f} GiB"
        del model
        torch.cuda.empty_cache()
    return line


def check_learner(args) -> str:
    return _learner(args, args.chunk_tokens)


def check_learner_full(args) -> str:
    """The same step on the full-logits path (learner.logprob_chunk_tokens=0), for the peak."""
    return _learner(args, 0)


def check_zero2(args) -> str:
    import deepspeed  # without it: a SKIP line (main)

    from capo_ray.workers.distributed import init_process_group
    from capo_ray.workers.ds_config import build_ds_config

    os.environ.update({"MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(_free_port()), "RANK": "0",
                       "WORLD_SIZE": "1", "LOCAL_RANK": "0"})  # fmt: skip
    init_process_group(args.device, timeout_s=120.0)  # the learner's own init (no CPU shm-op build)
    model = _model(args.device, torch.float32, args.hidden, args.layers, args.vocab)
    ds = build_ds_config(zero_stage=2, micro_batch_size=args.rows, gradient_accumulation_steps=1, world_size=1,
                         precision="bf16" if args.device == "cuda" else "fp32", grad_clip=1.0,
                         device=args.device)  # fmt: skip
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-5)
    engine, *_ = deepspeed.initialize(model=model, optimizer=optimizer, config=ds)
    if args.device == "cuda":
        torch.cuda.reset_peak_memory_stats()
    engine.train()
    loss, secs = _learner_step(engine, args, args.chunk_tokens, lambda loss: engine.backward(loss, scale_wrt_gas=False))
    engine.step()
    norm = engine.get_global_grad_norm()
    if norm is None or not float(norm) > 0:
        raise RuntimeError(f"ZeRO-2 step gave grad norm {norm}")
    return (f"one ZeRO-2 step through the learner's code, chunks of {args.chunk_tokens}, loss {loss:.4f}, "
            f"grad norm {float(norm):.4f}, {secs:.2f} s, {_peak(args)}")  # fmt: skip


def _free_port() -> int:
    from capo_ray.workers.distributed import free_port

    return free_port()


def check_sync(args) -> str:
    from capo_ray.workers.weight_sync import SyncGroupSpec, WeightSender
    from capo_ray.workers.weight_sync.session import Rendezvous

    if args.device == "cuda":
        torch.cuda.set_device(0)
    rdv = Rendezvous("127.0.0.1", 60.0)
    backend = "nccl" if args.device == "cuda" else "gloo"
    sender = WeightSender(SyncGroupSpec(rdv.host, rdv.port, 0, 1, backend, 60.0), bucket_mb=16.0,
                          send_dtype=torch.bfloat16)
    model = _model(args.device, torch.float32, args.hidden, args.layers, args.vocab)
    meta = sender.plan(model.named_parameters())
    times = []
    with torch.no_grad():
        for version in (1, 2, 3):
            times.append(sender.send(model.named_parameters(), meta, version)["seconds"])
    reused = sender.buffers.allocated
    sender.close()
    rdv.close()
    mb = meta.num_bytes / 2**20
    return (f"{backend} world 1: {len(meta.buckets)} buckets, {mb:.0f} MB bf16, {min(times):.3f} s "
            f"({mb / min(times):.0f} MB/s), {reused} bucket buffer(s) for 3 syncs")


def check_sync_timeout(args) -> str:
    from capo_ray.workers.weight_sync import WeightSyncError
    from capo_ray.workers.weight_sync.group import wait_bounded

    class NeverDone:
        def is_completed(self) -> bool:
            return False

    start = time.monotonic()
    try:
        wait_bounded(NeverDone(), 0.5, "a bucket broadcast")
    except WeightSyncError:
        return f"raised WeightSyncError after {time.monotonic() - start:.2f} s"
    raise RuntimeError("a collective that never completes did not raise")


def check_vllm(args) -> str:
    try:
        import vllm
    except ImportError:
        return "SKIP vllm not installed"
    from capo_ray.workers.vllm_engine import check_vllm_version

    check_vllm_version(vllm.__version__)
    return f"vllm {vllm.__version__} is supported"


# Packages a GPU machine may lack: a check that needs one prints SKIP instead of failing.
OPTIONAL = ("transformers", "deepspeed", "vllm")

CHECKS = {"learner": check_learner, "learner_full": check_learner_full, "zero2": check_zero2, "sync": check_sync,
          "sync_timeout": check_sync_timeout, "vllm": check_vllm}  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--device", choices=["cuda", "cpu"], default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--checks", nargs="+", choices=list(CHECKS), default=None)
    p.add_argument("--hidden", type=int, default=None, help="model width (default: 2048 cuda, 128 cpu)")
    p.add_argument("--layers", type=int, default=None, help="default: 8 cuda, 2 cpu")
    p.add_argument("--vocab", type=int, default=None, help="default: 152064 cuda (Qwen2.5), 1024 cpu")
    p.add_argument("--rows", type=int, default=None, help="sequences per micro-batch (default: 2 cuda, 2 cpu)")
    p.add_argument("--length", type=int, default=None, help="tokens per sequence (default: 3072 cuda, 64 cpu)")
    p.add_argument("--chunk-tokens", type=int, default=None,
                   help="learner.logprob_chunk_tokens (default: 1024 cuda, 32 cpu so that the CPU rows chunk)")
    args = p.parse_args(argv)
    big = args.device == "cuda"
    # DeepSpeed picks its accelerator when first imported; say which, as the learner does.
    os.environ.setdefault("DS_ACCELERATOR", args.device)
    if args.checks is None:
        args.checks = list(CHECKS)
    for key, gpu, cpu in (("hidden", 2048, 128), ("layers", 8, 2), ("vocab", 152064, 1024), ("rows", 2, 2),
                          ("length", 3072, 64), ("chunk_tokens", 1024, 32)):  # fmt: skip
        if getattr(args, key) is None:
            setattr(args, key, gpu if big else cpu)
    print(f"gpu_check on {args.device}" + (f" ({torch.cuda.get_device_name(0)})" if big else "") +
          f", torch {torch.__version__}", flush=True)  # fmt: skip
    failed = 0
    for name in args.checks:
        try:
            line = CHECKS[name](args)
            status = "SKIP" if line.startswith("SKIP") else "ok"
            line = line.removeprefix("SKIP ")
        except ModuleNotFoundError as err:
            if (err.name or "").split(".")[0] not in OPTIONAL:
                status, line = "FAIL", f"ModuleNotFoundError: {err}"
                failed += 1
            else:
                status, line = "SKIP", f"needs {err.name}, which is not installed (docs/gpu.md: what to carry)"
        except Exception as err:  # noqa: BLE001 - report every check, then exit non-zero
            status, line = "FAIL", f"{type(err).__name__}: {err}"
            failed += 1
        print(f"{name:13s} {status:4s} {line}", flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
