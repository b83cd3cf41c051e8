"""Streaming HTTP client for OpenAI-compatible chat and completions endpoints, on aiohttp.

The client talks to ``aiohttp.ClientSession`` directly. httpx's own transport caps out near
13k streamed tokens/s on two cores (../shared/MEASURED.md); its API over an aiohttp transport
(``httpx-aiohttp``) still cost ~200 us per request and three async-generator layers per read
(a py-spy profile of one process at 64 flat-out streams: 31 % of its time in
``httpx.AsyncClient.stream``, of which aiohttp's own request was 13 %; cookies, URL merging
and header copies the rest; bench/RESULTS.md, "One process against the raw client"). The
rest of llmtop keeps httpx for its few plain requests (detection, /metrics, health probes),
where that cost does not matter.

Timing-relevant choices:

* The connection pool holds as many connections as requests may be in flight, so no request
  waits inside the client. The wait is measured anyway with aiohttp's tracing hooks
  (``client_queue_wait_s``).
* No overall timeout: a long generation is never cut. A dead server is caught by the connect
  timeout, by connection errors, and by the stall timeout (longest silence between two reads).
* Each read takes everything the connection has buffered (``readany``) and stamps it once:
  bytes that arrived together were seen together, and a stream never waits on its own
  backlog. Parsing yields to the loop every ``YIELD_EVERY_EVENTS`` events, so 256 streams
  each holding a whole response cannot make everyone else's timestamps late.
* A request that fails before any response byte on a *reused* keep-alive connection is sent
  once more on a fresh one: llama-server closes the connection after every stream while
  advertising keep-alive, so the next request on it would otherwise fail spuriously. From then
  on every request goes through a second session whose connector closes each connection after
  its response: a ``Connection: close`` header alone still left the connection pooled whenever
  the server answered ``keep-alive`` to it, and each later request was re-sent once more.
* Answers are asked for uncompressed (``Accept-Encoding: identity``); one compressed anyway is
  inflated read by read (``engine.http.encoding`` says why and how). Redirects are not
  followed, cookies are not kept: llmtop measures the URL it was given.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextvars import ContextVar
from dataclasses import dataclass
from time import perf_counter_ns
from typing import Any

import aiohttp
import orjson
from yarl import URL

from engine.http.auth import auth_headers
from engine.http.encoding import inflated, inflater_for
from engine.http.exchange import Exchange
from engine.http.failures import (
    StreamError,
    cause_chain,
    classify_exception,
    error_event,
    error_message_from_body,
    redirect_message,
)
from engine.http.sse import LineTooLong, SseDecoder
from engine.records import ErrorKind

MAX_ERROR_BODY_BYTES = 64 * 1024
YIELD_EVERY_EVENTS = 4
"""While parsing one network read, let other streams run after this many events: a read can
hold a whole response, and 256 streams parsing whole responses back to back made the loop
~200 ms late stamping everyone else's chunks (bench/RESULTS.md)."""
_PATHS = {"chat": "/v1/chat/completions", "completions": "/v1/completions"}
MAX_STALE_RETRIES = 2
"""Re-sends after a reused connection turned out closed (the retry may get another one)."""
MAX_RETRIES = 5
"""All re-sends of one request: stale connections plus the three optional fields."""
EXACT_OUTPUT_FIELDS = ("ignore_eos", "min_tokens")
"""Body fields that ask a server for exactly ``max_tokens`` tokens."""
_current: ContextVar[Exchange | None] = ContextVar("llmtop_exchange", default=None)
_STALE, _FIELD = "stale connection", "rejected field"
_HEADERS = {
    "content-type": "application/json",
    "accept": "text/event-stream",
    # aiohttp asks for "gzip, deflate" by default: a compressing proxy could then buffer tokens.
    "accept-encoding": "identity",
}
_CLOSE_HEADERS = {**_HEADERS, "connection": "close"}


@dataclass
class ServerQuirks:
    """What the run has learned about the server's tolerance of optional request fields.

    Shared by all requests of a run: once a server rejects a field, later requests omit it.
    """

    stream_usage: bool = True
    """Send ``stream_options: {"include_usage": true}`` (dropped if the server rejects it)."""
    close_connections: bool = False
    """Open a fresh connection per request, closed after its response. Switched on the first
    time a reused keep-alive connection turns out to have been closed by the server."""
    exact_output_fields: tuple[str, ...] = EXACT_OUTPUT_FIELDS
    """Fields sent to ask for exactly ``max_tokens`` tokens; rejected ones are dropped."""


@dataclass(frozen=True)
class RequestSpec:
    """What to send: the route and the body fields that are not streaming plumbing."""

    endpoint: str
    """``chat`` (``/v1/chat/completions``) or ``completions`` (``/v1/completions``)."""
    body: dict[str, Any]
    """Model, messages or prompt, max_tokens, sampling and extra fields."""
    exact_output: bool = False
    """Ask the server for exactly ``max_tokens`` tokens."""


class StreamingClient:
    """Sends streamed requests and fills an ``Exchange`` per request. Never raises for a failed
    request: failures are recorded on the exchange (cancellation still propagates).
    """

    def __init__(
        self,
        base_url: str,
        *,
        max_connections: int,
        api_key: str | None = None,
        basic_auth: str | None = None,
        connect_timeout_s: float = 10.0,
        stall_timeout_s: float = 300.0,
        quirks: ServerQuirks | None = None,
        on_notice: Callable[[str], None] | None = None,
    ) -> None:
        self.quirks = quirks or ServerQuirks()
        self._on_notice = on_notice or (lambda _msg: None)
        headers = auth_headers(api_key, basic_auth)
        self._session_args = (max_connections, headers)
        # No per-read timeout: aiohttp re-arms that timer on every network read, ~10 % of the
        # client's CPU per token. One watchdog task enforces the stall timeout instead. The
        # pool never makes a request wait (it holds every in-flight request), so only the
        # socket connect is timed.
        self._timeout = aiohttp.ClientTimeout(total=None, sock_connect=connect_timeout_s)
        self._stall_ns = int(stall_timeout_s * 1e9)
        self._active: dict[asyncio.Task[Any], Exchange] = {}
        self._watchdog: asyncio.Task[None] | None = None
        base = base_url.rstrip("/")
        self._urls = {endpoint: URL(base + path) for endpoint, path in _PATHS.items()}
        self._pooled: aiohttp.ClientSession | None = None
        self._fresh: aiohttp.ClientSession | None = None
        """Opens a connection per request; made when ``quirks.close_connections`` first
        applies, and used for every request from then on."""

    async def __aenter__(self) -> StreamingClient:
        self._pooled = self._make_http(force_close=False)
        self._watchdog = asyncio.create_task(self._watch())
        return self

    def _make_http(self, *, force_close: bool) -> aiohttp.ClientSession:
        max_connections, headers = self._session_args
        connector = aiohttp.TCPConnector(
            limit=max_connections,
            limit_per_host=max_connections,
            ttl_dns_cache=300,
            force_close=force_close,
        )
        return aiohttp.ClientSession(
            connector=connector,
            headers=headers,
            timeout=self._timeout,
            trace_configs=[_trace_config()],
            auto_decompress=False,
            cookie_jar=aiohttp.DummyCookieJar(),
        )

    def _http_for_next_request(self) -> tuple[aiohttp.ClientSession, dict[str, str]]:
        """The client and headers for a request sent now."""
        assert self._pooled is not None, "use StreamingClient as an async context manager"
        if not self.quirks.close_connections:
            return self._pooled, _HEADERS
        if self._fresh is None:
            self._fresh = self._make_http(force_close=True)
        return self._fresh, _CLOSE_HEADERS

    async def _watch(self) -> None:
        """Fail requests that received nothing for the stall timeout (checked four times per
        timeout, at least once a second), by cancelling them with ``stalled`` set.
        """
        period = min(1.0, self._stall_ns / 4e9)
        while True:
            await asyncio.sleep(period)
            now = perf_counter_ns()
            for task, ex in list(self._active.items()):
                if not ex.stalled and now - ex.last_activity_ns > self._stall_ns:
                    ex.stalled = True
                    task.cancel()

    async def __aexit__(self, *exc_info: object) -> None:
        if self._watchdog is not None:
            self._watchdog.cancel()
        for http in (self._pooled, self._fresh):
            if http is not None:
                await http.close()

    async def execute(self, spec: RequestSpec, exchange: Exchange) -> None:
        """Send ``spec`` and stream the answer into ``exchange``.

        Re-sent when a reused connection had been closed (at most ``MAX_STALE_RETRIES`` times)
        and once per optional field the server rejects (finite: a rejected field is never sent
        again). A failed attempt is recorded before the re-send is decided, so a request whose
        retries run out keeps the last attempt's failure.
        """
        stale = 0
        while True:
            retry = await self._attempt(spec, exchange)
            if retry is None or exchange.retries >= MAX_RETRIES:
                return
            if retry == _STALE:
                if stale >= MAX_STALE_RETRIES:
                    return
                stale += 1
                if not self.quirks.close_connections:
                    self.quirks.close_connections = True
                    self._notice(
                        "server closed a keep-alive connection before answering; "
                        "llmtop now opens a fresh connection per request (connect "
                        "time is in TTFT)"
                    )
            exchange.retries += 1
            exchange.reset()

    async def _attempt(self, spec: RequestSpec, ex: Exchange) -> str | None:
        """One send; returns why it should be re-sent (``_STALE``, ``_FIELD``), else ``None``."""
        url = self._urls[spec.endpoint]
        body = self._body(spec)
        content = orjson.dumps(body)
        http, headers = self._http_for_next_request()
        token = _current.set(ex)
        ex.sent_ns = ex.last_activity_ns = perf_counter_ns()
        task = asyncio.current_task()
        assert task is not None
        self._active[task] = ex
        try:
            async with http.post(
                url, data=content, headers=headers, allow_redirects=False
            ) as response:
                ex.headers_ns = perf_counter_ns()
                ex.http_status = response.status
                if 300 <= response.status < 400:
                    location = response.headers.get("location")
                    ex.fail(ErrorKind.REDIRECT, redirect_message(response.status, location))
                elif response.status != 200:
                    return await self._on_http_error(response, ex, body)
                else:
                    await _read_stream(response, ex)
        except StreamError as exc:
            ex.fail(exc.kind, str(exc))
        except LineTooLong as exc:
            ex.fail(ErrorKind.PROTOCOL, str(exc))
        except asyncio.CancelledError:
            if not ex.stalled or task.cancelling() > 1:
                ex.fail(ErrorKind.CANCELLED, "cancelled by llmtop")
                raise
            task.uncancel()  # the watchdog's own cancellation: a timeout, not a stop
            phase = "connect" if ex.connection_ready_ns is None else "no data"
            ex.fail(
                ErrorKind.TIMEOUT,
                f"{phase}: no byte for {self._stall_ns / 1e9:g} s (stall timeout)",
            )
        except Exception as exc:  # noqa: BLE001 - every transport failure becomes a record
            kind, message = classify_exception(exc, ex)
            if _is_stale_connection(ex, exc):
                ex.fail(kind, "the server had closed the reused keep-alive connection")
                return _STALE
            ex.fail(kind, message)
        finally:
            _current.reset(token)
            del self._active[task]
        if not ex.end_ns:
            ex.end_ns = perf_counter_ns()
        return None

    def _body(self, spec: RequestSpec) -> dict[str, Any]:
        body = {**spec.body, "stream": True}
        if self.quirks.stream_usage:
            body["stream_options"] = {"include_usage": True}
        if spec.exact_output and "max_tokens" in body:
            for name in self.quirks.exact_output_fields:
                body[name] = True if name == "ignore_eos" else body["max_tokens"]
        return body

    async def _on_http_error(
        self, response: aiohttp.ClientResponse, ex: Exchange, sent: dict[str, Any]
    ) -> str | None:
        try:
            message = error_message_from_body(await _read_capped(response))
        except StreamError as exc:  # a body compressed in a way llmtop cannot read
            message = str(exc)
        ex.end_ns = perf_counter_ns()
        status = response.status
        kind = ErrorKind.HTTP_5XX if status >= 500 else ErrorKind.HTTP_4XX
        ex.fail(kind, f"HTTP {status}: {message}")
        if status in (400, 422) and self._drop_rejected_field(message, sent):
            return _FIELD
        return None

    def _drop_rejected_field(self, message: str, sent: dict[str, Any]) -> bool:
        """Adapt to a server that rejected an optional field; True when it can be re-sent.

        Judged on the body this request carried: requests already in flight when another one
        taught the run that a field is rejected are re-sent too, without noticing it twice.
        """
        lowered = message.lower()
        if "stream_options" in sent and "stream_options" in lowered:
            if self.quirks.stream_usage:
                self.quirks.stream_usage = False
                self._notice(
                    "server rejects stream_options; token counts fall back to other sources"
                )
            return True
        for name in EXACT_OUTPUT_FIELDS:
            if name in sent and name in lowered:
                if name in self.quirks.exact_output_fields:
                    self.quirks.exact_output_fields = tuple(
                        f for f in self.quirks.exact_output_fields if f != name
                    )
                    self._notice(
                        f"server rejects '{name}'; exact output length may not be honoured"
                    )
                return True
        return False

    def _notice(self, message: str) -> None:
        self._on_notice(message)


async def _read_stream(response: aiohttp.ClientResponse, ex: Exchange) -> None:
    content_type = response.headers.get("content-type", "")
    if "json" in content_type and "event-stream" not in content_type:
        body = await _read_capped(response)
        raise StreamError(
            ErrorKind.PROTOCOL, "expected an SSE stream, got JSON: " + error_message_from_body(body)
        )
    decoder = SseDecoder()
    on_payload = ex.on_payload
    async for chunk in _reads(response):
        now = ex.last_activity_ns = perf_counter_ns()
        for count, payload in enumerate(decoder.feed(chunk), 1):
            on_payload(payload, now)
            if not count % YIELD_EVERY_EVENTS:
                await asyncio.sleep(0)
        if decoder.error is not None:
            raise error_event(decoder.error)
        # No yield needed here: each read drained the connection's buffer, so the next one
        # waits for the network (and lets the loop run) unless the body has ended.
    now = perf_counter_ns()
    for payload in decoder.close():
        on_payload(payload, now)
    ex.end_ns = now
    if decoder.error is not None:
        raise error_event(decoder.error)
    if ex.finish_reason is None and not ex.done:
        kind = ErrorKind.STREAM_BROKEN if ex.first_chunk_ns else ErrorKind.PROTOCOL
        ex.fail(kind, "stream ended without a finish reason or [DONE]")


def _reads(response: aiohttp.ClientResponse) -> AsyncIterator[bytes]:
    """The body as it is read (all that is buffered at each read), inflated when a server
    compressed it anyway.
    """
    inflater = inflater_for(response.headers.get("content-encoding"))
    reads = response.content.iter_any()
    return reads if inflater is None else inflated(reads, inflater)


async def _read_capped(response: aiohttp.ClientResponse) -> bytes:
    parts: list[bytes] = []
    size = 0
    async for chunk in _reads(response):
        parts.append(chunk)
        size += len(chunk)
        if size >= MAX_ERROR_BODY_BYTES:
            break
    return b"".join(parts)


def _is_stale_connection(ex: Exchange, exc: Exception) -> bool:
    """A reused connection that the server had already closed: nothing was answered."""
    if not ex.reused_connection or ex.headers_ns is not None:
        return False
    return any(
        isinstance(e, aiohttp.ServerDisconnectedError | ConnectionResetError | BrokenPipeError)
        for e in cause_chain(exc)
    )


def _trace_config() -> aiohttp.TraceConfig:
    """Hooks that stamp pool wait and connection reuse on the current request's exchange."""
    config = aiohttp.TraceConfig()

    async def queued_start(
        _s: aiohttp.ClientSession,
        _c: object,
        _p: aiohttp.TraceConnectionQueuedStartParams,
    ) -> None:
        ex = _current.get()
        if ex is not None:
            ex.queued_ns = perf_counter_ns()

    async def queued_end(
        _s: aiohttp.ClientSession,
        _c: object,
        _p: aiohttp.TraceConnectionQueuedEndParams,
    ) -> None:
        ex = _current.get()
        if ex is not None and ex.queued_ns is not None:
            ex.queue_wait_ns += perf_counter_ns() - ex.queued_ns

    async def connected(
        _s: aiohttp.ClientSession,
        _c: object,
        _p: aiohttp.TraceConnectionCreateEndParams,
    ) -> None:
        ex = _current.get()
        if ex is not None:
            ex.connection_ready_ns = perf_counter_ns()

    async def reused(
        _s: aiohttp.ClientSession,
        _c: object,
        _p: aiohttp.TraceConnectionReuseconnParams,
    ) -> None:
        ex = _current.get()
        if ex is not None:
            ex.connection_ready_ns = perf_counter_ns()
            ex.reused_connection = True

    config.on_connection_queued_start.append(queued_start)
    config.on_connection_queued_end.append(queued_end)
    config.on_connection_create_end.append(connected)
    config.on_connection_reuseconn.append(reused)
    return config
