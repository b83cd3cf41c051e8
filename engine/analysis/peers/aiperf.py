"""AIPerf's definitions, read from AIPerf 0.13.0 (``aiperf/metrics/types/*.py`` and the modules
they rely on, as installed by ``pip install aiperf==0.13.0``).

AIPerf times *content responses*: SSE events whose parsed data is non-empty, i.e. that carry
content or reasoning text (``common/models/record_models.py`` 1664, ``endpoints/openai_chat.py``
326-360), so its TTFT is llmtop's. Its request latency ends at the last content response (the
finish chunk, usage chunk and ``[DONE]`` after it are not in it) and its ITL is a per-request
average over the output length. Its throughputs are over the profiling phase's window (phase
start to the last request's return), *not* over the ``benchmark_duration`` it also reports
(first request start to last content response): measured against AIPerf 0.13 itself, see
bench/RESULTS.md. Only successful requests are aggregated; AIPerf's separate ``adj_*``
percentiles that count failures as infinite are not recomputed.
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

TYPES = "aiperf/metrics/types"
METRIC_DICTS = "aiperf/metrics/metric_dicts.py"
RECORDS_MANAGER = "aiperf/records/records_manager.py"
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
        window = requests.window_s()
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
            # output_token_throughput = total OSL / observation duration
            # (output_token_throughput_metrics.py 40-42), request_throughput = valid requests /
            # the same (request_throughput_metric.py 35-37). The duration is the phase's window
            # when it is set (metric_dicts.py 217-238), and the profile export sets it: from
            # the profiling phase's start to its last request's return
            # (records/records_manager.py 2073-2079, timing/phase/progress_tracker.py 253-255).
            rate_value(
                "output_throughput",
                "output_token_throughput",
                "tok/s",
                sum(osl(r) for r in ok),
                window,
                count=len(ok),
                formula="sum(OSL) / (max end_ns - min scheduled_ns)",
                source=f"{TYPES}/output_token_throughput_metrics.py:40-42; "
                f"{METRIC_DICTS}:217-238; {RECORDS_MANAGER}:2073-2079",
                note=_osl_note(ok),
            ),
            rate_value(
                "request_throughput",
                "request_throughput",
                "req/s",
                len(ok),
                window,
                count=len(ok),
                formula="successful requests / (max end_ns - min scheduled_ns)",
                source=f"{TYPES}/request_throughput_metric.py:35-37; "
                f"{METRIC_DICTS}:217-238; {RECORDS_MANAGER}:2073-2079",
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


def _osl_note(ok: list[RequestRecord]) -> str:
    without = sum(1 for r in ok if usage_tokens(r) is None)
    if without:
        return f"{NO_SERVER_COUNT}; {without} requests had no usage: llmtop's best count"
    return NO_SERVER_COUNT
