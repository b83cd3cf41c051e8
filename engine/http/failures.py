"""What went wrong with a request, as an ``ErrorKind`` and a message a user can act on.

Three sources: an HTTP error body (JSON in its several shapes, an HTML page, plain text), an
error reported inside a 200 stream (an ``error`` object or an SSE ``event: error``), and a
transport exception as aiohttp raises it (or any wrapping of it).
"""

from __future__ import annotations

import asyncio
import os
import re
from typing import TYPE_CHECKING

import aiohttp
import orjson
from aiohttp.http_exceptions import (
    ContentLengthError,
    HttpProcessingError,
    TransferEncodingError,
)

from engine.records import ErrorKind

if TYPE_CHECKING:
    from engine.http.exchange import Exchange

MAX_MESSAGE_CHARS = 500
"""Longest message taken from a server's error body or in-stream error."""
_TAGS = re.compile(rb"<(script|style)\b.*?</\1>|<[^>]+>", re.S | re.I)


class StreamError(Exception):
    """A failure detected while reading a response, with its kind."""

    def __init__(self, kind: ErrorKind, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.kind = kind
        self.status = status


def in_stream_error(error: object) -> StreamError:
    """Build the failure for an ``{"error": ...}`` event inside a 200 stream."""
    if isinstance(error, dict):
        # Without a message field, the server's own JSON says more than Python's dict repr.
        message = str(error.get("message") or error.get("detail") or orjson.dumps(error).decode())
        code = error.get("code")
    else:
        message, code = str(error), None
    status = code if isinstance(code, int) else None
    kind = ErrorKind.HTTP_4XX if status and 400 <= status < 500 else ErrorKind.HTTP_5XX
    return StreamError(kind, f"error in stream: {message}", status)


def unexpected_shape(payload: bytes) -> StreamError:
    """Build the failure for a stream event that is JSON but not shaped like an OpenAI chunk."""
    shown = payload[:200].decode("utf-8", "replace")
    return StreamError(ErrorKind.PROTOCOL, f"stream event has an unexpected shape: {shown}")


def error_event(data: bytes) -> StreamError:
    """Build the failure for an SSE ``event: error``, whose data is the server's error: an
    ``{"error": ...}`` object, a bare ``{"message": ..., "code": ...}`` or plain text.
    """
    try:
        error: object = orjson.loads(data)
    except orjson.JSONDecodeError:
        error = data.decode("utf-8", "replace").strip()
    if isinstance(error, dict) and isinstance(error.get("error"), dict | str):
        error = error["error"]
    return in_stream_error(error or "(no message)")


def redirect_message(status: int, location: str | None) -> str:
    """Say where a 3xx answer points; llmtop measures the URL it was given and goes no further."""
    target = f"to {location}" if location else "without a Location header"
    return (
        f"HTTP {status} redirect {target} (not followed: point --url at the address that answers)"
    )


def error_message_from_body(body: bytes) -> str:
    """Extract a readable message from a JSON error object, an HTML page or plain text."""
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError:
        text = _TAGS.sub(b" ", body).decode("utf-8", "replace")
        return " ".join(text.split())[:MAX_MESSAGE_CHARS] or "(empty body)"
    if isinstance(data, dict):
        error = data.get("error", data)
        if isinstance(error, dict):
            return str(error.get("message") or error.get("detail") or error)[:MAX_MESSAGE_CHARS]
        return str(error)[:MAX_MESSAGE_CHARS]
    return str(data)[:MAX_MESSAGE_CHARS]


def cause_chain(exc: BaseException) -> list[BaseException]:
    """``exc`` and the exceptions it was raised from, outermost first."""
    seen: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and current not in seen:
        seen.append(current)
        current = current.__cause__ or current.__context__
    return seen


def classify_exception(exc: BaseException, ex: Exchange) -> tuple[ErrorKind, str]:
    """Map a transport exception to an error kind and a message that says what the server or
    the network did, looking through any wrapping.

    The original aiohttp or OS error in the cause chain decides, whatever wraps it
    (httpx-aiohttp, which the client used until 2026-12, re-raised a dropped connection as
    ``ConnectTimeout``). Messages leave out exception class names and aiohttp's
    ``400, message:`` framing (that 400 is aiohttp's own code for a malformed response, not the
    server's status).
    """
    chain = cause_chain(exc)
    for e in chain:
        if isinstance(e, aiohttp.ClientConnectorError):
            return ErrorKind.CONNECT, _cannot_connect(e)
    if any(isinstance(e, asyncio.TimeoutError | aiohttp.ServerTimeoutError) for e in chain):
        phase = "connect" if ex.connection_ready_ns is None else "no data for the stall timeout"
        return ErrorKind.TIMEOUT, f"{phase}: {_detail(chain[-1])}"
    for e in chain:
        if isinstance(e, HttpProcessingError):
            return _malformed(e)
    if any(_is_network_error(e) for e in chain):
        started = ex.headers_ns is not None or ex.connection_ready_ns is not None
        kind = ErrorKind.STREAM_BROKEN if started else ErrorKind.CONNECT
        return kind, _network_message(chain, answered=ex.headers_ns is not None)
    root = chain[-1]
    return ErrorKind.PROTOCOL, f"unexpected error reading the answer: {type(root).__name__}: {root}"


def _detail(exc: BaseException) -> str:
    """An exception's own text on one line (its class name when it has none)."""
    return " ".join(str(exc).split()) or type(exc).__name__


def _cannot_connect(exc: aiohttp.ClientConnectorError) -> str:
    error = exc.os_error
    reason = os.strerror(error.errno) if error.errno and error.errno > 0 else _detail(error)
    return f"cannot connect to {exc.host}:{exc.port}: {reason}"


def _malformed(exc: HttpProcessingError) -> tuple[ErrorKind, str]:
    # aiohttp points at the bad byte with a line of carets under the bytes it quotes.
    lines = (line.strip() for line in exc.message.splitlines())
    detail = " ".join(line for line in lines if line and set(line) != {"^"})
    if isinstance(exc, ContentLengthError | TransferEncodingError):
        return (
            ErrorKind.STREAM_BROKEN,
            f"the connection closed before the answer was complete ({detail})",
        )
    return ErrorKind.PROTOCOL, f"malformed HTTP response from the server ({detail})"


def _is_network_error(exc: BaseException) -> bool:
    # aiohttp raises a bare RuntimeError("Connection closed.") when a read finds the connection
    # already gone; it carries no other mark.
    closed = isinstance(exc, RuntimeError) and str(exc) == "Connection closed."
    return closed or isinstance(exc, aiohttp.ClientError | OSError)


def _network_message(chain: list[BaseException], *, answered: bool) -> str:
    when = "mid-answer" if answered else "before answering"
    for e in chain:
        if isinstance(e, aiohttp.ServerDisconnectedError):
            return f"the server closed the connection {when}"
        if isinstance(e, ConnectionResetError):
            return f"the server reset the connection {when}"
        if isinstance(e, BrokenPipeError):
            return "the server closed the connection while the request was being sent"
        if isinstance(e, RuntimeError):
            return f"the connection closed {when}"
    return f"network error {when} ({_detail(chain[-1])})"
