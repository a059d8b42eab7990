"""The engine side of a weight sync: ``WeightReceiver`` (one sync on one vLLM worker) and
``WeightSyncExtension``, the class vLLM mixes into each of its workers
(``LLM(worker_extension_cls=EXTENSION)``) and calls through ``collective_rpc``. vLLM itself is
imported only inside the extension's methods, which run in vLLM's worker processes."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace

import torch

from capo_ray.workers.weight_sync.group import SyncGroup
from capo_ray.workers.weight_sync.protocol import ABORT, SyncGroupSpec, SyncMeta, WeightSyncError, dtype_of, numel_of

EXTENSION = "capo_ray.workers.weight_sync.receiver.WeightSyncExtension"


class WeightReceiver:
    """One sync on an engine worker: ``handshake``, then ``tensors()`` yields (HF name, tensor)
    as buckets arrive (for vLLM's reload_weights), ``drain`` after a local error, ``finish``."""

    def __init__(self, group: SyncGroup, meta: SyncMeta) -> None:
        self.group, self.meta = group, meta
        self.next_bucket = 0
        self.aborted = False
        self.loaded_any = False  # some tensor reached the model: a failure leaves it mixed

    def handshake(self, version: int) -> None:
        fingerprint, buckets, sent_version = self.group.small(None, 3)
        ok = (fingerprint, buckets, sent_version) == (self.meta.fingerprint, len(self.meta.buckets), version)
        if self.group.max(0 if ok else 1):
            raise WeightSyncError(
                f"sync header mismatch: sender has meta {fingerprint}/{buckets} buckets/version "
                f"{sent_version}, this engine got {self.meta.fingerprint}/{len(self.meta.buckets)}/{version}"
            )

    def _receive(self, index: int) -> torch.Tensor:
        bucket = self.meta.buckets[index]
        status, got_index, numel = self.group.small(None, 3)
        self.next_bucket = index + 1
        if status == ABORT:
            self.aborted = True
            raise WeightSyncError(f"the sender aborted the sync at bucket {got_index} (weights do not match meta)")
        if (got_index, numel) != (index, bucket.numel):
            raise WeightSyncError(f"bucket header {got_index}/{numel} != expected {index}/{bucket.numel}")
        # A fresh buffer per bucket: vLLM's layerwise reload keeps views into it until a layer
        # completes, so it cannot be refilled while the sync runs. Freed buffers return to
        # torch's caching allocator, which serves the next sync from the same memory; the
        # peak must fit beside vLLM's budget (docs/gpu.md, "Weight-sync memory").
        flat = torch.empty(bucket.numel, dtype=dtype_of(bucket.dtype), device=self.group.device)
        return self.group.broadcast(flat)

    def tensors(self) -> Iterator[tuple[str, torch.Tensor]]:
        for index, bucket in enumerate(self.meta.buckets):
            flat, offset = self._receive(index), 0
            for name, shape in zip(bucket.names, bucket.shapes):
                n = numel_of(shape)
                self.loaded_any = True
                yield name, flat[offset : offset + n].view(shape)
                offset += n

    def drain(self) -> None:
        """After a local load error keep receiving, so the sender is not left blocked (not
        after an abort, nor on a broken group: nobody is sending then)."""
        while not self.aborted and self.group.broken is None and self.next_bucket < len(self.meta.buckets):
            try:
                self._receive(self.next_bucket)
            except WeightSyncError:
                if not self.aborted and self.group.broken is None:
                    raise

    def finish(self, failed: bool) -> bool:
        """Exchange failure flags; True when every party (sender included) succeeded."""
        return self.group.max(1 if failed else 0) == 0


class WeightSyncExtension:
    """Mixed into each vLLM worker by ``LLM(worker_extension_cls=...)``; called through
    ``llm.collective_rpc``. Method names carry a ``capo_`` prefix: vLLM refuses an extension
    whose attribute names collide with the worker's own."""

    def capo_init_sync_group(self, spec: dict) -> int:
        """Join the sync group as rank ``spec['rank'] + this worker's rank``; returns the rank."""
        full = replace(SyncGroupSpec(**spec), rank=int(spec["rank"]) + int(getattr(self, "rank", 0)))
        self._capo_sync_group = SyncGroup(full)
        return full.rank

    def capo_receive_weights(self, meta: dict, version: int) -> dict:
        """Receive one sync and load it into the live model. Returns ``{"ok", "error",
        "state"}`` instead of raising, so every worker's outcome reaches the caller. ``state``
        is what the model now holds: "new" (all received weights), "old" (untouched) or
        "mixed" (a failure midway: it must not generate until the next good sync)."""
        group = getattr(self, "_capo_sync_group", None)
        if group is None:
            return {"ok": False, "error": "capo_init_sync_group was not called", "state": "old"}
        receiver = WeightReceiver(group, SyncMeta.from_dict(meta))
        try:
            receiver.handshake(version)
        except WeightSyncError as e:
            return {"ok": False, "error": str(e), "state": "old"}
        error = None
        try:
            self.reload_weights(weights_iterator=receiver.tensors())
            self._capo_refresh_tied_head()
        except Exception as e:  # noqa: BLE001 - any load error must still reach the group
            error = f"{type(e).__name__}: {e}"
            self._capo_restore_model()
            receiver.drain()
        if error is not None or receiver.aborted:
            # The sender waits for our flag, unless it aborted or the group broke (timeout).
            if not receiver.aborted and group.broken is None:
                receiver.finish(failed=True)
            return {"ok": False, "error": error, "state": "mixed" if receiver.loaded_any else "old"}
        try:
            everyone_ok = receiver.finish(failed=False)
        except WeightSyncError as e:  # e.g. the final flag exchange timed out
            return {"ok": False, "error": str(e), "state": "new"}
        if not everyone_ok:
            error = "another party failed (the sender met weights outside the meta, or another engine failed)"
            return {"ok": False, "error": error, "state": "new"}
        return {"ok": True, "error": None, "state": "new"}

    def _capo_refresh_tied_head(self) -> None:
        # With tied embeddings vLLM's load skips lm_head, so the layerwise reload never
        # re-processes it. Its weight shares storage with the reloaded embedding, but on CPU
        # the head's GEMM runs on a copy prepacked at load time: without this the engine keeps
        # sampling from the old head (measured: greedy output diverged from HF's).
        model = self.model_runner.get_model()
        head = getattr(model, "lm_head", None)
        config = self.model_runner.model_config.hf_config
        tied = getattr(config.get_text_config(), "tie_word_embeddings", False)
        if tied and head is not None and hasattr(head, "quant_method"):
            head.quant_method.process_weights_after_loading(head)

    def _capo_restore_model(self) -> None:
        # vLLM's layerwise reload moves layers to the meta device until each completes; after an
        # error, finalizing puts the old kernel tensors back into layers that received nothing.
        try:
            from vllm.model_executor.model_loader.reload.layerwise import finalize_layerwise_reload

            runner = self.model_runner
            finalize_layerwise_reload(runner.get_model(), runner.model_config)
        except Exception:  # noqa: BLE001 - best effort; the caller marks the engine not intact
            pass

    def capo_reseed(self, seed: int) -> None:
        """Seed this worker's generators before a generate call. vLLM samples from the global
        torch generator when requests carry no seed of their own, so a seed per step makes
        a step's samples independent of how many steps this engine served before (exact
        resume); per-request seeds are avoided because they crash the CPU engine."""
        import random

        random.seed(seed)
        torch.manual_seed(seed)

    def capo_close_sync_group(self) -> None:
        group = getattr(self, "_capo_sync_group", None)
        if group is not None:
            group.close()
            self._capo_sync_group = None
