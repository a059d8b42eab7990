"""A fault-injecting HTTP proxy for rehearsing a remote judge's failures before a long run.

Put it between the trainer and a judge (``vllm serve``, any OpenAI-compatible server) and
queue the faults the next requests meet; every other request passes through unchanged:

    python -m capo_ray.critics.fault_proxy --upstream http://127.0.0.1:8000 --port 9000 \
        --faults 429,500,garbage,hang,drop
    python -m capo_ray.train critic=openai critic.openai.base_url=http://127.0.0.1:9000/v1

Faults: ``429`` (with ``Retry-After``), ``500``, ``garbage`` (200 with a JSON content type
and a body that is not JSON), ``empty`` (200, no choices), ``hang`` (never answers),
``drop`` (headers and half a body, then the connection is closed), ``pass``. With no
upstream it answers every passed request itself with a fixed critique (a stand-in judge for
dry runs and tests), honouring ``n`` unless ``reject_n`` is set.

Binds 127.0.0.1 only. Used by tests/critics and tests/e2e to show each fault abstains and is
counted under its cause.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import threading
import time
from collections import Counter, deque
from collections.abc import Iterable

from aiohttp import ClientSession, ClientTimeout, web

FAULTS = ("pass", "429", "500", "garbage", "empty", "hang", "drop")


class FaultProxy:
    def __init__(
        self,
        upstream: str | None = None,
        faults: Iterable[str] = (),
        retry_after_s: float = 1.0,
        answer: str = "Step 1: correct.\nWrong step list: []",
        reject_n: bool = False,
        port: int = 0,
    ) -> None:
        self.upstream = upstream.rstrip("/") if upstream else None
        self.retry_after_s, self.answer, self.reject_n, self.port = retry_after_s, answer, reject_n, port
        self._faults: deque[str] = deque()
        self.queue(*faults)
        self.seen: Counter[str] = Counter()  # requests met per fault
        self.n_asked: list[int] = []  # the n of every chat request received
        self._loop = asyncio.new_event_loop()
        self._thread: threading.Thread | None = None
        self._runner: web.AppRunner | None = None
        self._session: ClientSession | None = None

    # -- control (any thread) ---------------------------------------------------------------
    def queue(self, *faults: str) -> None:
        for fault in faults:
            if fault not in FAULTS:
                raise ValueError(f"unknown fault {fault!r}; valid: {list(FAULTS)}")
            self._faults.append(fault)

    def clear(self) -> None:
        self._faults.clear()
        self.seen.clear()
        self.n_asked.clear()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> "FaultProxy":
        ready = threading.Event()
        self._thread = threading.Thread(target=self._serve, args=(ready,), name="fault-proxy", daemon=True)
        self._thread.start()
        if not ready.wait(30):
            raise RuntimeError("fault proxy did not start")
        return self

    def stop(self) -> None:
        if self._thread is None:
            return
        asyncio.run_coroutine_threadsafe(self._shutdown(), self._loop).result(timeout=30)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=30)
        self._thread = None

    # -- on the proxy's loop ----------------------------------------------------------------
    def _serve(self, ready: threading.Event) -> None:
        asyncio.set_event_loop(self._loop)

        async def boot() -> None:
            app = web.Application()
            app.router.add_route("*", "/{tail:.*}", self._handle)
            self._runner = web.AppRunner(app, shutdown_timeout=1)
            await self._runner.setup()
            site = web.TCPSite(self._runner, "127.0.0.1", self.port)
            await site.start()
            self.port = site._server.sockets[0].getsockname()[1]  # the port 0 picked
            self._session = ClientSession(timeout=ClientTimeout(total=None))

        self._loop.run_until_complete(boot())
        ready.set()
        self._loop.run_forever()

    async def _shutdown(self) -> None:
        if self._session is not None:
            await self._session.close()
        if self._runner is not None:
            await self._runner.cleanup()
        # Handlers still hanging (fault "hang") end here, not as "destroyed but pending".
        others = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
        for task in others:
            task.cancel()
        await asyncio.gather(*others, return_exceptions=True)

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        body = await request.read()
        fault = self._faults.popleft() if self._faults else "pass"
        self.seen[fault] += 1
        if request.path.endswith("/chat/completions"):
            try:
                self.n_asked.append(int(json.loads(body).get("n") or 1))
            except (ValueError, AttributeError):
                self.n_asked.append(1)
        if fault == "429":
            return web.json_response({"error": {"message": "rate limited"}}, status=429,
                                     headers={"Retry-After": f"{self.retry_after_s:g}"})  # fmt: skip
        if fault == "500":
            return web.json_response({"error": {"message": "injected server error"}}, status=500)
        if fault == "garbage":
            return web.Response(body=b'{"id": "x", "choices": [{"mess', content_type="application/json")
        if fault == "empty":
            return web.json_response({"id": "x", "object": "chat.completion", "created": 0, "model": "m", "choices": []})
        if fault == "hang":
            await asyncio.sleep(3600)  # cancelled when the client gives up or the proxy stops
        if fault == "drop":
            return await self._drop(request)
        if self.upstream is None:
            return self._stand_in(body)
        return await self._forward(request, body)

    async def _drop(self, request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(status=200, headers={"Content-Type": "application/json", "Content-Length": "400"})
        await response.prepare(request)
        await response.write(b'{"id": "x", "object": "chat.completion", "choices": [')
        await asyncio.sleep(0.05)
        request.transport.close()  # mid-body: the client sees a connection closed early
        return response

    def _stand_in(self, body: bytes) -> web.Response:
        request = json.loads(body or b"{}")
        n = int(request.get("n") or 1)
        if self.reject_n and n > 1:
            return web.json_response({"error": {"message": "n > 1 is not supported"}}, status=400)
        choices = [{"index": i, "message": {"role": "assistant", "content": self.answer}, "finish_reason": "stop"}
                   for i in range(n)]  # fmt: skip
        return web.json_response({
            "id": "stand-in", "object": "chat.completion", "created": int(time.time()),
            "model": request.get("model", "stand-in"), "choices": choices,
            "usage": {"prompt_tokens": 10, "completion_tokens": 5 * n, "total_tokens": 10 + 5 * n},
        })  # fmt: skip

    async def _forward(self, request: web.Request, body: bytes) -> web.Response:
        headers = {k: v for k, v in request.headers.items() if k.lower() not in ("host", "content-length")}
        async with self._session.request(request.method, self.upstream + request.path_qs, data=body,
                                         headers=headers) as upstream:  # fmt: skip
            payload = await upstream.read()
            return web.Response(body=payload, status=upstream.status,
                                content_type=upstream.content_type)  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--upstream", default=None, help="the judge server (default: answer as a stand-in judge)")
    parser.add_argument("--port", type=int, default=9000)
    parser.add_argument("--faults", default="", help=f"comma-separated, in order; from {list(FAULTS)}")
    parser.add_argument("--retry-after", type=float, default=1.0)
    args = parser.parse_args()
    proxy = FaultProxy(args.upstream, [f for f in args.faults.split(",") if f], args.retry_after, port=args.port).start()
    print(f"fault proxy on {proxy.url} -> {args.upstream or 'stand-in judge'}", flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        proxy.stop()


if __name__ == "__main__":
    main()
