"""Mutable per-request state filled while a response streams, then frozen into a record.

The hot path (``on_payload``) runs once per SSE event: it parses the JSON with orjson, notes
the arrival time of chunks that carry text, and keeps the last ``usage``/``timings`` objects.
Nothing else happens per token; every derived figure is computed once in ``to_record``.
"""

from __future__ import annotations

from time import perf_counter_ns
from typing import Any

import orjson

from engine.http.failures import StreamError, in_stream_error, unexpected_shape
from engine.http.sse import DONE
from engine.records import Endpoint, ErrorKind, ItlStats, RequestRecord, TokenSource
from engine.redact import redact
from engine.stats import NS, mean, percentile

MAX_ERROR_CHARS = 500
FAILED_FINISH_REASONS = frozenset({"error", "abort"})
"""Finish reasons by which servers (vLLM, SGLang) say they gave up on a request."""


class Exchange:
    """One request's timings and payload facts, as they arrive."""

    __slots__ = (
        "scheduled_ns",
        "sent_ns",
        "queued_ns",
        "connection_ready_ns",
        "reused_connection",
        "headers_ns",
        "first_chunk_ns",
        "first_choice_ns",
        "last_choice_ns",
        "choice_chunks",
        "first_content_ns",
        "token_times",
        "end_ns",
        "usage",
        "timings",
        "finish_reason",
        "done",
        "http_status",
        "error_kind",
        "error_message",
        "retries",
        "output_chars",
        "reasoning_chars",
        "queue_wait_ns",
        "requested_input_tokens",
        "requested_max_tokens",
        "exact_output_requested",
        "last_activity_ns",
        "stalled",
    )

    def __init__(self, scheduled_ns: int) -> None:
        self.scheduled_ns = scheduled_ns
        self.retries = 0
        self.requested_input_tokens: int | None = None
        self.requested_max_tokens: int | None = None
        self.exact_output_requested = False
        self.reset()

    def reset(self) -> None:
        """Forget everything a failed attempt saw, before a retry is sent."""
        self.sent_ns: int | None = None
        self.last_activity_ns = 0
        """When the request was sent or its last bytes arrived (the stall watchdog reads it)."""
        self.stalled = False
        self.queued_ns: int | None = None
        self.queue_wait_ns = 0
        self.connection_ready_ns: int | None = None
        self.reused_connection = False
        self.headers_ns: int | None = None
        self.first_chunk_ns: int | None = None
        self.first_choice_ns: int | None = None
        self.last_choice_ns: int | None = None
        self.choice_chunks = 0
        self.first_content_ns: int | None = None
        self.token_times: list[int] = []
        self.end_ns = 0
        self.usage: dict[str, Any] | None = None
        self.timings: dict[str, Any] | None = None
        self.finish_reason: str | None = None
        self.done = False
        self.http_status: int | None = None
        self.error_kind: ErrorKind | None = None
        self.error_message: str | None = None
        self.output_chars = 0
        self.reasoning_chars = 0

    def fail(self, kind: ErrorKind, message: str) -> None:
        """Mark the request failed (the first failure wins) and stamp its end."""
        if self.error_kind is None:
            self.error_kind = kind
            self.error_message = redact(message)[:MAX_ERROR_CHARS]
        if not self.end_ns:
            self.end_ns = perf_counter_ns()

    def on_payload(self, payload: bytes, now_ns: int) -> None:
        """Digest one SSE data payload that arrived at ``now_ns``."""
        if self.done:
            # [DONE] ends the answer for every OpenAI client: whatever a server writes after it
            # is not part of the answer, so it must not add tokens, text or a mismatch.
            return
        if self.first_chunk_ns is None:
            self.first_chunk_ns = now_ns
        if payload == DONE:
            self.done = True
            return
        try:
            event = orjson.loads(payload)
        except orjson.JSONDecodeError as exc:
            raise StreamError(ErrorKind.PROTOCOL, f"invalid JSON in stream: {exc}") from None
        if not isinstance(event, dict):
            raise unexpected_shape(payload)
        try:
            choices = event.get("choices")
            if choices:
                # Kept for peers' definitions (engine/analysis/peers): vLLM's TTFT ends at the
                # first event with choices (a role-only chunk counts) and its E2E at the last.
                if self.first_choice_ns is None:
                    self.first_choice_ns = now_ns
                self.last_choice_ns = now_ns
                self.choice_chunks += 1
                self._on_choice(choices[0], now_ns)
            elif event.get("error") is not None:
                # ``"error": null`` (an optional field serialised as null) is not an error.
                raise in_stream_error(event["error"])
        except (AttributeError, TypeError, KeyError, IndexError):
            # A choice, delta or text of the wrong type: say what the server sent, not which
            # Python operation it broke.
            raise unexpected_shape(payload) from None
        usage = event.get("usage")
        if usage:
            if not isinstance(usage, dict):
                raise unexpected_shape(payload)
            self.usage = usage
        timings = event.get("timings")
        if timings:
            if not isinstance(timings, dict):
                raise unexpected_shape(payload)
            self.timings = timings

    def _on_choice(self, choice: dict[str, Any], now_ns: int) -> None:
        delta = choice.get("delta")
        if delta is not None:
            text = delta.get("content")
            # Most deltas hold the text alone: two lookups saved per token.
            if text and len(delta) == 1:
                reasoning = None
            else:
                reasoning = delta.get("reasoning_content") or delta.get("reasoning")
        else:
            text = choice.get("text")
            reasoning = None
        if text or reasoning:
            self.token_times.append(now_ns)
            if text:
                self.output_chars += len(text)
                if self.first_content_ns is None:
                    self.first_content_ns = now_ns
            if reasoning:
                self.reasoning_chars += len(reasoning)
        finish = choice.get("finish_reason")
        if finish:
            self.finish_reason = finish if isinstance(finish, str) else str(finish)

    def gaps_s(self) -> list[float]:
        """Inter-token gaps in seconds between consecutive token-bearing chunks."""
        times = self.token_times
        return [(times[i] - times[i - 1]) / NS for i in range(1, len(times))]

    @property
    def streamed_tokens(self) -> int:
        """Token-bearing chunks so far (a live, lower-bound token count)."""
        return len(self.token_times)

    def to_record(
        self,
        *,
        run_id: str,
        request_id: str,
        profile: str,
        concurrency: int | None,
        rate_rps: float | None,
        warmup: bool,
        endpoint: Endpoint,
        origin_ns: int,
        save_itl: bool = False,
        gaps: list[float] | None = None,
    ) -> RequestRecord:
        """Freeze into a ``RequestRecord``.

        Args:
            run_id: The run the request belongs to.
            request_id: The request's id within the run.
            profile: Name of the profile that sent it.
            concurrency: The profile's closed-loop concurrency (``None`` in open loop).
            rate_rps: The profile's open-loop arrival rate (``None`` in closed loop).
            warmup: Whether it was a warm-up request.
            endpoint: The OpenAI route it called.
            origin_ns: The run's clock origin, subtracted from every timestamp.
            save_itl: Keep the raw inter-token gaps in the record (``--save-itl``).
            gaps: ``gaps_s()`` when the caller already computed it.

        """
        origin = origin_ns
        end = self.end_ns or perf_counter_ns()
        tokens = _TokenCounts(self.usage, self.timings, len(self.token_times))
        first_token = self.token_times[0] if self.token_times else None
        last_token = self.token_times[-1] if self.token_times else None
        gaps = self.gaps_s() if gaps is None else gaps
        if self.finish_reason in FAILED_FINISH_REASONS and self.error_kind is None:
            self.fail(
                ErrorKind.HTTP_5XX,
                f"server ended the stream with finish_reason={self.finish_reason!r}",
            )
        # One counted token and a stop, with no text: the model's end-of-turn token, which
        # servers count (vLLM) but never send as text. An empty answer, not a lie.
        stop_token_only = self.finish_reason == "stop" and tokens.claimed_unseen == 1
        if tokens.claimed_unseen and not stop_token_only and self.error_kind is None:
            # Tokens that never arrived are not output: counted, they would make a server
            # that streams nothing look fast in throughput and goodput.
            self.fail(
                ErrorKind.NO_OUTPUT,
                f"the stream carried no generated text, but the server reported "
                f"{tokens.claimed_unseen} completion tokens",
            )
        ok = self.error_kind is None and (self.finish_reason is not None or self.done)
        ttft = _span(self.sent_ns, first_token)
        e2e = _span(self.sent_ns, end)
        completion = tokens.completion
        tpot = None
        if ttft is not None and e2e is not None and completion is not None and completion > 1:
            tpot = (e2e - ttft) / (completion - 1)
        honoured = None
        if self.exact_output_requested and completion is not None and ok:
            honoured = completion == self.requested_max_tokens

        def rel(t: int | None) -> int | None:
            return None if t is None else t - origin

        return RequestRecord(
            run_id=run_id,
            request_id=request_id,
            profile=profile,
            concurrency=concurrency,
            rate_rps=rate_rps,
            warmup=warmup,
            endpoint=endpoint,
            scheduled_ns=self.scheduled_ns - origin,
            sent_ns=rel(self.sent_ns),
            connection_ready_ns=rel(self.connection_ready_ns),
            headers_ns=rel(self.headers_ns),
            first_chunk_ns=rel(self.first_chunk_ns),
            first_choice_ns=rel(self.first_choice_ns),
            last_choice_ns=rel(self.last_choice_ns),
            first_token_ns=rel(first_token),
            first_content_ns=rel(self.first_content_ns),
            last_token_ns=rel(last_token),
            end_ns=end - origin,
            ttft_s=ttft,
            ttfc_s=_span(self.sent_ns, self.first_content_ns),
            e2e_s=e2e,
            tpot_s=tpot,
            ttft_from_scheduled_s=_span(self.scheduled_ns, first_token),
            e2e_from_scheduled_s=_span(self.scheduled_ns, end) if self.sent_ns else None,
            schedule_lag_s=_span(self.scheduled_ns, self.sent_ns),
            client_queue_wait_s=self.queue_wait_ns / NS if self.sent_ns else None,
            itl=itl_stats(gaps),
            itl_s=gaps if save_itl else None,
            token_chunks=len(self.token_times),
            choice_chunks=self.choice_chunks,
            prompt_tokens=tokens.prompt,
            prompt_tokens_source=tokens.prompt_source,
            completion_tokens=completion,
            completion_tokens_source=tokens.completion_source,
            completion_tokens_by_source=tokens.by_source,
            token_count_mismatch=tokens.mismatch,
            reasoning_tokens=tokens.reasoning,
            cached_prompt_tokens=tokens.cached,
            requested_input_tokens=self.requested_input_tokens,
            requested_max_tokens=self.requested_max_tokens,
            exact_output_requested=self.exact_output_requested,
            exact_output_honoured=honoured,
            output_chars=self.output_chars,
            reasoning_chars=self.reasoning_chars,
            finish_reason=self.finish_reason,
            http_status=self.http_status,
            ok=ok,
            error_kind=self.error_kind if not ok else None,
            error_message=self.error_message,
            retries=self.retries,
            server_timings=_numeric(self.timings),
        )


def _span(start: int | None, end: int | None) -> float | None:
    return None if start is None or end is None else (end - start) / NS


def itl_stats(gaps: list[float]) -> ItlStats | None:
    """Summarise inter-token gaps (seconds); ``None`` when there are none."""
    if not gaps:
        return None
    ordered = sorted(gaps)
    return ItlStats(
        count=len(gaps),
        mean_s=mean(gaps),
        p50_s=percentile(ordered, 50),
        p90_s=percentile(ordered, 90),
        p99_s=percentile(ordered, 99),
        max_s=ordered[-1],
    )


def _numeric(timings: dict[str, Any] | None) -> dict[str, float | int] | None:
    if not timings:
        return None
    return {k: v for k, v in timings.items() if isinstance(v, int | float)}


class _TokenCounts:
    """Token counts by source, with the precedence ``usage`` > ``timings`` > ``chunks``."""

    def __init__(
        self, usage: dict[str, Any] | None, timings: dict[str, Any] | None, chunks: int
    ) -> None:
        usage = usage or {}
        timings = timings or {}
        self.by_source: dict[TokenSource, int] = {}
        sources: tuple[tuple[TokenSource, object], ...] = (
            ("usage", usage.get("completion_tokens")),
            ("timings", timings.get("predicted_n")),
        )
        for source, value in sources:
            if isinstance(value, int):
                self.by_source[source] = value
        if chunks:
            self.by_source["chunks"] = chunks
        self.completion_source: TokenSource | None = next(iter(self.by_source), None)
        self.completion = self.by_source[self.completion_source] if self.completion_source else None
        prompt_usage, prompt_timings = usage.get("prompt_tokens"), timings.get("prompt_n")
        cache_n = timings.get("cache_n")
        self.prompt: int | None
        self.prompt_source: TokenSource | None
        if isinstance(prompt_usage, int):
            self.prompt, self.prompt_source = prompt_usage, "usage"
        elif isinstance(prompt_timings, int):
            # llama.cpp's prompt_n counts only the tokens it had to evaluate; cached ones are extra.
            self.prompt = prompt_timings + (cache_n if isinstance(cache_n, int) else 0)
            self.prompt_source = "timings"
        else:
            self.prompt, self.prompt_source = None, None
        server = [v for k, v in self.by_source.items() if k != "chunks"]
        self.claimed_unseen = max(server) if server and not chunks else 0
        """Completion tokens the server reported when no text chunk arrived (0: none)."""
        self.mismatch = (
            len(set(server)) > 1 or bool(server and chunks > max(server)) or self.claimed_unseen > 0
        )
        details = usage.get("completion_tokens_details") or {}
        reasoning = details.get("reasoning_tokens") if isinstance(details, dict) else None
        if reasoning is None:
            # SGLang reports them at the top level of ``usage``, not under the details object.
            reasoning = usage.get("reasoning_tokens")
        self.reasoning = reasoning if isinstance(reasoning, int) else None
        prompt_details = usage.get("prompt_tokens_details") or {}
        cached = prompt_details.get("cached_tokens") if isinstance(prompt_details, dict) else None
        if not isinstance(cached, int):
            cached = cache_n if isinstance(cache_n, int) else None
        self.cached = cached
