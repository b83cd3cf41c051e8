"""A controllable OpenAI-compatible streaming server on 127.0.0.1, for tests and benchmarks.

It streams ``max_tokens`` one-token chunks with known delays (``ttft_s`` before the first,
``itl_s`` between the others), so the engine's measured TTFT/TPOT/ITL can be checked against
known values. Behaviours reproduce real servers' quirks: usage in a final chunk with empty
``choices``, rejection of ``stream_options``, closing the connection after every stream while
advertising keep-alive (llama-server), HTTP errors with JSON or HTML bodies, an error object
mid-stream, a dropped connection mid-stream, and stalls (before the headers or mid-stream).
Hostile ones too: an ``event: error`` mid-stream, a 20 MB SSE line, redirects, answers
compressed although the client asked for none, malformed HTTP written straight to the socket,
and keep-alive answers to a client that asked for ``Connection: close``. Lies and limits for
the validity and saturation rules: usage that claims another token count or cache hits, and a
capacity (at most N requests generate at once, the rest wait) shown on a vLLM-style
``/metrics``.

``Behaviour.per_request`` varies the answer by request number (1-based, in arrival order): it
returns field overrides for that request, e.g. ``lambda n: {"status": 500} if n % 3 == 0 else {}``.
Every request body is appended to ``Behaviour.requests`` and its headers to ``Behaviour.headers``.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import socket
import threading
import zlib
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web


@dataclass
class Behaviour:
    """How the fake server answers. Mutable between requests from the test thread."""

    ttft_s: float = 0.0
    itl_s: float = 0.0
    status: int = 200
    error_body: bytes = b'{"error": {"message": "overloaded", "code": 503}}'
    error_content_type: str = "application/json"
    location: str | None = None
    """``Location`` header sent with a non-200 ``status`` (a redirect)."""
    content_encoding: str | None = None
    """Compress every answer with this ``Content-Encoding`` whatever the request's
    ``Accept-Encoding`` says, as a misconfigured proxy would: ``gzip`` and ``deflate`` really
    compress (each write flushed, so the stream still streams); any other name is only a label
    on plain bytes."""
    reject_stream_options: bool = False
    reject_fields: tuple[str, ...] = ()
    """Answer 400 naming the first of these body fields that the request carries."""
    close_after_stream: bool = False
    """Like llama-server: a connection that served a stream is closed while the response still
    advertised keep-alive (no ``Connection: close`` header). On the real server the FIN races
    the client's next request on that pooled connection; here the race is always lost, so tests
    are deterministic: the next request on that connection gets the connection closed without
    a response byte (counted in ``stale_closes``, not in ``requests``)."""
    ignore_connection_close: bool = False
    """Answer ``Connection: keep-alive`` even to a request that asked ``Connection: close``, and
    keep that connection open for the next request (with ``close_after_stream``, a server that
    says keep-alive, closes anyway, and ignores the client's wish for a fresh connection)."""
    headers_delay_s: float = 0.0
    """Wait this long before sending the response headers (a server that accepts and stalls)."""
    stall_after_tokens: int | None = None
    """Go silent for ``stall_s`` after this many tokens."""
    stall_s: float = 0.0
    drop_after_tokens: int | None = None
    error_after_tokens: int | None = None
    in_stream_error: bytes = b'{"error": {"message": "boom", "code": 500}}'
    """The event sent after ``error_after_tokens`` tokens."""
    in_stream_error_event: str | None = None
    """The SSE ``event:`` field sent with ``in_stream_error`` (e.g. ``"error"``)."""
    long_line_bytes: int | None = None
    """After the first token, send one chunk whose content is this many bytes long, as one
    SSE line written 1 MiB at a time, then carry on."""
    output_tokens: int | None = None
    """Tokens to generate (default ``max_tokens``); fewer end with ``finish_reason: stop``."""
    send_finish: bool = True
    """Send the chunk carrying ``finish_reason`` (off: the stream just ends)."""
    send_done: bool = True
    raw_response: bytes | None = None
    """Write these bytes to the socket instead of an HTTP response, then close it (malformed
    status lines, headers or chunking)."""
    plain_json: bool = False
    """Ignore ``stream: true`` and answer one JSON completion (not an SSE stream)."""
    usage: bool = True
    timings: bool = False
    batch_all: bool = False
    token_text: str = "tok "
    thinks: bool = False
    """Chat answers start with reasoning_content deltas (the first half of the tokens) unless
    the request says ``chat_template_kwargs: {"enable_thinking": false}``."""
    prompt_tokens_rule: tuple[float, int] | None = None
    """``(tokens_per_word, overhead)``: report usage.prompt_tokens as a tokenizer would;
    ``None`` reports 7 whatever the prompt."""
    usage_claims_tokens: int | None = None
    """Report this completion count in ``usage`` whatever was sent (a server that lies)."""
    cached_tokens: int | None = None
    """Report this many prompt tokens as served from the cache (``prompt_tokens_details``)."""
    capacity: int | None = None
    """At most this many requests generate at once (set before the first request); the
    others wait after their headers, counted as waiting on ``/metrics``."""
    metrics: bool = False
    """Answer ``GET /metrics`` with vLLM's running and waiting gauges (else 404)."""
    per_request: Callable[[int], dict[str, Any]] | None = None
    """Overrides of the fields above for request number ``n`` (1-based)."""
    requests: list[dict] = field(default_factory=list)
    headers: list[dict[str, str]] = field(default_factory=list)
    stale_closes: int = 0


def _reasoning_chunk(text: str) -> bytes:
    event = {
        "id": "x",
        "object": "chunk",
        "choices": [{"index": 0, "delta": {"reasoning_content": text}, "finish_reason": None}],
    }
    return b"data: " + json.dumps(event).encode() + b"\n\n"


def _chunk(endpoint: str, text: str | None, finish: str | None = None) -> bytes:
    if endpoint == "chat":
        delta = {} if text is None else {"content": text}
        choice = {"index": 0, "delta": delta, "finish_reason": finish}
    else:
        choice = {"index": 0, "text": text or "", "finish_reason": finish}
    event = {"id": "x", "object": "chunk", "choices": [choice]}
    return b"data: " + json.dumps(event).encode() + b"\n\n"


class FakeServer:
    """Runs the app on its own thread and event loop; ``url`` is its base URL."""

    def __init__(self, behaviour: Behaviour | None = None, port: int | None = None) -> None:
        self.behaviour = behaviour or Behaviour()
        self.port = port or _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._ready = threading.Event()
        self._runner: web.AppRunner | None = None
        self._slots: asyncio.Semaphore | None = None
        self.running = self.waiting = 0

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
        app.router.add_get("/metrics", self._metrics)
        self.add_routes(app)
        # Handlers are cancelled when their client goes away (an interrupted or timed-out
        # request must not keep the server busy), and shutdown never waits long for them.
        self._runner = web.AppRunner(
            app, access_log=None, handler_cancellation=True, shutdown_timeout=1.0
        )
        self._loop.run_until_complete(self._runner.setup())
        site = web.TCPSite(self._runner, "127.0.0.1", self.port, backlog=4096)
        self._loop.run_until_complete(site.start())
        self._ready.set()
        self._loop.run_forever()

    async def _shutdown(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    def add_routes(self, app: web.Application) -> None:
        """Hook for subclasses that imitate a particular server's extra endpoints."""

    async def _models(self, _request: web.Request) -> web.Response:
        return web.json_response(
            {
                "object": "list",
                "data": [{"id": "fake-model", "object": "model", "owned_by": "llmtop-tests"}],
            }
        )

    async def _health(self, _request: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    async def _metrics(self, _request: web.Request) -> web.Response:
        if not self.behaviour.metrics:
            return web.Response(status=404)
        text = (
            "# TYPE vllm:num_requests_running gauge\n"
            f"vllm:num_requests_running {self.running}\n"
            "# TYPE vllm:num_requests_waiting gauge\n"
            f"vllm:num_requests_waiting {self.waiting}\n"
        )
        return web.Response(text=text, content_type="text/plain")

    @contextlib.asynccontextmanager
    async def _slot(self, b: Behaviour) -> AsyncIterator[None]:
        """Hold a generation slot when the server has a capacity (waiting for one counts)."""
        if b.capacity is None:
            yield
            return
        if self._slots is None:
            self._slots = asyncio.Semaphore(b.capacity)
        self.waiting += 1
        try:
            await self._slots.acquire()
        finally:
            self.waiting -= 1
        self.running += 1
        try:
            yield
        finally:
            self.running -= 1
            self._slots.release()

    async def _complete(self, request: web.Request) -> web.StreamResponse:
        b = self.behaviour
        body = await request.json()
        b.requests.append(body)
        b.headers.append(dict(request.headers))
        if b.per_request is not None:
            overrides = b.per_request(len(b.requests))
            if overrides:
                b = dataclasses.replace(b, **overrides)
        if b.headers_delay_s:
            await asyncio.sleep(b.headers_delay_s)
        if b.raw_response is not None:
            request.transport.write(b.raw_response)
            request.transport.close()
            return web.Response(status=500)  # never reaches the client: the socket is closed
        if b.reject_stream_options and "stream_options" in body:
            return web.json_response(
                {"error": {"message": "Unrecognized request argument: stream_options"}}, status=400
            )
        rejected = next((f for f in b.reject_fields if f in body), None)
        if rejected is not None:
            return web.json_response(
                {
                    "error": {
                        "message": f"Unrecognized request argument supplied: {rejected}",
                        "type": "invalid_request_error",
                    }
                },
                status=400,
            )
        if b.status != 200:
            headers = {"Location": b.location} if b.location else {}
            if b.content_encoding:
                headers["Content-Encoding"] = b.content_encoding
            return web.Response(
                status=b.status,
                body=_compressed(b.error_body, b.content_encoding),
                content_type=b.error_content_type.split(";")[0],
                headers=headers,
            )
        endpoint = "chat" if request.path.endswith("chat/completions") else "completions"
        if b.plain_json:
            return web.json_response(
                {
                    "id": "x",
                    "object": "chat.completion",
                    "choices": [
                        {
                            "index": 0,
                            "message": {"role": "assistant", "content": "hi"},
                            "finish_reason": "stop",
                        }
                    ],
                    "usage": {"prompt_tokens": 7, "completion_tokens": 1},
                }
            )
        max_tokens = int(body.get("max_tokens", 16))
        n = max_tokens if b.output_tokens is None else min(b.output_tokens, max_tokens)
        headers = {"Content-Type": "text/event-stream"}
        if b.content_encoding:
            headers["Content-Encoding"] = b.content_encoding
        response = web.StreamResponse(headers=headers)
        if b.ignore_connection_close:
            # aiohttp has no public switch for this: a response's keep-alive follows the
            # request's Connection header unless set before prepare().
            response._keep_alive = True
        await response.prepare(request)
        encode = _Encoder(b.content_encoding)

        async def write(data: bytes) -> None:
            await response.write(encode(data))

        if endpoint == "chat":
            await write(
                b'data: {"id":"x","choices":[{"index":0,"delta":'
                b'{"role":"assistant"},"finish_reason":null}]}\n\n'
            )
        async with self._slot(b):
            parts: list[bytes] = []
            for i in range(n):
                delay = b.ttft_s if i == 0 else b.itl_s
                if delay and not b.batch_all:
                    await asyncio.sleep(delay)
                if b.stall_after_tokens is not None and i == b.stall_after_tokens:
                    await asyncio.sleep(b.stall_s)
                if b.drop_after_tokens is not None and i >= b.drop_after_tokens:
                    request.transport.close()
                    return response
                if b.error_after_tokens is not None and i >= b.error_after_tokens:
                    field = f"event: {b.in_stream_error_event}\n" if b.in_stream_error_event else ""
                    await write(field.encode() + b"data: " + b.in_stream_error + b"\n\n")
                    return response
                thinking = (
                    b.thinks
                    and (body.get("chat_template_kwargs") or {}).get("enable_thinking", True)
                    and i < n // 2
                )
                chunk = (
                    _reasoning_chunk(b.token_text) if thinking else _chunk(endpoint, b.token_text)
                )
                if b.batch_all:
                    parts.append(chunk)
                else:
                    await write(chunk)
                if i == 0 and b.long_line_bytes:
                    await _write_long_line(write, b.long_line_bytes)
            finish = "length" if n == max_tokens else "stop"
            tail = [_chunk(endpoint, None if endpoint == "chat" else "", finish)]
            if not b.send_finish:
                tail = []
            if b.usage or b.timings:
                extra: dict = {"id": "x", "choices": []}
                if b.usage and "stream_options" in body:
                    prompt = _prompt_tokens(body, b.prompt_tokens_rule)
                    claimed = n if b.usage_claims_tokens is None else b.usage_claims_tokens
                    extra["usage"] = {
                        "prompt_tokens": prompt,
                        "completion_tokens": claimed,
                        "total_tokens": claimed + prompt,
                    }
                    if b.cached_tokens is not None:
                        details = {"cached_tokens": b.cached_tokens}
                        extra["usage"]["prompt_tokens_details"] = details
                if b.timings:
                    extra["timings"] = {
                        "prompt_n": 7,
                        "prompt_ms": 1.0,
                        "predicted_n": n,
                        "predicted_ms": 2.0,
                        "predicted_per_second": 500.0,
                    }
                if len(extra) > 2:
                    tail.append(b"data: " + json.dumps(extra).encode() + b"\n\n")
            if b.send_done:
                tail.append(b"data: [DONE]\n\n")
            await response.write(encode(b"".join(parts + tail), last=True))
            await response.write_eof()
            if b.close_after_stream and request.transport is not None:
                # From now on the connection belongs to a protocol that closes it on the next
                # request's first byte, before aiohttp's parser sees it (the parser would answer a
                # request after "Connection: close" with its own 400).
                closer = _ClosesOnNextRequest(self.behaviour, request.transport)
                request.transport.set_protocol(closer)
            return response


Write = Callable[[bytes], Awaitable[None]]


class _ClosesOnNextRequest(asyncio.Protocol):
    """A served keep-alive connection that the server has in fact given up on."""

    def __init__(self, behaviour: Behaviour, transport: asyncio.BaseTransport) -> None:
        self.behaviour, self.transport = behaviour, transport

    def data_received(self, data: bytes) -> None:
        self.behaviour.stale_closes += 1
        self.transport.close()


class _Encoder:
    """Compresses writes for a ``Content-Encoding``: each one flushed so that what was written
    can be read at once, the last one closing the compressed stream. Other encodings pass."""

    def __init__(self, encoding: str | None) -> None:
        packs = encoding in ("gzip", "deflate")
        self._packer = zlib.compressobj(wbits=31 if encoding == "gzip" else 15) if packs else None

    def __call__(self, data: bytes, *, last: bool = False) -> bytes:
        if self._packer is None:
            return data
        return self._packer.compress(data) + self._packer.flush(
            zlib.Z_FINISH if last else zlib.Z_SYNC_FLUSH
        )


def _compressed(data: bytes, encoding: str | None) -> bytes:
    return _Encoder(encoding)(data, last=True)


async def _write_long_line(write: Write, size: int) -> None:
    head, tail = b'data: {"choices":[{"index":0,"delta":{"content":"', b'"}}]}\n\n'
    await write(head)
    step = 2**20
    for start in range(0, size, step):
        await write(b"x" * min(step, size - start))
    await write(tail)


def _prompt_tokens(body: dict, rule: tuple[float, int] | None) -> int:
    if rule is None:
        return 7
    text = body.get("prompt") or " ".join(
        str(m.get("content", "")) for m in body.get("messages", [])
    )
    per_word, overhead = rule
    return round(len(str(text).split()) * per_word) + overhead


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main(argv: list[str] | None = None) -> None:
    """Serve in the foreground until killed: ``python -m tests.support.fakeserver --port N``.

    A server in a process of its own, for tests that kill it (``kill -9``) and start it again
    on the same port, or hand it to ``--server-cmd``.
    """
    import argparse
    import time

    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--ttft", type=float, default=0.0, help="seconds before the first token")
    parser.add_argument("--itl", type=float, default=0.0, help="seconds between tokens")
    parser.add_argument("--status", type=int, default=200, help="answer every request with it")
    parser.add_argument("--error-body", default=None, help="the body of a non-200 answer")
    args = parser.parse_args(argv)
    behaviour = Behaviour(ttft_s=args.ttft, itl_s=args.itl, status=args.status)
    if args.error_body is not None:
        behaviour.error_body = args.error_body.encode()
    with FakeServer(behaviour, port=args.port) as server:
        print(f"serving on {server.url}", flush=True)
        while True:
            time.sleep(3600)


if __name__ == "__main__":
    main()
