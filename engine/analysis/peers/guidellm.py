"""GuideLLM's definitions, read from GuideLLM main at ee7a7745 (v0.7.3 + 12 commits):
``src/guidellm/schemas/request_stats.py`` for the per-request figures,
``src/guidellm/backends/openai/http.py`` for the instants they use,
``src/guidellm/benchmark/schemas/metrics.py`` and ``src/guidellm/schemas/statistics.py`` for
the aggregates.

GuideLLM's time per output token *includes the first token* (the whole request up to the last
token, over every output token), its inter-token latency excludes it, and both are averaged
weighted by tokens; its percentiles are the first value whose weighted cumulative share
reaches the percentile (no interpolation).
"""

from __future__ import annotations

from engine.analysis.peers.model import (
    PeerDefinition,
    PeerValue,
    ProfileRequests,
    rate_value,
    span_s,
    usage_tokens,
)
from engine.analysis.peers.stats import guidellm_stats
from engine.records import RequestRecord

STATS = "src/guidellm/schemas/request_stats.py"
HTTP = "src/guidellm/backends/openai/http.py"
METRICS = "src/guidellm/benchmark/schemas/metrics.py"


class Guidellm(PeerDefinition):
    """``guidellm benchmark`` with the OpenAI HTTP backend, streaming."""

    key = "guidellm"
    version = "0.7.3+ee7a7745"

    def values(self, requests: ProfileRequests) -> list[PeerValue]:
        """The six core metrics by this peer's definitions, then its own ones."""
        ok = requests.ok
        window = requests.window_s()
        tpots = [(t, float(output_tokens(r))) for r in ok if (t := tpot_s(r)) is not None]
        itls = [(t, float(output_tokens(r) - 1)) for r in ok if (t := itl_s(r)) is not None]
        return [
            # time_to_first_token_ms = first_token_iteration - request_start
            # (request_stats.py 162-171); request_start is set before the stream opens and
            # first_token_iteration at the first line with text (http.py 512, 537-539).
            PeerValue(
                key="ttft",
                name="time_to_first_token_ms",
                unit="s",
                formula="first_token_ns - sent_ns",
                source=f"{STATS}:162-171; {HTTP}:512,537-539; {METRICS}:936-940",
                **guidellm_stats([span_s(r.sent_ns, r.first_token_ns) or 0.0 for r in ok]),
            ),
            # time_per_output_token_ms = (last_token_iteration - request_start) /
            # output_tokens, first token included (request_stats.py 175-192), weighted by
            # output_tokens (metrics.py 948-955).
            PeerValue(
                key="tpot",
                name="time_per_output_token_ms",
                unit="s",
                formula="(last_token_ns - sent_ns) / output_tokens (first token included), "
                "weighted by output_tokens",
                source=f"{STATS}:175-192; {METRICS}:948-955",
                **guidellm_stats([t for t, _ in tpots], [w for _, w in tpots]),
            ),
            # inter_token_latency_ms = (last_token_iteration - first_token_iteration) /
            # (output_tokens - 1) (request_stats.py 196-213), weighted by output_tokens - 1
            # (metrics.py 957-964).
            PeerValue(
                key="itl",
                name="inter_token_latency_ms",
                unit="s",
                formula="(last_token_ns - first_token_ns) / (output_tokens - 1), "
                "weighted by output_tokens - 1",
                source=f"{STATS}:196-213; {METRICS}:957-964",
                **guidellm_stats([t for t, _ in itls], [w for _, w in itls]),
            ),
            # request_latency = request_end - request_start (request_stats.py 103-114),
            # request_end taken after the stream ended (http.py 555).
            PeerValue(
                key="e2e",
                name="request_latency",
                unit="s",
                formula="end_ns - sent_ns",
                source=f"{STATS}:103-114; {HTTP}:555; {METRICS}:905-910",
                **guidellm_stats([span_s(r.sent_ns, r.end_ns) or 0.0 for r in ok]),
            ),
            # A rate distribution's mean is its events over the measure window
            # (statistics.py 313-390: rates weighted by their durations, which add up to the
            # window); the window runs from the scheduler's start to the last request's end
            # (metrics.py 861-862, accumulator.py 171-212).
            rate_value(
                "output_throughput",
                "output_tokens_per_second",
                "tok/s",
                sum(output_tokens(r) for r in ok),
                window,
                count=len(ok),
                formula="sum(output_tokens) / (max end_ns - min scheduled_ns)",
                source=f"{METRICS}:861-862,972-977; src/guidellm/schemas/statistics.py:313-390",
            ),
            rate_value(
                "request_throughput",
                "requests_per_second",
                "req/s",
                len(ok),
                window,
                count=len(ok),
                formula="successful requests / (max end_ns - min scheduled_ns)",
                source=f"{METRICS}:861-862,882-889; src/guidellm/schemas/statistics.py:313-390",
            ),
        ]


def output_tokens(r: RequestRecord) -> int:
    """GuideLLM's ``output_tokens``: usage's count, else the number of streamed iterations
    that carried text (request_stats.py 135-144; http.py 553).
    """
    return usage_tokens(r) or r.token_chunks


def tpot_s(r: RequestRecord) -> float | None:
    """GuideLLM's time per output token of one request (first token included)."""
    n = output_tokens(r)
    elapsed = span_s(r.sent_ns, r.last_token_ns or r.end_ns)
    return elapsed / n if n and elapsed is not None else None


def itl_s(r: RequestRecord) -> float | None:
    """GuideLLM's inter-token latency of one request; ``None`` below two tokens."""
    n = output_tokens(r)
    decode = span_s(r.first_token_ns, r.last_token_ns)
    return decode / (n - 1) if n > 1 and decode is not None else None
