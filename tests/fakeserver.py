"""A controllable OpenAI-compatible streaming server on 127.0.0.1, for tests and benchmarks.

It streams ``max_tokens`` one-token chunks with known delays (``ttft_s`` before the first,
``itl_s`` between the others), so the engine's measured TTFT/TPOT/ITL can be checked against
known values. Behaviours reproduce real servers' quirks: usage in a final chunk with empty
``choices``, rejection of ``stream_options``, closing the connection after every stream while
advertising keep-alive (llama-server), HTTP errors with JSON or HTML bodies, an error object
mid-stream, and a dropped connection mid-stream.
"""

from __future__ import annotations

import asyncio
import json
import socket
import threading
from dataclasses import dataclass, field

from aiohttp import web


@dataclass
class Behaviour:
    """How the fake server answers. Mutable between requests from the test thread."""

    ttft_s: float = 0.0
    itl_s: float = 0.0
    status: int = 200
    error_body: bytes = b'{"error": {"message": "overloaded", "code": 503}}'
    error_content_type: str = "application/json"
    reject_stream_options: bool = False
    close_after_stream: bool = False
    drop_after_tokens: int | None = None
    error_after_tokens: int | None = None
    send_done: bool = True
    usage: bool = True
    timings: bool = False
    batch_all: bool = False
    token_text: str = "tok "
    requests: list[dict] = field(default_factory=list)


def _chunk(endpoint: str, text: str | None, finish: str | None = None) -> bytes:
    if endpoint == "chat":
        delta = {} if text is None else {"content": text}
        choice = {"index": 0, "delta": delta, "finish_reason": finish}
    else:
        choice = {"index": 0, "text": text or "", "finish_reason": finish}
    return b"data: " + json.dumps({"id": "x", "object": "chunk", "choices": [choice]}).encode() + b"\n\n"


class FakeServer:
    """Runs the app on its own thread and event loop; ``url`` is its base URL."""

    def __init__(self, behaviour: Behaviour | None = None) -> None:
        self.behaviour = behaviour or Behaviour()
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._ready = threading.Event()
        self._runner: web.AppRunner | None = None

    def __enter__(self) -> FakeServer:
        self._thread.start()
        if not self._ready.wait(10):
            raise RuntimeError("fake server did not start")
        return self

    def __exit__(self, *exc: object) -> None:
        asyncio.run_coroutine_threadsafe(self._shutdown(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)

    def _serve(self) -> None:
        asyncio.set_event_loop(self._loop)
        app = web.Application()
        app.router.add_post("/v1/chat/completions", self._complete)
        app.router.add_post("/v1/completions", self._complete)
        app.router.add_get("/v1/models", self._models)
        app.router.add_get("/health", self._health)
        self._runner = web.AppRunner(app, access_log=None)
        self._loop.run_until_complete(self._runner.setup())
        site = web.TCPSite(self._runner, "127.0.0.1", self.port, backlog=4096)
        self._loop.run_until_complete(site.start())
        self._ready.set()
        self._loop.run_forever()

    async def _shutdown(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    async def _models(self, _request: web.Request) -> web.Response:
        return web.json_response({"object": "list", "data": [
            {"id": "fake-model", "object": "model", "owned_by": "llmtop-tests"}]})

    async def _health(self, _request: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    async def _complete(self, request: web.Request) -> web.StreamResponse:
        b = self.behaviour
        body = await request.json()
        b.requests.append(body)
        if b.reject_stream_options and "stream_options" in body:
            return web.json_response(
                {"error": {"message": "Unrecognized request argument: stream_options"}}, status=400)
        if b.status != 200:
            return web.Response(status=b.status, body=b.error_body,
                                content_type=b.error_content_type.split(";")[0])
        endpoint = "chat" if request.path.endswith("chat/completions") else "completions"
        n = int(body.get("max_tokens", 16))
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        if b.close_after_stream:
            response.force_close()
        await response.prepare(request)
        if endpoint == "chat":
            await response.write(b'data: {"id":"x","choices":[{"index":0,"delta":{"role":"assistant"},"finish_reason":null}]}\n\n')
        parts: list[bytes] = []
        for i in range(n):
            delay = b.ttft_s if i == 0 else b.itl_s
            if delay and not b.batch_all:
                await asyncio.sleep(delay)
            if b.drop_after_tokens is not None and i >= b.drop_after_tokens:
                request.transport.close()
                return response
            if b.error_after_tokens is not None and i >= b.error_after_tokens:
                await response.write(b'data: {"error": {"message": "boom", "code": 500}}\n\n')
                return response
            chunk = _chunk(endpoint, b.token_text)
            if b.batch_all:
                parts.append(chunk)
            else:
                await response.write(chunk)
        tail = [_chunk(endpoint, None if endpoint == "chat" else "", "length")]
        if b.usage or b.timings:
            extra: dict = {"id": "x", "choices": []}
            if b.usage and "stream_options" in body:
                extra["usage"] = {"prompt_tokens": 7, "completion_tokens": n, "total_tokens": n + 7}
            if b.timings:
                extra["timings"] = {"prompt_n": 7, "prompt_ms": 1.0, "predicted_n": n,
                                    "predicted_ms": 2.0, "predicted_per_second": 500.0}
            if len(extra) > 2:
                tail.append(b"data: " + json.dumps(extra).encode() + b"\n\n")
        if b.send_done:
            tail.append(b"data: [DONE]\n\n")
        await response.write(b"".join(parts + tail))
        await response.write_eof()
        return response


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
