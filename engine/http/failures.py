"""What went wrong with a request, as an ``ErrorKind`` and a message a user can act on.

Three sources: an HTTP error body (JSON in its several shapes, an HTML page, plain text), an
error reported inside a 200 stream (an ``error`` object or an SSE ``event: error``), and a
transport exception as httpx-aiohttp wraps it.
"""

from __future__ import annotations

import asyncio
import re
from typing import TYPE_CHECKING

import aiohttp
import httpx
import orjson

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
        message = str(error.get("message") or error)
        code = error.get("code")
    else:
        message, code = str(error), None
    status = code if isinstance(code, int) else None
    kind = ErrorKind.HTTP_4XX if status and 400 <= status < 500 else ErrorKind.HTTP_5XX
    return StreamError(kind, f"error in stream: {message}", status)


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
    """Map a transport exception to an error kind, looking through httpx's wrapping.

    httpx-aiohttp re-raises aiohttp errors as httpx ones (a dropped connection becomes
    ``ConnectTimeout``), so the original aiohttp error in the cause chain decides.
    """
    chain = cause_chain(exc)
    root = chain[-1]
    message = f"{type(root).__name__}: {root}".strip()
    if any(isinstance(e, aiohttp.ClientConnectorError) for e in chain):
        return ErrorKind.CONNECT, message
    if any(isinstance(e, asyncio.TimeoutError | aiohttp.ServerTimeoutError) for e in chain):
        phase = "connect" if ex.connection_ready_ns is None else "no data for the stall timeout"
        return ErrorKind.TIMEOUT, f"{phase}: {message}"
    if any(isinstance(e, aiohttp.ClientError | httpx.TransportError | OSError) for e in chain):
        if ex.headers_ns is not None or ex.connection_ready_ns is not None:
            return ErrorKind.STREAM_BROKEN, message
        return ErrorKind.CONNECT, message
    return ErrorKind.PROTOCOL, message
