"""An OpenAI-style streaming server that costs as little CPU as possible, for client benchmarks.

Every response to ``POST /v1/chat/completions`` or ``/v1/completions`` streams ``max_tokens``
one-token chunks, a finish chunk, a ``usage`` chunk when ``stream_options.include_usage`` is
set (the way OpenAI and llama.cpp send it: ``choices: []``), and ``data: [DONE]``, with HTTP/1.1
chunked framing and keep-alive. The response bytes are built once per (route, max_tokens,
usage) and reused, and the HTTP handling is a bare ``asyncio.Protocol`` on uvloop when it is
installed: per request the server parses one header block and one small JSON body and calls
``write``. It runs in its own process so that its CPU is not the client's.

Write modes (``--mode``), because how bytes arrive changes what a client pays per token:

* ``chunked`` (default): each SSE event is its own ``write`` (one TCP segment, TCP_NODELAY),
  back to back, as a server that flushes every token does. A client that keeps up reads
  a few events per ``recv``; one that falls behind reads many.
* ``burst``: the whole response in one ``write``: the client's cheapest case.
* ``tick``: one token per active stream per step, streams interleaved, the way a batching
  inference server emits one token for every sequence per decode step. A step is one
  event-loop turn, or ``--itl-ms`` milliseconds: a paced server, for measuring the client
  under a load it can sustain (timings then have a known truth: every gap is one step).

Run: ``python -m bench.fast_server [--port 0] [--mode chunked]``; it prints
``READY <port>`` on stdout once listening.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import socket
import sys
from collections.abc import Callable
from dataclasses import dataclass

try:
    import orjson

    _loads: Callable[[bytes], object] = orjson.loads
    _dumps: Callable[[object], bytes] = orjson.dumps
except ImportError:  # the benchmark still works without orjson, a little slower
    _loads = json.loads

    def _dumps(value: object) -> bytes:
        return json.dumps(value, separators=(",", ":")).encode()


MODES = ("chunked", "burst", "tick")
MAX_HEADER_BYTES = 64 * 1024
MAX_BODY_BYTES = 16 * 1024 * 1024
TOKEN_TEXT = "tok"
PROMPT_TOKENS = 64
STREAM_HEAD = (
    b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n"
    b"Cache-Control: no-cache\r\nTransfer-Encoding: chunked\r\n\r\n"
)
STREAM_HEAD_CLOSE = STREAM_HEAD.replace(b"\r\n\r\n", b"\r\nConnection: close\r\n\r\n")
LAST_CHUNK = b"0\r\n\r\n"


def _frame(event: bytes) -> bytes:
    """One SSE event as one HTTP/1.1 chunk."""
    return b"%x\r\n%s\r\n" % (len(event), event)


def _sse(obj: object) -> bytes:
    return b"data: " + _dumps(obj) + b"\n\n"


def build_events(endpoint: str, n_tokens: int, usage: bool) -> list[bytes]:
    """The SSE events of one streamed response, unframed (also used by tests of clients)."""
    base = {"id": "cmpl-bench", "created": 1_700_000_000, "model": "bench"}
    if endpoint == "chat":
        base["object"] = "chat.completion.chunk"

        def choice(delta: dict, finish: str | None) -> dict:
            return {"index": 0, "delta": delta, "finish_reason": finish}

        events = [_sse({**base, "choices": [choice({"role": "assistant", "content": ""}, None)]})]
        token = _sse({**base, "choices": [choice({"content": TOKEN_TEXT}, None)]})
        finish = _sse({**base, "choices": [choice({}, "length")]})
    else:
        base["object"] = "text_completion"
        events = []
        token = _sse({**base, "choices": [{"index": 0, "text": TOKEN_TEXT, "finish_reason": None}]})
        finish = _sse({**base, "choices": [{"index": 0, "text": "", "finish_reason": "length"}]})
    events += [token] * n_tokens + [finish]
    if usage:
        events.append(
            _sse(
                {
                    **base,
                    "choices": [],
                    "usage": {
                        "prompt_tokens": PROMPT_TOKENS,
                        "completion_tokens": n_tokens,
                        "total_tokens": PROMPT_TOKENS + n_tokens,
                    },
                }
            )
        )
    events.append(b"data: [DONE]\n\n")
    return events


@dataclass(frozen=True)
class Response:
    """One precomputed response, three ways to write it."""

    pieces: list[bytes]
    """Status line and headers, then one HTTP chunk per SSE event, then the last chunk."""
    whole: bytes
    """Everything in one piece."""
    steps: list[bytes]
    """What one decode step sends: headers and the events up to the first token, then one
    token per step, then (one step after the last token) finish, usage, [DONE], last chunk."""


class _Responses:
    """Precomputed responses per (endpoint, max_tokens, usage, connection close)."""

    def __init__(self) -> None:
        self._cache: dict[tuple[str, int, bool, bool], Response] = {}

    def get(self, endpoint: str, n_tokens: int, usage: bool, close: bool) -> Response:
        key = (endpoint, n_tokens, usage, close)
        hit = self._cache.get(key)
        if hit is None:
            head = STREAM_HEAD_CLOSE if close else STREAM_HEAD
            events = build_events(endpoint, n_tokens, usage)
            pieces = [head] + [_frame(e) for e in events] + [LAST_CHUNK]
            lead = len(events) - n_tokens - (3 if usage else 2)  # the role chunk, for chat
            steps = [b"".join(pieces[: lead + 2])] + pieces[lead + 2 : lead + 1 + n_tokens]
            steps.append(b"".join(pieces[lead + 1 + n_tokens :]))
            hit = self._cache[key] = Response(pieces, b"".join(pieces), steps)
        return hit


def _simple(status: str, body: bytes, content_type: bytes = b"application/json") -> bytes:
    return b"HTTP/1.1 %s\r\nContent-Type: %s\r\nContent-Length: %d\r\n\r\n%s" % (
        status.encode(),
        content_type,
        len(body),
        body,
    )


def _with_close(response: bytes) -> bytes:
    return response.replace(b"\r\n", b"\r\nConnection: close\r\n", 1)


MODELS = _simple(
    "200 OK",
    b'{"object":"list","data":[{"id":"bench","object":"model","owned_by":"llmtop-bench"}]}',
)
HEALTH = _simple("200 OK", b'{"status":"ok"}')
NOT_FOUND = _simple("404 Not Found", b'{"error":{"message":"no such route","code":404}}')


def _bad_request(message: str) -> bytes:
    return _simple("400 Bad Request", _dumps({"error": {"message": message, "code": 400}}))


class _Ticker:
    """``tick`` mode: writes the next step of every active stream once per step."""

    def __init__(self, loop: asyncio.AbstractEventLoop, step_s: float) -> None:
        self._loop = loop
        self._step_s = step_s
        self._active: list[list] = []  # [transport, steps, next index, close after]
        self._scheduled = False

    def add(self, transport: asyncio.Transport, steps: list[bytes], close: bool) -> None:
        self._active.append([transport, steps, 0, close])
        if not self._scheduled:
            self._scheduled = True
            self._schedule()

    def _schedule(self) -> None:
        if self._step_s:
            self._loop.call_later(self._step_s, self._tick)
        else:
            self._loop.call_soon(self._tick)

    def _tick(self) -> None:
        still = []
        for stream in self._active:
            transport, pieces, i, close = stream
            if transport.is_closing():
                continue
            transport.write(pieces[i])
            if i + 1 < len(pieces):
                stream[2] = i + 1
                still.append(stream)
            elif close:
                transport.close()
        self._active = still
        self._scheduled = bool(still)
        if still:
            self._schedule()


class StreamProtocol(asyncio.Protocol):
    """One client connection: keep-alive HTTP/1.1 requests answered in order."""

    def __init__(self, mode: str, responses: _Responses, ticker: _Ticker) -> None:
        self._mode = mode
        self._responses = responses
        self._ticker = ticker
        self._buffer = b""
        self._transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        self._buffer = self._buffer + data if self._buffer else data
        while self._transport is not None and not self._transport.is_closing():
            end = self._buffer.find(b"\r\n\r\n")
            if end < 0:
                if len(self._buffer) > MAX_HEADER_BYTES:
                    self._transport.close()
                return
            head = self._buffer[:end].lower()
            length = _content_length(head)
            if length is None or length > MAX_BODY_BYTES:
                self._reply(_simple("411 Length Required", b"{}"), True)
                return
            total = end + 4 + length
            if len(self._buffer) < total:
                return
            body = self._buffer[end + 4 : total]
            self._buffer = self._buffer[total:]
            self._handle(head, body)

    def _handle(self, head: bytes, body: bytes) -> None:
        line = head.split(b"\r\n", 1)[0].split(b" ")
        method, path = (line[0], line[1].split(b"?")[0]) if len(line) >= 2 else (b"", b"")
        close = b"connection: close" in head
        if method == b"post" and path in (b"/v1/chat/completions", b"/v1/completions"):
            self._complete(b"chat" if b"chat" in path else b"completions", body, close)
        elif method == b"get" and path == b"/v1/models":
            self._reply(MODELS, close)
        elif method == b"get" and path == b"/health":
            self._reply(HEALTH, close)
        else:
            self._reply(NOT_FOUND, close)

    def _complete(self, endpoint: bytes, body: bytes, close: bool) -> None:
        try:
            request = _loads(body)
            n_tokens = int(request.get("max_tokens") or request.get("max_completion_tokens") or 16)
            options = request.get("stream_options") or {}
            usage = bool(options.get("include_usage"))
            stream = bool(request.get("stream"))
        except (ValueError, TypeError, AttributeError) as exc:
            self._reply(_bad_request(f"invalid request body: {exc}"), close)
            return
        if not 1 <= n_tokens <= 100_000:
            self._reply(_bad_request("max_tokens must be within 1..100000"), close)
            return
        if not stream:
            self._reply(
                _bad_request("this benchmark server only streams (set stream: true)"), close
            )
            return
        response = self._responses.get(endpoint.decode(), n_tokens, usage, close)
        transport = self._transport
        assert transport is not None
        if self._mode == "tick":
            self._ticker.add(transport, response.steps, close)
            return
        if self._mode == "burst":
            transport.write(response.whole)
        else:
            for piece in response.pieces:
                transport.write(piece)
        if close:
            transport.close()

    def _reply(self, data: bytes, close: bool) -> None:
        assert self._transport is not None
        self._transport.write(_with_close(data) if close else data)
        if close:
            self._transport.close()

    def connection_lost(self, exc: Exception | None) -> None:
        self._transport = None


def _content_length(head: bytes) -> int | None:
    """Body length from a lower-cased header block; ``None`` for chunked request bodies."""
    at = head.find(b"\r\ncontent-length:")
    if at < 0:
        return None if b"transfer-encoding:" in head else 0
    end = head.find(b"\r\n", at + 2)
    try:
        return int(head[at + 17 : end if end > 0 else len(head)].strip())
    except ValueError:
        return None


def new_event_loop() -> tuple[asyncio.AbstractEventLoop, str]:
    """A uvloop loop when uvloop is installed, else asyncio's default; and its name."""
    try:
        import uvloop
    except ImportError:
        return asyncio.new_event_loop(), "asyncio"
    return uvloop.new_event_loop(), "uvloop"


async def serve(
    host: str, port: int, mode: str, itl_ms: float = 0.0, reuse_port: bool = False
) -> asyncio.Server:
    """Start listening; returns the server (its socket tells the port). ``reuse_port``: share
    the port with other server processes (the kernel spreads connections between them)."""
    loop = asyncio.get_running_loop()
    responses = _Responses()
    ticker = _Ticker(loop, itl_ms / 1000)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if reuse_port:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((host, port))
    return await loop.create_server(
        lambda: StreamProtocol(mode, responses, ticker), sock=sock, backlog=4096
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    parser.add_argument("--mode", choices=MODES, default="chunked")
    parser.add_argument(
        "--itl-ms",
        type=float,
        default=0.0,
        help="tick mode: milliseconds per decode step (0: one loop turn)",
    )
    parser.add_argument(
        "--reuse-port",
        action="store_true",
        help="share --port with other servers started the same way (bench.scale_out --servers)",
    )
    args = parser.parse_args(argv)
    if args.itl_ms and args.mode != "tick":
        parser.error("--itl-ms needs --mode tick")
    _raise_nofile()
    loop, loop_name = new_event_loop()
    asyncio.set_event_loop(loop)
    server = loop.run_until_complete(
        serve(args.host, args.port, args.mode, args.itl_ms, args.reuse_port)
    )
    port = server.sockets[0].getsockname()[1]
    print(f"READY {port} {loop_name} {args.mode}", flush=True)
    try:
        loop.run_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.close()
        loop.close()


def _raise_nofile() -> None:
    """Thousands of client connections need thousands of descriptors here too."""
    try:
        import resource

        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        if soft < hard:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    except (ImportError, ValueError, OSError) as exc:
        print(f"fast_server: could not raise RLIMIT_NOFILE: {exc}", file=sys.stderr)


if __name__ == "__main__":
    main()
