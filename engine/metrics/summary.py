"""Aggregates per profile and per run: what ``summary.json`` holds.

Warm-up requests never enter an aggregate. Definitions (also in README.md):

* duration_s: measured phase of the profile, from its first measured request being scheduled to
  the end of its last one, minus pauses between rounds.
* requests_per_s = successful requests / duration_s.
* input_tokens_per_s = sum of prompt tokens of successful requests / duration_s;
  output_tokens_per_s likewise with completion tokens; total = input + output.
* Latency distributions are over successful requests (ITL: over every gap of every successful
  request, pooled). Percentiles interpolate linearly between closest ranks (NumPy's default);
  exact up to ``EXACT_SAMPLES`` (100,000) values per figure, from a sketch within 0.5 % beyond
  (``Distribution.exact``; engine/metrics/sketch.py), so memory stays flat in run length.
* goodput: successful requests meeting every SLO (TTFT <= slo_ttft_s when set, TPOT <= slo_tpot_s;
  a request with one token has no TPOT and meets that SLO), per second of duration_s.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from typing import Any

from pydantic import BaseModel, ConfigDict

from engine.metrics.client_health import ClientHealth
from engine.metrics.failures import Outage, describe_failure
from engine.metrics.knee import Knee
from engine.metrics.sketch import EXACT_SAMPLES, StreamingDistribution
from engine.metrics.validity import ValidityIssue
from engine.records import ErrorKind, RequestRecord
from engine.stats import mean, percentile
from engine.status import FinalRunStatus, ProfileStatus
from engine.workload.profile import Profile


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
    exact: bool = True
    """False when the percentiles come from a sketch (more than ``EXACT_SAMPLES`` values,
    engine/metrics/sketch.py): each within 0.5 % of a value of its rank; count, mean and max
    stay exact. ``engine.results.runs.exact_distributions`` recomputes them from the records."""

    @classmethod
    def of(cls, values: Iterable[float]) -> Distribution | None:
        """Summarise ``values``; ``None`` when there are none."""
        ordered = sorted(values)
        if not ordered:
            return None
        return cls(
            count=len(ordered),
            mean=mean(ordered),
            p50=percentile(ordered, 50),
            p90=percentile(ordered, 90),
            p95=percentile(ordered, 95),
            p99=percentile(ordered, 99),
            max=ordered[-1],
        )

    @classmethod
    def of_stream(cls, values: StreamingDistribution) -> Distribution | None:
        """Summarise a streaming distribution: exact while it kept every value."""
        if values.values is not None:
            return cls.of(values.values)
        p50, p90, p95, p99 = values.percentiles((50, 90, 95, 99))
        return cls(
            count=values.count,
            mean=values.total / values.count,
            p50=p50,
            p90=p90,
            p95=p95,
            p99=p99,
            max=values.high,
            exact=False,
        )


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
    status: ProfileStatus
    """``completed``, ``stopped`` (sending stopped early), ``interrupted`` (Ctrl+C), ``failed``,
    or ``incomplete`` (rebuilt from the records of a killed run)."""
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
    prompt_calibration: dict[str, Any] | None = None
    """Prompt tokens per word and the server's fixed tokens around a prompt, as measured
    before the profile (``tokens_per_word``, ``overhead_tokens``, the two points)."""
    input_length_error_pct: Distribution | None = None
    """How far the server-reported prompt length fell from the requested one, in percent
    (100 * (prompt_tokens - requested) / requested), over successful requests that had a
    requested length. Prompts are built from words, so the chat template and the tokenizer
    move it; this figure says by how much."""
    client_queue_wait_p99_s: float | None
    """p99 time spent waiting for a connection inside the client (should be ~0)."""
    schedule_lag_p99_s: float | None
    """p99 lateness of llmtop's sends against their schedule."""
    telemetry: dict[str, Any] | None = None
    """GPU, host and server-metrics figures over the measured window (engine/telemetry/sampler.py):
    per-GPU utilization, memory, power and energy, joules per output token, output tokens/s
    per watt, and the server's own latency percentiles next to the client's."""
    top_failure: str | None = None
    """The most common failure, as a person reads it (``HTTP 401 invalid api key``,
    ``connect: connection refused``); ``None`` without failures other than cancelled ones."""
    top_failure_count: int = 0
    """How many measured requests failed that way."""
    error: str | None = None
    """Why the profile failed when every measured request did (``all 24 requests failed: HTTP
    401 invalid api key``); ``None`` otherwise."""
    saturation_stop: str | None = None
    """Why the over-saturation stop ended this step early (``stopped at concurrency 128: TTFT
    grew 4.1x in 20 s ...``; README "When the server falls over"); ``None`` otherwise."""


LATENCY_FIELDS = ("ttft_s", "ttfc_s", "tpot_s", "e2e_s", "e2e_from_scheduled_s")
"""Per-request latencies aggregated over successful requests."""
CLIENT_FIELDS = ("client_queue_wait_s", "schedule_lag_s")
"""Per-request client-side delays aggregated over every measured request."""


class ProfileAggregate:
    """Collects a profile's records into its ``ProfileSummary``.

    Keeps one float per request per latency and one per token gap (8 bytes each) up to
    ``exact_limit`` values each, then a sketch of bounded size (engine/metrics/sketch.py), plus
    counters; never the records themselves: those are on disk in ``requests.jsonl``.
    ``exact_limit`` ``None`` keeps every value (figures read back from disk).
    """

    def __init__(self, profile: Profile, slo: Slo, exact_limit: int | None = EXACT_SAMPLES) -> None:
        self.profile = profile
        self.slo = slo
        self.requests = self.warmup = self.successes = self.good = 0
        self.tokens_in = self.tokens_out = 0
        self.failures: Counter[str] = Counter()
        self.failure_texts: Counter[str] = Counter()
        self.sources: Counter[str] = Counter()
        self.mismatches = self.exact_requested = self.exact_honoured = self.retries = 0
        self._values = {
            name: StreamingDistribution(exact_limit) for name in (*LATENCY_FIELDS, *CLIENT_FIELDS)
        }
        self._gaps = StreamingDistribution(exact_limit)
        self._length_error = StreamingDistribution(exact_limit)

    def add(self, record: RequestRecord, gaps: Sequence[float] = ()) -> None:
        """Count a finished request (warm-up ones only as a number)."""
        if record.warmup:
            self.warmup += 1
            return
        self.requests += 1
        self.mismatches += record.token_count_mismatch
        self.exact_requested += record.exact_output_requested
        self.exact_honoured += bool(record.exact_output_honoured)
        self.retries += record.retries
        self._collect(record, CLIENT_FIELDS)
        if not record.ok:
            self.failures[str(record.error_kind)] += 1
            if record.error_kind is not ErrorKind.CANCELLED:
                self.failure_texts[describe_failure(record)] += 1
            return
        self.successes += 1
        self.good += self.slo.met_by(record)
        self.tokens_in += record.prompt_tokens or 0
        self.tokens_out += record.completion_tokens or 0
        self.sources[str(record.completion_tokens_source)] += 1
        if record.requested_input_tokens and record.prompt_tokens is not None:
            self._length_error.add(
                100.0
                * (record.prompt_tokens - record.requested_input_tokens)
                / record.requested_input_tokens
            )
        self._collect(record, LATENCY_FIELDS)
        self._gaps.extend(gaps)

    def _collect(self, record: RequestRecord, names: tuple[str, ...]) -> None:
        for name in names:
            value = getattr(record, name)
            if value is not None:
                self._values[name].add(value)

    def summarize(self, duration_s: float, status: ProfileStatus) -> ProfileSummary:
        """Aggregate what was recorded over ``duration_s`` seconds."""

        def per_s(n: float) -> float:
            return n / duration_s if duration_s > 0 else 0.0

        dist = {name: Distribution.of_stream(values) for name, values in self._values.items()}
        ok = self.successes
        top = self.failure_texts.most_common(1)
        return ProfileSummary(
            profile=self.profile.name,
            description=self.profile.description,
            load=self.profile.load_label,
            concurrency=self.profile.concurrency,
            rate_rps=self.profile.rate_rps,
            status=status,
            requests=self.requests,
            warmup_requests=self.warmup,
            successes=ok,
            failures=self.requests - ok,
            failures_by_kind=dict(self.failures),
            duration_s=duration_s,
            requests_per_s=per_s(ok),
            input_tokens_total=self.tokens_in,
            output_tokens_total=self.tokens_out,
            input_tokens_per_s=per_s(self.tokens_in),
            output_tokens_per_s=per_s(self.tokens_out),
            total_tokens_per_s=per_s(self.tokens_in + self.tokens_out),
            mean_input_tokens=self.tokens_in / ok if ok else None,
            mean_output_tokens=self.tokens_out / ok if ok else None,
            ttft_s=dist["ttft_s"],
            ttfc_s=dist["ttfc_s"],
            tpot_s=dist["tpot_s"],
            itl_s=Distribution.of_stream(self._gaps),
            e2e_s=dist["e2e_s"],
            e2e_from_scheduled_s=dist["e2e_from_scheduled_s"],
            slo=self.slo,
            good_requests=self.good,
            goodput_rps=per_s(self.good),
            token_sources=dict(self.sources),
            token_count_mismatches=self.mismatches,
            exact_output_requested=self.exact_requested,
            exact_output_honoured=self.exact_honoured,
            retries=self.retries,
            top_failure=top[0][0] if top else None,
            top_failure_count=top[0][1] if top else 0,
            input_length_error_pct=Distribution.of_stream(self._length_error),
            client_queue_wait_p99_s=_p99(dist["client_queue_wait_s"]),
            schedule_lag_p99_s=_p99(dist["schedule_lag_s"]),
        )


def _p99(dist: Distribution | None) -> float | None:
    return dist.p99 if dist else None


class RunSummary(BaseModel):
    """Everything ``summary.json`` holds."""

    run_id: str
    """Run id (also the results folder name)."""
    status: FinalRunStatus
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
    server: dict[str, Any] | None = None
    """The server process llmtop started, when it did: command, pid, start-up time, exit
    code, and the tail of its log when it died during the run."""
    telemetry: dict[str, Any] | None = None
    """Telemetry figures over the whole run (warm-up and pauses included)."""
    knees: list[Knee] = []
    """Per concurrency ladder or rate sweep in the run: the highest load meeting the SLOs and
    where throughput stops growing, with the deciding numbers (engine/metrics/knee.py); empty if
    none."""
    outages: list[Outage] = []
    """Spans during which the server stopped answering and llmtop sent nothing (README "When
    the server dies"); the last one has no end when the run failed because of it."""
    validity: list[ValidityIssue] = []
    """Rules the run broke that make its figures suspect (README "When the numbers are
    suspect"), one entry per rule and profile with its first time, count and worst value;
    empty when none broke (and in folders written before the rules existed)."""
