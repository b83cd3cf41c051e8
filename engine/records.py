"""The per-request record: what ``requests.jsonl`` holds, one line per request.

All ``*_ns`` timestamps are ``time.perf_counter_ns()`` readings taken on the engine's clock,
stored as offsets from the run's clock origin (``run.json`` ``clock``): wall time of an instant
is ``clock.origin_unix_ns + t_ns``. Durations are seconds in fields named ``*_s``.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class ErrorKind(StrEnum):
    """Why a request failed."""

    CONNECT = "connect"
    """The TCP connection could not be made (refused, unreachable, DNS)."""
    TIMEOUT = "timeout"
    """Connecting took longer than the connect timeout, or no byte arrived for the stall timeout."""
    REDIRECT = "redirect"
    """The server answered 3xx. Redirects are not followed (a POST may not survive one, and a
    second request would hide in the timings); the message gives the ``Location``."""
    HTTP_4XX = "http_4xx"
    """The server answered 4xx (or sent an in-stream error with a 4xx code)."""
    HTTP_5XX = "http_5xx"
    """The server answered 5xx (or sent an in-stream error with a 5xx code or none)."""
    STREAM_BROKEN = "stream_broken"
    """The connection dropped after the response began (no finish reason seen)."""
    NO_OUTPUT = "no_output"
    """The stream ended normally but carried no generated text while the server reported
    generating tokens; the claim stays in ``completion_tokens_by_source``."""
    PROTOCOL = "protocol"
    """The response was not valid HTTP or not a valid OpenAI stream (not SSE, bad JSON, an event
    of the wrong shape, an encoding llmtop cannot read), or one of its SSE lines passed the
    decoder's bound (8 MiB) without ending."""
    CANCELLED = "cancelled"
    """llmtop stopped the request (Ctrl+C, SIGTERM, or a stop from the UI)."""


Endpoint = Literal["chat", "completions"]
"""Which OpenAI route a request calls: ``/v1/chat/completions`` or ``/v1/completions``."""

TokenSource = Literal["usage", "timings", "chunks"]
"""Where a token count came from: the server's ``usage`` object, llama.cpp's ``timings``
object, or the number of streamed chunks that carried text (a lower bound when a server packs
several tokens into one chunk)."""


class ItlStats(BaseModel):
    """Summary of one request's inter-token latencies (gaps between token-bearing chunks)."""

    model_config = ConfigDict(frozen=True)

    count: int
    """Number of gaps (token-bearing chunks minus one)."""
    mean_s: float
    """Mean gap."""
    p50_s: float
    """Median gap."""
    p90_s: float
    """90th percentile gap."""
    p99_s: float
    """99th percentile gap."""
    max_s: float
    """Longest gap (a stall inside the stream)."""


class RequestRecord(BaseModel):
    """Everything measured about one request. Frozen once built."""

    model_config = ConfigDict(frozen=True)

    run_id: str
    """The run this request belongs to."""
    request_id: str
    """``req_000001``-style id, unique within the run."""
    profile: str
    """Name of the profile (scenario) that sent it."""
    concurrency: int | None
    """Closed-loop concurrency of the profile (``None`` for open-loop rate runs)."""
    rate_rps: float | None
    """Open-loop arrival rate of the profile in requests/s (``None`` in closed loop)."""
    warmup: bool
    """Warm-up requests are recorded but excluded from every aggregate."""
    endpoint: Endpoint
    """Which OpenAI route was called."""

    scheduled_ns: int
    """When the request was due: its arrival time in open loop, its start in closed loop."""
    sent_ns: int | None
    """When the request was handed to the HTTP client (after a retry: the retry's send)."""
    connection_ready_ns: int | None
    """When the HTTP client had a connection for it (client-side pool wait ends)."""
    headers_ns: int | None
    """When the response status line and headers arrived."""
    first_chunk_ns: int | None
    """When the first SSE event arrived (often a role-only chunk with no text)."""
    first_choice_ns: int | None = None
    """When the first SSE event with a non-empty ``choices`` list arrived (the role chunk on
    vLLM and llama-server): where vLLM's TTFT and llama-benchy's time to first response end."""
    last_choice_ns: int | None = None
    """When the last event with a non-empty ``choices`` list arrived (usually the finish
    chunk, before a usage-only chunk and ``[DONE]``): where vLLM's E2E ends."""
    first_token_ns: int | None
    """When the first generated token arrived: the first chunk with reasoning or content text."""
    first_content_ns: int | None
    """When the first visible (non-reasoning) content token arrived."""
    last_token_ns: int | None
    """When the last token-bearing chunk arrived."""
    end_ns: int
    """When the stream ended (last byte read) or the request failed."""

    ttft_s: float | None
    """Time to first token: ``first_token_ns - sent_ns``. Reasoning tokens count."""
    ttfc_s: float | None
    """Time to first visible content: ``first_content_ns - sent_ns``."""
    e2e_s: float | None
    """End-to-end latency: ``end_ns - sent_ns`` (request sent to last byte)."""
    tpot_s: float | None
    """Time per output token after the first: ``(e2e_s - ttft_s) / (completion_tokens - 1)``;
    ``None`` when fewer than two tokens were generated."""
    ttft_from_scheduled_s: float | None
    """``first_token_ns - scheduled_ns``: TTFT including any lateness of the client itself."""
    e2e_from_scheduled_s: float | None
    """``end_ns - scheduled_ns``: in open loop, the latency a user arriving on time would see."""
    schedule_lag_s: float | None
    """``sent_ns - scheduled_ns``: how late llmtop sent the request (should be ~0)."""
    client_queue_wait_s: float | None
    """Time the request waited inside the HTTP client for a pooled connection. Connection
    limits are sized to the concurrency, so it should be ~0; a large value means the client
    distorted TTFT."""
    itl: ItlStats | None
    """Inter-token latency stats over this request's gaps; ``None`` with fewer than 2 chunks."""
    itl_s: list[float] | None = None
    """The raw gaps in seconds, only when the run asked for them (``--save-itl``)."""
    token_chunks: int
    """Number of streamed chunks that carried reasoning or content text."""
    choice_chunks: int | None = None
    """Number of SSE events with a non-empty ``choices`` list (role, text and finish chunks):
    vLLM counts an inter-token gap between each two (``None`` in runs recorded before it)."""

    prompt_tokens: int | None
    """Prompt length in tokens from the best source (see ``prompt_tokens_source``)."""
    prompt_tokens_source: TokenSource | None
    """Where ``prompt_tokens`` came from."""
    completion_tokens: int | None
    """Generated tokens (reasoning included) from the best source."""
    completion_tokens_source: TokenSource | None
    """Where ``completion_tokens`` came from: ``usage`` > ``timings`` > ``chunks``."""
    completion_tokens_by_source: dict[TokenSource, int] = Field(default_factory=dict)
    """Every completion count seen, by source, so disagreements can be inspected."""
    token_count_mismatch: bool = False
    """True when ``usage`` and ``timings`` disagree, more text chunks arrived than the server
    says it generated tokens, or the server reports tokens but no text chunk arrived."""
    reasoning_tokens: int | None = None
    """Reasoning tokens, when the server reports them in ``usage``."""
    cached_prompt_tokens: int | None = None
    """Prompt tokens served from the server's prefix cache, when reported."""
    requested_input_tokens: int | None = None
    """The prompt length the profile asked for (the prompt generator's target)."""
    requested_max_tokens: int | None = None
    """``max_tokens`` sent with the request."""
    exact_output_requested: bool = False
    """Whether the request asked for exactly ``max_tokens`` tokens (ignore_eos, min_tokens)."""
    exact_output_honoured: bool | None = None
    """Whether the server then generated exactly ``max_tokens`` tokens (``None`` if not asked
    or unknown)."""
    output_chars: int = 0
    """Characters of visible content received."""
    reasoning_chars: int = 0
    """Characters of reasoning received."""

    finish_reason: str | None = None
    """The server's finish reason (``stop``, ``length``, ...)."""
    http_status: int | None = None
    """HTTP status of the response (``None`` when none arrived)."""
    ok: bool
    """True when the stream completed with a finish reason and no error."""
    error_kind: ErrorKind | None = None
    """Why it failed, when it did."""
    error_message: str | None = None
    """The error as the server or the network gave it (truncated to 500 characters)."""
    retries: int = 0
    """Times the request was re-sent: on a fresh connection because a reused keep-alive
    connection turned out to be closed before any response byte (llama-server closes
    connections after each stream while advertising keep-alive), or without an optional field
    (``stream_options``, ``ignore_eos``, ``min_tokens``) the server rejected."""
    server_timings: dict[str, float | int] | None = None
    """llama.cpp's server-side ``timings`` object (prompt_n, prompt_ms, predicted_n,
    predicted_ms, predicted_per_second, cache_n, ...), when the server sent one."""
    worker: int | None = None
    """The worker process that sent it (``--workers``, ``--ray``), 0-based; ``None`` when the
    engine's own process sent it."""
    host: str | None = None
    """The machine the sending worker ran on (its host name); ``None`` when the engine's own
    process sent it."""
