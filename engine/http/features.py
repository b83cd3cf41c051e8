"""Find out which optional request features a server honours, with a few tiny real requests.

Servers differ in what they do with the fields llmtop relies on: the usage object at the end
of a stream (``stream_options.include_usage``), the fields that ask for exactly
``max_tokens`` tokens (``ignore_eos``, ``min_tokens``), and the newer ``max_completion_tokens``.
Some honour a field, some reject it with HTTP 400/422, and some accept and ignore it. Four
streamed chat requests of at most 8 tokens each tell these apart; the result goes into
``llmtop check`` and ``run.json``.

Every probe is bounded: at most ``PROBE_TIMEOUT_S`` seconds, and a stream that runs past
``MAX_READ_TOKENS`` tokens is closed (a server that ignores the length limit is already
proven to ignore it).
"""

from __future__ import annotations

import asyncio
from dataclasses import asdict, dataclass, field
from time import perf_counter_ns
from typing import Any

import httpx
import orjson

from engine.http.auth import auth_headers
from engine.http.detect import ServerInfo
from engine.http.exchange import Exchange
from engine.http.failures import StreamError, error_event, error_message_from_body
from engine.http.sse import LineTooLong, SseDecoder
from engine.redact import redact

PROMPT = "Count from 1 to 50."
"""A prompt whose answer is far longer than the probes' limits."""
PROBE_MAX_TOKENS = 8
"""``max_tokens`` of the probes that ask for an exact length."""
THINKING_OFF = {"enable_thinking": False}
"""The chat-template switch Qwen3-style models use to skip their reasoning."""
LIMIT_PROBE_TOKENS = 3
"""``max_completion_tokens`` of the probe for that field."""
PROBE_TIMEOUT_S = 30.0
"""Wall-clock limit of one probe request."""
MAX_READ_TOKENS = 64
"""Stop reading a stream after this many token-bearing chunks."""
REJECTED_STATUSES = (400, 422)
"""HTTP statuses by which servers refuse a request field."""
_HEADERS = {
    "content-type": "application/json",
    "accept": "text/event-stream",
    "accept-encoding": "identity",
    "connection": "close",
}
"""A fresh connection per probe: llama-server closes the connection after every stream while
advertising keep-alive, and a probe sent on that dead connection would fail spuriously. Asked
uncompressed like the measured requests; one compressed anyway is decoded by httpx."""


@dataclass
class Features:
    """Which optional request features the server honours: ``True``, ``False`` or ``None``
    (unknown: the probe could not be completed). ``notes`` says why where it is not obvious.
    """

    stream_usage: bool | None = None
    """A stream asked for with ``stream_options.include_usage`` ends with a ``usage`` object."""
    ignore_eos: bool | None = None
    """``max_tokens: 8`` with ``ignore_eos: true`` gives exactly 8 completion tokens."""
    min_tokens: bool | None = None
    """``min_tokens = max_tokens = 8`` gives exactly 8 completion tokens (rejected: False)."""
    max_completion_tokens: bool | None = None
    """``max_completion_tokens: 3`` instead of ``max_tokens`` gives 3 tokens, not more (a model
    that stops on its own before 3 leaves it unknown)."""
    reasoning: bool | None = None
    """The stream carried ``reasoning_content``/``reasoning`` deltas (a reasoning model)."""
    thinking_switch: bool | None = None
    """``chat_template_kwargs: {"enable_thinking": false}`` (Qwen3-style templates on vLLM,
    SGLang, llama.cpp) stops the reasoning deltas; rejected or ignored: False; accepted by a
    model that does not think anyway: unknown."""
    notes: list[str] = field(default_factory=list)
    """Evidence and caveats, one sentence each."""

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return asdict(self)


@dataclass
class _Outcome:
    """What one probe request gave."""

    status: int | None = None
    """HTTP status, ``None`` when no response came."""
    error: str | None = None
    """Why the probe failed, ``None`` when the stream was read."""
    tokens: int | None = None
    """Completion tokens: ``usage.completion_tokens`` when present, else streamed chunks."""
    usage: bool = False
    reasoning: bool = False
    finish_reason: str | None = None
    truncated: bool = False
    """The stream was closed by the probe after ``MAX_READ_TOKENS`` chunks."""

    @property
    def rejected(self) -> bool:
        """The server refused the request (a field it does not accept)."""
        return self.status in REJECTED_STATUSES

    @property
    def ok(self) -> bool:
        """The stream was read."""
        return self.error is None and self.tokens is not None


async def probe_features(
    url: str, model: str, api_key: str | None = None, basic_auth: str | None = None
) -> Features:
    """Send four tiny streamed chat requests to ``url`` and judge what ``model`` honours.

    A fifth, the first one again without ``stream_options``, is sent only when the server
    rejects those. Each request is limited to ``PROBE_TIMEOUT_S`` seconds.

    Args:
        url: Base URL of the server (no ``/v1``), as ``engine.http.detect.normalize_url`` gives it.
        model: Model id to send the probes to.
        api_key: Bearer token, if the server wants one.
        basic_auth: ``user:password`` for HTTP Basic auth, sent instead of ``api_key``.

    Returns:
        The verdicts. A probe answered HTTP 400/422 makes its feature ``False`` with a note;
        a network failure or timeout makes it ``None`` with a note, and stops probing.

    """
    features = Features()
    headers = auth_headers(api_key, basic_auth)
    timeout = httpx.Timeout(PROBE_TIMEOUT_S)
    async with httpx.AsyncClient(base_url=url, headers=headers, timeout=timeout) as http:

        async def probe(**fields: Any) -> _Outcome:
            body: dict[str, Any] = {
                "model": model,
                "messages": [{"role": "user", "content": PROMPT}],
                "temperature": 0,
                "stream": True,
                **fields,
            }
            if features.stream_usage is not False:
                body["stream_options"] = {"include_usage": True}
            outcome = await _send(http, body)
            features.reasoning = bool(features.reasoning) or outcome.reasoning
            return outcome

        base = await probe(max_tokens=PROBE_MAX_TOKENS)
        if base.rejected and "stream_options" in (base.error or "").lower():
            features.stream_usage = False
            features.notes.append(f"stream_options rejected: {base.error}")
            base = await probe(max_tokens=PROBE_MAX_TOKENS)
        if not base.ok:
            features.reasoning = None
            features.notes.append(
                f"a plain streamed request failed: {base.error}; nothing else was probed"
            )
            return features
        if features.stream_usage is None:
            features.stream_usage = base.usage
            if not base.usage:
                features.notes.append(
                    "no usage object in the stream although stream_options.include_usage was sent"
                )
        for name, value in (("ignore_eos", True), ("min_tokens", PROBE_MAX_TOKENS)):
            outcome = await probe(max_tokens=PROBE_MAX_TOKENS, **{name: value})
            verdict = _judge_exact(name, outcome, features.notes)
            setattr(features, name, verdict)
            if verdict is True and base.tokens == PROBE_MAX_TOKENS:
                features.notes.append(
                    f"{name}: the model wrote {PROBE_MAX_TOKENS} tokens without it too, so "
                    "this shows the field is accepted, not that it is enforced"
                )
            if verdict is None and outcome.status is None:
                return features
        outcome = await probe(max_completion_tokens=LIMIT_PROBE_TOKENS)
        features.max_completion_tokens = _judge_limit(outcome, features.notes)
        outcome = await probe(max_tokens=PROBE_MAX_TOKENS, chat_template_kwargs=THINKING_OFF)
        features.thinking_switch = _judge_thinking(base, outcome, features.notes)
    return features


def _judge_thinking(base: _Outcome, outcome: _Outcome, notes: list[str]) -> bool | None:
    """Verdict on the thinking switch, against the plain request's reasoning."""
    if outcome.rejected:
        notes.append(f"chat_template_kwargs rejected: {outcome.error}")
        return False
    if not outcome.ok:
        notes.append(f"thinking switch unknown: {outcome.error}")
        return None
    if not base.reasoning:
        notes.append(
            "thinking switch: enable_thinking=false was accepted, but this model "
            "did not think without it either, so its effect is unknown"
        )
        return None
    if outcome.reasoning:
        notes.append("thinking switch ignored: reasoning deltas came with enable_thinking=false")
        return False
    return True


def _judge_exact(name: str, outcome: _Outcome, notes: list[str]) -> bool | None:
    """Verdict on a field that asks for exactly ``PROBE_MAX_TOKENS`` tokens."""
    if outcome.rejected:
        notes.append(f"{name} rejected: {outcome.error}")
        return False
    if not outcome.ok:
        notes.append(f"{name} unknown: {outcome.error}")
        return None
    if outcome.tokens != PROBE_MAX_TOKENS:
        notes.append(f"{name}: asked for exactly {PROBE_MAX_TOKENS} tokens, got {outcome.tokens}")
        return False
    return True


def _judge_limit(outcome: _Outcome, notes: list[str]) -> bool | None:
    """Verdict on ``max_completion_tokens`` (sent without ``max_tokens``)."""
    if outcome.rejected:
        notes.append(f"max_completion_tokens rejected: {outcome.error}")
        return False
    if not outcome.ok:
        notes.append(f"max_completion_tokens unknown: {outcome.error}")
        return None
    if outcome.tokens is not None and outcome.tokens > LIMIT_PROBE_TOKENS:
        more = "at least " if outcome.truncated else ""
        notes.append(
            f"max_completion_tokens ignored: asked for at most {LIMIT_PROBE_TOKENS} "
            f"tokens, got {more}{outcome.tokens}"
        )
        return False
    if outcome.tokens is None or outcome.tokens < LIMIT_PROBE_TOKENS:
        notes.append(
            f"max_completion_tokens unknown: the model stopped on its own after "
            f"{outcome.tokens} tokens (finish_reason {outcome.finish_reason!r})"
        )
        return None
    return True


async def _send(http: httpx.AsyncClient, body: dict[str, Any]) -> _Outcome:
    """One probe request, bounded by ``PROBE_TIMEOUT_S``; never raises for a failure."""
    outcome = _Outcome()
    try:
        await asyncio.wait_for(_stream(http, body, outcome), PROBE_TIMEOUT_S)
    except TimeoutError:
        outcome.error = f"no complete answer within {PROBE_TIMEOUT_S:g} s"
    except (StreamError, LineTooLong) as exc:
        outcome.error = f"error in the stream: {exc}"
    except httpx.HTTPError as exc:
        outcome.error = f"{type(exc).__name__}: {exc}".rstrip(": ")
    if outcome.error is not None:
        outcome.tokens = None
        outcome.error = redact(outcome.error)  # it lands in run.json; a server may quote the key
    return outcome


async def _stream(http: httpx.AsyncClient, body: dict[str, Any], outcome: _Outcome) -> None:
    """Send ``body`` and read its stream into ``outcome``."""
    ex = Exchange(perf_counter_ns())
    async with http.stream(
        "POST", "/v1/chat/completions", content=orjson.dumps(body), headers=_HEADERS
    ) as response:
        outcome.status = response.status_code
        if response.status_code != 200:
            text = await response.aread()
            outcome.error = f"HTTP {response.status_code}: {error_message_from_body(text)}"
            return
        decoder = SseDecoder()
        async for chunk in response.aiter_bytes():
            for payload in decoder.feed(chunk):
                ex.on_payload(payload, perf_counter_ns())
            if decoder.error is not None:
                raise error_event(decoder.error)
            if ex.streamed_tokens > MAX_READ_TOKENS:
                outcome.truncated = True
                break
        else:
            for payload in decoder.close():
                ex.on_payload(payload, perf_counter_ns())
            if decoder.error is not None:
                raise error_event(decoder.error)
    usage = ex.usage if isinstance(ex.usage, dict) else None
    outcome.usage = usage is not None
    outcome.reasoning = ex.reasoning_chars > 0
    outcome.finish_reason = ex.finish_reason
    completion = usage.get("completion_tokens") if usage else None
    outcome.tokens = completion if isinstance(completion, int) else ex.streamed_tokens
    if not outcome.truncated and ex.finish_reason is None and not ex.done:
        outcome.error = "the stream ended without a finish reason or [DONE]"


def check_report(info: ServerInfo, features: Features | None) -> dict[str, Any]:
    """JSON-ready result of ``llmtop check``.

    Args:
        info: What ``engine.http.detect.detect`` found.
        features: What ``probe_features`` found, ``None`` when it was not run.

    Returns:
        ``url``, ``kind``, ``version``, ``models``, ``evidence`` and ``features``.

    """
    return {
        "url": info.url,
        "kind": info.kind,
        "version": info.version,
        "models": list(info.models),
        "evidence": list(info.evidence),
        "features": None if features is None else features.as_dict(),
    }
