"""AIPerf's definitions, read from AIPerf 0.13.0 (``aiperf/metrics/types/*.py`` and the modules
they rely on, as installed by ``pip install aiperf==0.13.0``).

AIPerf times *content responses*: SSE events whose parsed data is non-empty, i.e. that carry
content or reasoning text (``common/models/record_models.py`` 1664, ``endpoints/openai_chat.py``
326-360), so its TTFT is llmtop's. Its request latency ends at the last content response (the
finish chunk, usage chunk and ``[DONE]`` after it are not in it), its ITL is a per-request
average over the output length, and its throughputs run over the benchmark duration: first
request start to last content response. Only successful requests are aggregated; AIPerf's
separate ``adj_*`` percentiles that count failures as infinite are not recomputed.
"""

from __future__ import annotations

from engine.analysis.peers.model import (
    PeerDefinition,
    PeerValue,
    ProfileRequests,
    absent_value,
    rate_value,
    span_s,
    text_gaps_value,
    usage_tokens,
)
from engine.analysis.peers.stats import numpy_stats
from engine.records import RequestRecord
from engine.stats import NS

TYPES = "aiperf/metrics/types"
NO_SERVER_COUNT = (
    "OSL from usage, as with --use-server-token-count (by default AIPerf tokenizes the text)"
)


class Aiperf(PeerDefinition):
    """``aiperf profile --streaming --use-server-token-count`` against an OpenAI endpoint."""

    key = "aiperf"
    version = "0.13.0"

    def values(self, requests: ProfileRequests) -> list[PeerValue]:
        """The six core metrics by this peer's definitions, then its own ones."""
        ok = requests.ok
        window = duration_s(ok)
        return [
            # TTFT = content_responses[0].perf_ns - start_perf_ns: ttft_metric.py 49-56;
            # start_perf_ns is taken just before the request is written
            # (transports/aiohttp_client.py 156-158).
            PeerValue(
                key="ttft",
                name="time_to_first_token",
                unit="s",
                formula="first_token_ns - sent_ns",
                source=f"{TYPES}/ttft_metric.py:49-56; aiperf/transports/aiohttp_client.py:156",
                **numpy_stats([span_s(r.sent_ns, r.first_token_ns) or 0.0 for r in ok]),
            ),
            # AIPerf has no TPOT: its inter_token_latency (next) is vLLM's TPOT formula.
            absent_value(
                "tpot",
                "s",
                "AIPerf reports no TPOT: its inter_token_latency is (latency - TTFT) / "
                "(OSL - 1), vLLM's TPOT formula",
            ),
            # inter_token_latency = (request_latency - TTFT) / (OSL - 1) per request
            # (inter_token_latency_metric.py 63-102; without --per-chunk-usage the first
            # chunk counts one token, 78-81).
            PeerValue(
                key="itl",
                name="inter_token_latency",
                unit="s",
                formula="(last_token_ns - first_token_ns) / (OSL - 1) where OSL >= 2",
                source=f"{TYPES}/inter_token_latency_metric.py:63-102",
                note=_osl_note(ok),
                **numpy_stats([t for r in ok if (t := itl_s(r)) is not None]),
            ),
            # request_latency = content_responses[-1].perf_ns - start_perf_ns:
            # request_latency_metric.py 38-49.
            PeerValue(
                key="e2e",
                name="request_latency",
                unit="s",
                formula="last_token_ns - sent_ns (the last chunk with text)",
                source=f"{TYPES}/request_latency_metric.py:38-49",
                **numpy_stats([span_s(r.sent_ns, r.last_token_ns) or 0.0 for r in ok]),
            ),
            # output_token_throughput = total OSL / benchmark_duration
            # (output_token_throughput_metrics.py 40-42); request_throughput = valid
            # requests / benchmark_duration (request_throughput_metric.py 35-37).
            rate_value(
                "output_throughput",
                "output_token_throughput",
                "tok/s",
                sum(osl(r) for r in ok),
                window,
                count=len(ok),
                formula="sum(OSL) / (max last_token_ns - min sent_ns)",
                source=f"{TYPES}/output_token_throughput_metrics.py:40-42",
                note=_osl_note(ok),
            ),
            rate_value(
                "request_throughput",
                "request_throughput",
                "req/s",
                len(ok),
                window,
                count=len(ok),
                formula="successful requests / (max last_token_ns - min sent_ns)",
                source=f"{TYPES}/request_throughput_metric.py:35-37",
            ),
            # inter_chunk_latency: gaps between consecutive content responses, pooled
            # (inter_chunk_latency_metric.py 56-74): llmtop's own ITL gaps.
            text_gaps_value(
                ok,
                key="icl",
                name="inter_chunk_latency",
                source=f"{TYPES}/inter_chunk_latency_metric.py:56-74",
            ),
        ]


def osl(r: RequestRecord) -> int:
    """AIPerf's output sequence length (output + reasoning tokens, output_sequence_length_metric
    .py 50): usage's ``completion_tokens`` (reasoning included), else llmtop's best count.
    """
    return usage_tokens(r) or r.completion_tokens or 0


def itl_s(r: RequestRecord) -> float | None:
    """AIPerf's inter-token latency of one request; ``None`` below two tokens (64-65)."""
    n = osl(r)
    decode = span_s(r.first_token_ns, r.last_token_ns)
    return decode / (n - 1) if n >= 2 and decode is not None else None


def duration_s(ok: list[RequestRecord]) -> float | None:
    """``benchmark_duration`` = max response timestamp - min request timestamp
    (benchmark_duration_metric.py 38-46), the max response being each request's start plus
    its request latency (max_response_metric.py 48), the min its start
    (min_request_metric.py 42).
    """
    starts = [r.sent_ns for r in ok if r.sent_ns is not None]
    ends = [r.last_token_ns for r in ok if r.last_token_ns is not None]
    if not starts or not ends or max(ends) <= min(starts):
        return None
    return (max(ends) - min(starts)) / NS


def _osl_note(ok: list[RequestRecord]) -> str:
    without = sum(1 for r in ok if usage_tokens(r) is None)
    if without:
        return f"{NO_SERVER_COUNT}; {without} requests had no usage: llmtop's best count"
    return NO_SERVER_COUNT
