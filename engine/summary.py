"""Aggregates per profile and per run: what ``summary.json`` holds.

Warm-up requests never enter an aggregate. Definitions (also in README.md):

* duration_s: measured phase of the profile, from its first measured request being scheduled to
  the end of its last one, minus pauses between rounds.
* requests_per_s = successful requests / duration_s.
* input_tokens_per_s = sum of prompt tokens of successful requests / duration_s;
  output_tokens_per_s likewise with completion tokens; total = input + output.
* Latency distributions are over successful requests (ITL: over every gap of every successful
  request, pooled). Percentiles interpolate linearly between closest ranks (NumPy's default).
* goodput: successful requests meeting every SLO (TTFT <= slo_ttft_s when set, TPOT <= slo_tpot_s;
  a request with one token has no TPOT and meets that SLO), per second of duration_s.
"""

from __future__ import annotations

from array import array
from collections import Counter
from collections.abc import Iterable

from pydantic import BaseModel, ConfigDict

from engine.profile import Profile
from engine.records import RequestRecord
from engine.stats import mean, percentile


class Distribution(BaseModel):
    """Summary statistics of one latency, in seconds."""

    model_config = ConfigDict(frozen=True)

    count: int
    """Samples."""
    mean: float
    """Arithmetic mean."""
    p50: float
    """Median."""
    p90: float
    """90th percentile."""
    p95: float
    """95th percentile."""
    p99: float
    """99th percentile."""
    max: float
    """Largest sample."""

    @classmethod
    def of(cls, values: Iterable[float]) -> Distribution | None:
        """Summarise ``values``; ``None`` when there are none."""
        ordered = sorted(values)
        if not ordered:
            return None
        return cls(count=len(ordered), mean=mean(ordered), p50=percentile(ordered, 50),
                   p90=percentile(ordered, 90), p95=percentile(ordered, 95),
                   p99=percentile(ordered, 99), max=ordered[-1])


class Slo(BaseModel):
    """Service-level objectives used for goodput."""

    model_config = ConfigDict(frozen=True)

    ttft_s: float | None = None
    """TTFT must be at most this (``None``: no TTFT objective)."""
    tpot_s: float | None = 0.1
    """TPOT must be at most this. Default 100 ms: a fluent stream needs 10+ tokens/s per user."""

    def met_by(self, record: RequestRecord) -> bool:
        """True when a successful record meets every objective."""
        if self.ttft_s is not None and (record.ttft_s is None or record.ttft_s > self.ttft_s):
            return False
        return self.tpot_s is None or record.tpot_s is None or record.tpot_s <= self.tpot_s


class ProfileSummary(BaseModel):
    """Aggregate of one profile's measured requests."""

    profile: str
    """Profile name."""
    description: str
    """Profile purpose."""
    load: str
    """``c=8`` or ``5 rps poisson``."""
    concurrency: int | None
    """Closed-loop concurrency."""
    rate_rps: float | None
    """Open-loop arrival rate."""
    status: str
    """``completed``, ``stopped`` (sending stopped early) or ``interrupted`` (Ctrl+C)."""
    requests: int
    """Measured requests recorded (warm-up excluded)."""
    warmup_requests: int
    """Warm-up requests recorded (excluded from everything else here)."""
    successes: int
    """Requests that completed."""
    failures: int
    """Requests that failed, cancelled ones included."""
    failures_by_kind: dict[str, int]
    """Failures per ``ErrorKind``."""
    duration_s: float
    """Measured window (see module docstring)."""
    requests_per_s: float
    """Successful requests per second."""
    input_tokens_total: int
    """Prompt tokens of successful requests."""
    output_tokens_total: int
    """Completion tokens of successful requests."""
    input_tokens_per_s: float
    """Prompt tokens per second."""
    output_tokens_per_s: float
    """Completion tokens per second."""
    total_tokens_per_s: float
    """Prompt plus completion tokens per second."""
    mean_input_tokens: float | None
    """Mean prompt tokens per successful request."""
    mean_output_tokens: float | None
    """Mean completion tokens per successful request."""
    ttft_s: Distribution | None
    """Time to first token."""
    ttfc_s: Distribution | None
    """Time to first visible content token."""
    tpot_s: Distribution | None
    """Time per output token after the first."""
    itl_s: Distribution | None
    """Inter-token latency, all gaps pooled."""
    e2e_s: Distribution | None
    """End-to-end latency."""
    e2e_from_scheduled_s: Distribution | None
    """End-to-end latency from the scheduled arrival (differs from e2e when llmtop ran late)."""
    slo: Slo
    """The objectives goodput used."""
    good_requests: int
    """Successful requests meeting every SLO."""
    goodput_rps: float
    """Good requests per second."""
    token_sources: dict[str, int]
    """Successful requests per completion-token source (usage, timings, chunks)."""
    token_count_mismatches: int
    """Requests whose token sources disagreed."""
    exact_output_requested: int
    """Requests that asked for exactly max_tokens."""
    exact_output_honoured: int
    """Of those, requests that got exactly max_tokens."""
    retries: int
    """Re-sends (closed keep-alive connections, rejected optional fields)."""
    client_queue_wait_p99_s: float | None
    """p99 time spent waiting for a connection inside the client (should be ~0)."""
    schedule_lag_p99_s: float | None
    """p99 lateness of llmtop's sends against their schedule."""


class ProfileAggregate:
    """Collects a profile's records; produces its ``ProfileSummary``. Keeps one float per
    request per latency and one per token gap (8 bytes each), nothing else.
    """

    def __init__(self, profile: Profile, slo: Slo) -> None:
        self.profile = profile
        self.slo = slo
        self.records: list[RequestRecord] = []
        self.warmup = 0
        self._gaps = array("d")

    def add(self, record: RequestRecord, gaps: Iterable[float] = ()) -> None:
        """Count a finished request (warm-up ones only as a number)."""
        if record.warmup:
            self.warmup += 1
            return
        self.records.append(record)
        if record.ok:
            self._gaps.extend(gaps)

    def summarize(self, duration_s: float, status: str) -> ProfileSummary:
        """Aggregate what was recorded over ``duration_s`` seconds."""
        ok = [r for r in self.records if r.ok]
        failed = [r for r in self.records if not r.ok]
        per_s = (lambda n: n / duration_s) if duration_s > 0 else (lambda n: 0.0)
        tokens_in = sum(r.prompt_tokens or 0 for r in ok)
        tokens_out = sum(r.completion_tokens or 0 for r in ok)
        good = sum(1 for r in ok if self.slo.met_by(r))

        def dist(name: str) -> Distribution | None:
            return Distribution.of(v for r in ok if (v := getattr(r, name)) is not None)

        def p99(name: str) -> float | None:
            d = Distribution.of(v for r in self.records if (v := getattr(r, name)) is not None)
            return d.p99 if d else None

        return ProfileSummary(
            profile=self.profile.name, description=self.profile.description,
            load=self.profile.load_label, concurrency=self.profile.concurrency,
            rate_rps=self.profile.rate_rps, status=status,
            requests=len(self.records), warmup_requests=self.warmup,
            successes=len(ok), failures=len(failed),
            failures_by_kind=dict(Counter(str(r.error_kind) for r in failed)),
            duration_s=duration_s, requests_per_s=per_s(len(ok)),
            input_tokens_total=tokens_in, output_tokens_total=tokens_out,
            input_tokens_per_s=per_s(tokens_in), output_tokens_per_s=per_s(tokens_out),
            total_tokens_per_s=per_s(tokens_in + tokens_out),
            mean_input_tokens=tokens_in / len(ok) if ok else None,
            mean_output_tokens=tokens_out / len(ok) if ok else None,
            ttft_s=dist("ttft_s"), ttfc_s=dist("ttfc_s"), tpot_s=dist("tpot_s"),
            itl_s=Distribution.of(self._gaps), e2e_s=dist("e2e_s"),
            e2e_from_scheduled_s=dist("e2e_from_scheduled_s"),
            slo=self.slo, good_requests=good, goodput_rps=per_s(good),
            token_sources=dict(Counter(str(r.completion_tokens_source) for r in ok)),
            token_count_mismatches=sum(1 for r in self.records if r.token_count_mismatch),
            exact_output_requested=sum(1 for r in self.records if r.exact_output_requested),
            exact_output_honoured=sum(1 for r in self.records if r.exact_output_honoured),
            retries=sum(r.retries for r in self.records),
            client_queue_wait_p99_s=p99("client_queue_wait_s"),
            schedule_lag_p99_s=p99("schedule_lag_s"),
        )


class ClientHealth(BaseModel):
    """Signals about llmtop itself: if these are bad, its latencies are suspect."""

    loop_lag_p50_ms: float | None
    """Median event-loop lag (how late a 10 ms timer fired)."""
    loop_lag_p99_ms: float | None
    """99th percentile event-loop lag."""
    loop_lag_max_ms: float | None
    """Worst event-loop lag."""
    sink_time_s: float
    """Time spent in event consumers (writer, console, UI) on the engine's loop."""


class RunSummary(BaseModel):
    """Everything ``summary.json`` holds."""

    run_id: str
    """Run id (also the results folder name)."""
    status: str
    """``completed``, ``interrupted`` or ``failed``."""
    exit_code: int
    """The exit code llmtop ended with."""
    started_unix_s: float
    """Wall-clock start of the run."""
    duration_s: float
    """Wall time of the whole run, warm-up and pauses included."""
    profiles: list[ProfileSummary]
    """One aggregate per profile, in run order."""
    client: ClientHealth
    """llmtop's own health during the run."""
    notices: list[str]
    """Adaptations and warnings raised during the run."""
    error: str | None = None
    """Why the run failed, when it did."""
