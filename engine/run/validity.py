"""Live validity rules: the run says when its own numbers are suspect, as it happens.

Each rule is a small object with its threshold as a named constant and its formula in its
docstring. ``ValidityMonitor`` (engine/run/validity_monitor.py) feeds them from the events the
engine publishes anyway (records, snapshots, telemetry samples) and from the loop-lag monitor,
and publishes ``ValidityWarned`` the first time a rule breaks in a profile.

Three kinds of rule:

* window rules judge a statistic over ``VALIDITY_WINDOW_S`` of run time (client CPU, loop
  lag, schedule lag, connection-pool wait, server queueing); each window found broken counts
  once;
* share rules judge the share of a profile's successful requests so far that show a problem
  (token provenance, prompt length, cache hits), once ``MIN_SHARE_REQUESTS`` requests are in;
  their count is the number of such requests;
* sample rules judge each GPU reading as it comes (missed readings, clock drops); each bad
  reading counts once.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from engine.metrics.validity import ValidityRule
from engine.records import RequestRecord
from engine.stats import NS, percentile
from engine.telemetry.gpu import GpuSample

VALIDITY_WINDOW_S = 5.0
"""Run time over which window rules are judged."""
MAX_WINDOW_VALUES = 10_000
"""Values a window rule keeps per window; later ones in the same window are not kept (the
p99 of the first 10,000 is as telling, and memory stays bounded at any request rate)."""
MIN_SHARE_REQUESTS = 20
"""Successful requests a share rule waits for before it judges (two bad ones in three are
not yet a pattern)."""
MAX_SHARE_PCT = 5.0
"""Share of requests above which a share rule breaks."""


@dataclass(frozen=True, slots=True)
class Breach:
    """A rule found broken: the value, the limit it broke and the sentence that says so."""

    value: float
    threshold: float
    message: str
    count: int = 1
    """Share rules: the requests affected so far (replaces the stored count); others: 1."""


class WindowRule:
    """Collects values during a window; ``close`` judges them and starts the next window."""

    rule: ClassVar[ValidityRule]
    unit: ClassVar[str] = "ms"
    lower_is_worse: ClassVar[bool] = False
    min_values: ClassVar[int] = 10
    """Fewest values a window needs to be judged."""

    def __init__(self) -> None:
        self.values: list[float] = []

    def add(self, value: float | None) -> None:
        """Take one value (``None`` is not a value)."""
        if value is not None and len(self.values) < MAX_WINDOW_VALUES:
            self.values.append(value)

    def close(self, window_s: float) -> Breach | None:
        """Judge the window just ended (``window_s`` long) and forget its values."""
        values, self.values = self.values, []
        if len(values) < self.min_values:
            return None
        return self.judge(values, window_s)

    def judge(self, values: list[float], window_s: float) -> Breach | None:
        """The breach these values make, if any."""
        raise NotImplementedError


def _p99(values: list[float]) -> float:
    return percentile(sorted(values), 99)


CLIENT_CPU_MAX_PCT = 85.0
"""llmtop's own CPU, in percent of one core, above which the client may be the bottleneck."""


class ClientCpuRule(WindowRule):
    """client-bound (CPU): mean(``client_cpu_pct`` of the host samples in the window) >
    ``CLIENT_CPU_MAX_PCT``. A Python client near a full core stamps chunks late and sends late.
    """

    rule = ValidityRule.CLIENT_CPU
    unit = "%"
    min_values = 2

    def judge(self, values: list[float], window_s: float) -> Breach | None:
        """See the class docstring."""
        mean = sum(values) / len(values)
        if mean <= CLIENT_CPU_MAX_PCT:
            return None
        return Breach(
            mean,
            CLIENT_CPU_MAX_PCT,
            f"llmtop used {mean:.0f} % of a core over {window_s:.0f} s (> "
            f"{CLIENT_CPU_MAX_PCT:g} %): the client may be the bottleneck, latencies are suspect",
        )


LOOP_LAG_MAX_P99_MS = 20.0
"""Event-loop lag p99 above which chunk timestamps are too late to trust."""


class LoopLagRule(WindowRule):
    """client-bound (loop): p99(lag of the 10 ms timer, engine/run/loop_lag.py) over the window
    > ``LOOP_LAG_MAX_P99_MS``. A chunk that arrives while the loop is busy is stamped late by
    about the lag.
    """

    rule = ValidityRule.LOOP_LAG
    min_values = 50

    def judge(self, values: list[float], window_s: float) -> Breach | None:
        """See the class docstring."""
        p99 = _p99(values)
        if p99 <= LOOP_LAG_MAX_P99_MS:
            return None
        return Breach(
            p99,
            LOOP_LAG_MAX_P99_MS,
            f"llmtop's event loop lagged: p99 {p99:.0f} ms over {window_s:.0f} s (> "
            f"{LOOP_LAG_MAX_P99_MS:g} ms): chunk timestamps are late by up to that much",
        )


SCHEDULE_LAG_MAX_P99_MS = 10.0
"""Open loop: p99 lateness of sends above which latencies from arrival are distorted."""
SCHEDULE_LAG_MAX_GAP_PCT = 5.0
"""Open loop: p99 lateness, in percent of the mean inter-arrival time, above which the
arrival process itself is distorted."""
SCHEDULE_LAG_FLOOR_MS = 1.0
"""The percent limit never goes below this: at 1,000 rps 5 % is 50 us, finer than a busy
event loop's timers, and a constant delay that small does not change the rate."""


class ScheduleLagRule(WindowRule):
    """schedule lag (open loop): p99(``schedule_lag_s``) over the window > min(
    ``SCHEDULE_LAG_MAX_P99_MS``, max(``SCHEDULE_LAG_FLOOR_MS``, ``SCHEDULE_LAG_MAX_GAP_PCT`` %
    of 1 / ``rate_rps``)). Requests sent late mean the offered load was not the one asked for.
    """

    rule = ValidityRule.SCHEDULE_LAG

    def __init__(self, rate_rps: float) -> None:
        super().__init__()
        self.rate_rps = rate_rps
        gap_ms = 1000.0 / rate_rps * SCHEDULE_LAG_MAX_GAP_PCT / 100
        self.threshold_ms = min(SCHEDULE_LAG_MAX_P99_MS, max(SCHEDULE_LAG_FLOOR_MS, gap_ms))

    def judge(self, values: list[float], window_s: float) -> Breach | None:
        """See the class docstring."""
        p99 = _p99(values) * 1000
        if p99 <= self.threshold_ms:
            return None
        return Breach(
            p99,
            self.threshold_ms,
            f"open-loop requests went out late: p99 {p99:.1f} ms behind schedule over "
            f"{window_s:.0f} s (> {self.threshold_ms:.1f} ms): the offered load was not "
            f"the {self.rate_rps:g} rps asked for",
        )


POOL_WAIT_MAX_P99_MS = 1.0
"""Closed loop: p99 wait for a pooled connection above which TTFT includes client queueing."""


class PoolWaitRule(WindowRule):
    """connection pool (closed loop): p99(``client_queue_wait_s``) over the window >
    ``POOL_WAIT_MAX_P99_MS``. The pool holds a connection per request in flight, so any wait
    is llmtop's own queue inside every TTFT.
    """

    rule = ValidityRule.POOL_WAIT

    def judge(self, values: list[float], window_s: float) -> Breach | None:
        """See the class docstring."""
        p99 = _p99(values) * 1000
        if p99 <= POOL_WAIT_MAX_P99_MS:
            return None
        return Breach(
            p99,
            POOL_WAIT_MAX_P99_MS,
            f"requests waited inside llmtop for a connection: p99 {p99:.1f} ms over "
            f"{window_s:.0f} s (> {POOL_WAIT_MAX_P99_MS:g} ms): TTFT includes the client's queue",
        )


MIN_QUEUE_SCRAPES = 3
"""Scrapes of /metrics a window needs before "waiting throughout" means anything."""


class ServerQueueRule(WindowRule):
    """server queueing (``goal = "latency"`` profiles, measured phase): min(``waiting`` of every
    /metrics scrape in the window where the server was busy) > 0, over at least
    ``MIN_QUEUE_SCRAPES`` scrapes. Requests waiting all along mean the latencies include the
    server's queue, which a latency-goal load should not have. A scrape that finds nothing
    running and nothing waiting (before the first request is sent, after the last one ended)
    says nothing about the load and is not judged.
    """

    rule = ValidityRule.SERVER_QUEUE
    unit = "requests"
    min_values = MIN_QUEUE_SCRAPES

    def judge(self, values: list[float], window_s: float) -> Breach | None:
        """See the class docstring."""
        least = min(values)
        if least <= 0:
            return None
        return Breach(
            least,
            0.0,
            f"the server queued requests throughout {window_s:.0f} s (at least {least:g} "
            "waiting in every /metrics scrape) at a latency-goal load: latencies include "
            'server-side queueing (goal = "throughput" if a saturating load is meant)',
        )


class ShareRule:
    """Counts successful requests with a problem; breaks above ``MAX_SHARE_PCT`` of them."""

    rule: ClassVar[ValidityRule]
    unit: ClassVar[str] = "%"
    lower_is_worse: ClassVar[bool] = False

    def __init__(self) -> None:
        self.seen = 0
        self.hits = 0

    def add(self, record: RequestRecord) -> None:
        """Count one successful measured request (others are not judged)."""
        verdict = self.hit(record)
        if verdict is None:
            return
        self.seen += 1
        self.hits += verdict

    def hit(self, record: RequestRecord) -> bool | None:
        """Whether the request shows the problem; ``None`` when it cannot tell."""
        raise NotImplementedError

    def check(self) -> Breach | None:
        """The breach the requests so far make, if any."""
        if self.seen < MIN_SHARE_REQUESTS:
            return None
        share = 100.0 * self.hits / self.seen
        if share <= MAX_SHARE_PCT:
            return None
        return Breach(share, MAX_SHARE_PCT, self.describe(share), count=self.hits)

    def describe(self, share: float) -> str:
        """The breach in words, for a share of ``share`` percent."""
        raise NotImplementedError

    def _of(self, share: float) -> str:
        return f"{share:.0f} % of {self.seen} requests (> {MAX_SHARE_PCT:g} %)"


class UsageMissingRule(ShareRule):
    """token provenance (usage): share of successful requests whose completion count has no
    ``usage`` source > ``MAX_SHARE_PCT``. The count then came from llama.cpp's ``timings`` or,
    worse, from the number of text chunks (a lower bound): throughput is less certain.
    """

    rule = ValidityRule.USAGE_MISSING

    def hit(self, record: RequestRecord) -> bool | None:
        """See the class docstring."""
        return "usage" not in record.completion_tokens_by_source

    def describe(self, share: float) -> str:
        """The breach in words."""
        return (
            f"the server sent no usage on {self._of(share)}: token counts come from llama.cpp "
            "timings or from chunks (a lower bound)"
        )


class TokenMismatchRule(ShareRule):
    """token provenance (agreement): share of successful requests with
    ``token_count_mismatch`` (usage vs timings vs text chunks) > ``MAX_SHARE_PCT``.
    """

    rule = ValidityRule.TOKEN_MISMATCH

    def hit(self, record: RequestRecord) -> bool | None:
        """See the class docstring."""
        return record.token_count_mismatch

    def describe(self, share: float) -> str:
        """The breach in words."""
        return (
            f"usage, timings and streamed chunks disagree on the token count of "
            f"{self._of(share)}: the server's counts are suspect"
        )


PROMPT_LENGTH_MAX_ERROR_PCT = 2.0
"""How far a server-counted prompt may fall from the requested length before it counts."""


class PromptLengthRule(ShareRule):
    """token provenance (prompt): share of successful requests with a requested length where
    100 * |``prompt_tokens`` - ``requested_input_tokens``| / ``requested_input_tokens`` >
    ``PROMPT_LENGTH_MAX_ERROR_PCT``, above ``MAX_SHARE_PCT``: the prefill measured was not
    the one asked for.
    """

    rule = ValidityRule.PROMPT_LENGTH

    def hit(self, record: RequestRecord) -> bool | None:
        """See the class docstring."""
        asked, got = record.requested_input_tokens, record.prompt_tokens
        if not asked or got is None:
            return None
        return 100.0 * abs(got - asked) / asked > PROMPT_LENGTH_MAX_ERROR_PCT

    def describe(self, share: float) -> str:
        """The breach in words."""
        return (
            f"prompt tokens were more than {PROMPT_LENGTH_MAX_ERROR_PCT:g} % off the requested "
            f"length on {self._of(share)}: the prefill measured is not the one asked for"
        )


CACHE_HIT_MIN_PCT = 10.0
"""Share of a prompt served from the cache that makes a request a cache hit (a chat
template's first tokens are common to every prompt and may be cached legitimately)."""


class CacheHitRule(ShareRule):
    """cache hits (profiles that bust caches: synthetic prompts, no shared prefix, no system
    prompt): share of successful requests with 100 * ``cached_prompt_tokens`` /
    ``prompt_tokens`` > ``CACHE_HIT_MIN_PCT``, above ``MAX_SHARE_PCT``: prefill was skipped.
    """

    rule = ValidityRule.CACHE_HITS

    def hit(self, record: RequestRecord) -> bool | None:
        """See the class docstring."""
        if record.cached_prompt_tokens is None or not record.prompt_tokens:
            return None
        return 100.0 * record.cached_prompt_tokens / record.prompt_tokens > CACHE_HIT_MIN_PCT

    def describe(self, share: float) -> str:
        """The breach in words."""
        return (
            f"the server served prompts from its cache on {self._of(share)} although every "
            "prompt differs: prefill was not measured"
        )


GPU_GAP_FACTOR = 3.0
"""A GPU reading later than this many sampling intervals after the previous one was missed."""
GPU_GAP_MIN_S = 1.0
"""The gap limit never goes below this: the sampler reads the server's /metrics in the same
loop once a second, which may delay one GPU reading by a few hundred milliseconds."""


class GpuGapRule:
    """GPU telemetry gaps, per GPU: t(reading) - t(previous reading) > max(``GPU_GAP_FACTOR``
    x the sampling interval, ``GPU_GAP_MIN_S``), or a utilization reading that NVML gave
    before and not now.
    """

    rule = ValidityRule.GPU_GAP
    unit = "s"
    lower_is_worse = False

    def __init__(self, interval_s: float) -> None:
        self.interval_s = interval_s
        self._last: dict[int, tuple[int, GpuSample]] = {}

    def add(self, t_ns: int, sample: GpuSample) -> Breach | None:
        """Judge one reading against the previous one of the same GPU."""
        previous = self._last.get(sample.index)
        self._last[sample.index] = (t_ns, sample)
        if previous is None:
            return None
        gap_s = (t_ns - previous[0]) / NS
        limit_s = max(GPU_GAP_FACTOR * self.interval_s, GPU_GAP_MIN_S)
        if gap_s > limit_s:
            return Breach(
                gap_s,
                limit_s,
                f"GPU {sample.index} telemetry missed readings: {gap_s:.1f} s without one "
                f"(sampling every {self.interval_s:g} s): GPU figures have a hole there",
            )
        if previous[1].utilization_pct is not None and sample.utilization_pct is None:
            return Breach(
                gap_s,
                limit_s,
                f"GPU {sample.index} telemetry missed a reading: NVML gave no utilization "
                "after giving it before",
            )
        return None


GPU_CLOCK_MIN_PCT = 80.0
"""A busy GPU's SM clock, in percent of the highest seen on it, below which it throttles."""
GPU_BUSY_MIN_PCT = 50.0
"""Utilization from which a GPU counts as busy (an idle GPU lowers its clock by design)."""


class GpuClockRule:
    """GPU clock problems, per GPU: 100 * ``sm_clock_mhz`` / max(``sm_clock_mhz`` so far) <
    ``GPU_CLOCK_MIN_PCT`` while ``utilization_pct`` >= ``GPU_BUSY_MIN_PCT``: thermal or power
    throttling, so the figures are those of a slower GPU.
    """

    rule = ValidityRule.GPU_CLOCK
    unit = "%"
    lower_is_worse = True

    def __init__(self) -> None:
        self._peak: dict[int, float] = {}

    def add(self, t_ns: int, sample: GpuSample) -> Breach | None:
        """Judge one reading against the GPU's highest clock so far."""
        clock = sample.sm_clock_mhz
        if clock is None:
            return None
        peak = max(self._peak.get(sample.index, 0.0), clock)
        self._peak[sample.index] = peak
        busy = (sample.utilization_pct or 0.0) >= GPU_BUSY_MIN_PCT
        ratio = 100.0 * clock / peak if peak else 100.0
        if not busy or ratio >= GPU_CLOCK_MIN_PCT:
            return None
        return Breach(
            ratio,
            GPU_CLOCK_MIN_PCT,
            f"GPU {sample.index} SM clock fell to {clock:,.0f} MHz ({ratio:.0f} % of its "
            f"{peak:,.0f} MHz peak) while {sample.utilization_pct:.0f} % busy: it throttles",
        )
