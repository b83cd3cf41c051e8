"""What a peer's recomputed figure is, and the base every peer definition builds on.

A ``PeerValue`` is one metric as one peer defines it (its own name, the formula in llmtop's
record fields, the file and line of the peer's source it comes from), and a ``PeerFigures`` is
every such value of one peer over one profile's measured requests.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from pydantic import BaseModel, ConfigDict

from engine.analysis.peers.stats import numpy_stats
from engine.records import RequestRecord
from engine.stats import NS

Unit = Literal["s", "tok/s", "req/s"]
"""Latencies in seconds, throughputs per second."""

CORE_METRICS = ("ttft", "tpot", "itl", "e2e", "output_throughput", "request_throughput")
"""The metrics every peer is asked for, in display order; peers may add their own after."""

NO_CHOICE_TIMES = "requests recorded before llmtop kept choice events (first_choice_ns) left out"
"""The note on a value that needs ``first_choice_ns``/``last_choice_ns`` in an older run."""
NEEDS_SAVED_GAPS = "percentiles need the raw gaps: record the run with --save-itl"
"""The note on a value whose distribution needs ``itl_s`` when the run did not save it."""


class PeerValue(BaseModel):
    """One metric as one peer defines it, over one profile's measured requests.

    A latency has ``mean``/``std``/percentiles over its per-request (or per-gap) values; a
    throughput has only ``mean`` (the one figure). A field the peer does not report, or that
    the records cannot give, is ``None`` and ``note`` says why.
    """

    model_config = ConfigDict(frozen=True)

    key: str
    """llmtop's name for the metric (``ttft``, ``tpot``, ``itl``, ``e2e``,
    ``output_throughput``, ``request_throughput``) or a peer-only one (``ttfr``...)."""
    name: str
    """What the peer calls it in its output (``mean_ttft_ms``, ``time_per_output_token_ms``)."""
    unit: Unit
    """Unit of ``mean``, ``std`` and the percentiles."""
    count: int
    """Values the statistics are over (requests, or gaps for a pooled ITL)."""
    mean: float | None
    """Mean (the peer's own weighting, if it weights), or the throughput itself."""
    std: float | None = None
    """Standard deviation as the peer computes it (population)."""
    p50: float | None = None
    """Median, by the peer's percentile method."""
    p90: float | None = None
    """90th percentile."""
    p99: float | None = None
    """99th percentile."""
    formula: str
    """The definition in llmtop's record fields."""
    source: str
    """File and lines of the peer's source the definition was taken from."""
    note: str | None = None
    """What is approximated or missing, and why."""


class PeerFigures(BaseModel):
    """Every recomputed metric of one peer over one profile."""

    model_config = ConfigDict(frozen=True)

    peer: str
    """The peer's key (``vllm``, ``sglang``, ``aiperf``, ``guidellm``, ``llama-benchy``)."""
    version: str
    """The peer version whose source the definitions were read from."""
    profile: str
    """The llmtop profile the requests belong to."""
    requests: int
    """Measured requests of the profile (warm-up excluded), failed ones included."""
    values: list[PeerValue]
    """The metrics, core ones first (``CORE_METRICS`` order)."""

    def value(self, key: str) -> PeerValue | None:
        """The value of metric ``key``, if this peer has it."""
        return next((v for v in self.values if v.key == key), None)


@dataclass(frozen=True)
class ProfileRequests:
    """One profile's measured requests (warm-up excluded), failed ones included."""

    profile: str
    """The profile's name."""
    records: Sequence[RequestRecord]
    """Its records, in file order."""
    concurrency: int | None = None
    """Its closed-loop concurrency (``None`` in open loop)."""

    @property
    def ok(self) -> list[RequestRecord]:
        """The successful ones (every peer here aggregates only successful requests)."""
        return [r for r in self.records if r.ok and r.sent_ns is not None]

    def window_s(self) -> float | None:
        """From the first request's scheduled time to the last one's end: the span of a
        benchmark loop that starts its clock before issuing the first request and stops it
        after the last one returns (vLLM's and SGLang's ``benchmark_duration``, AIPerf's
        profiling phase, GuideLLM's measure window).
        """
        if not self.records:
            return None
        start = min(r.scheduled_ns for r in self.records)
        end = max(r.end_ns for r in self.records)
        return (end - start) / NS if end > start else None


def span_s(start_ns: int | None, end_ns: int | None) -> float | None:
    """``(end - start)`` in seconds; ``None`` when either is unknown."""
    return None if start_ns is None or end_ns is None else (end_ns - start_ns) / NS


def usage_tokens(record: RequestRecord) -> int | None:
    """Completion tokens from the server's ``usage`` object, if it sent one."""
    return record.completion_tokens_by_source.get("usage")


def rate_value(
    key: str,
    name: str,
    unit: Unit,
    amount: float,
    window_s: float | None,
    *,
    count: int,
    formula: str,
    source: str,
    note: str | None = None,
) -> PeerValue:
    """A throughput: ``amount`` (tokens or requests) over ``window_s``."""
    return PeerValue(
        key=key,
        name=name,
        unit=unit,
        count=count,
        mean=amount / window_s if window_s else None,
        formula=formula,
        source=source,
        note=note,
    )


def text_gaps_value(ok: Sequence[RequestRecord], *, key: str, name: str, source: str) -> PeerValue:
    """The gaps between consecutive text chunks (``itl_s``), pooled over requests: a peer
    that times text chunks (SGLang's ITL, AIPerf's inter-chunk latency). Without saved gaps
    only the mean: a request's gaps add up to ``last_token - first_token``.
    """
    formula = "gaps between consecutive text chunks (itl_s), pooled"
    if all(r.itl_s is not None for r in ok):
        return PeerValue(
            key=key,
            name=name,
            unit="s",
            formula=formula,
            source=source,
            **numpy_stats([g for r in ok for g in r.itl_s or ()]),
        )
    gaps = sum(max(r.token_chunks - 1, 0) for r in ok)
    total = sum(span_s(r.first_token_ns, r.last_token_ns) or 0.0 for r in ok)
    return PeerValue(
        key=key,
        name=name,
        unit="s",
        count=gaps,
        mean=total / gaps if gaps else None,
        formula=formula,
        source=source,
        note=f"mean only: {NEEDS_SAVED_GAPS}",
    )


def absent_value(key: str, unit: Unit, note: str) -> PeerValue:
    """A metric the peer does not report (``note`` says so, or what stands for it)."""
    return PeerValue(
        key=key, name="-", unit=unit, count=0, mean=None, formula="-", source="-", note=note
    )


def join_notes(*notes: str | None) -> str | None:
    """The notes that are set, joined with ``; ``; ``None`` when none is."""
    kept = [n for n in notes if n]
    return "; ".join(kept) or None


class PeerDefinition(ABC):
    """One peer's definitions: a subclass per peer, each formula beside its citation."""

    key: str
    """The name ``--definitions`` takes."""
    version: str
    """The peer version (and commit) the formulas were read from."""

    def figures(self, requests: ProfileRequests) -> PeerFigures:
        """Every metric of this peer over ``requests``."""
        return PeerFigures(
            peer=self.key,
            version=self.version,
            profile=requests.profile,
            requests=len(requests.records),
            values=self.values(requests),
        )

    @abstractmethod
    def values(self, requests: ProfileRequests) -> list[PeerValue]:
        """The metrics, core ones first."""
