"""Server-side metrics from an inference server's Prometheus ``/metrics`` text.

vLLM, SGLang and llama.cpp's ``llama-server --metrics`` count their own tokens, queue and
KV-cache use; vLLM and SGLang keep latency histograms too. ``ServerMetricsTracker`` is fed one
scrape at a time: counter deltas become rates, histogram bucket deltas the percentiles of the
interval since the previous scrape, and both are summed over the run for ``window_summary``.

Names come from vLLM's ``vllm/v1/metrics/loggers.py``, SGLang's ``srt/metrics/collector.py``
(both projects' "Production Metrics" docs show them), and llama.cpp's server README, checked
against a capture (tests/data/metrics/): that build no longer exports ``kv_cache_usage_ratio``
and its ``prompt_tokens_total`` leaves out prompt tokens reused from the cache.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from itertools import accumulate
from typing import Any

import httpx
from prometheus_client.parser import text_string_to_metric_families

Samples = dict[str, list[tuple[dict[str, str], float]]]
Buckets = dict[float, float]

METRICS_TIMEOUT_S = 5.0
QUANTILES = (0.5, 0.9, 0.99)
COUNTERS = ("prompt_tokens", "generation_tokens", "preemptions", "decode_calls")
HISTOGRAMS = ("ttft", "itl", "e2e")


# Where each family keeps each figure; of several names the first one present wins. Gauges:
# running, waiting, kv_usage (a 0..1 ratio); counters: COUNTERS; histograms (base names,
# without ``_bucket``): HISTOGRAMS.
METRIC_NAMES: dict[str, dict[str, tuple[str, ...]]] = {
    "vllm": {
        "running": ("vllm:num_requests_running",),
        "waiting": ("vllm:num_requests_waiting",),
        "kv_usage": ("vllm:kv_cache_usage_perc", "vllm:gpu_cache_usage_perc"),
        "prompt_tokens": ("vllm:prompt_tokens_total",),
        "generation_tokens": ("vllm:generation_tokens_total",),
        "preemptions": ("vllm:num_preemptions_total",),
        "ttft": ("vllm:time_to_first_token_seconds",),
        # Newer releases renamed the per-token histogram; the old name became an alias.
        "itl": ("vllm:inter_token_latency_seconds", "vllm:time_per_output_token_seconds"),
        "e2e": ("vllm:e2e_request_latency_seconds",),
    },
    "sglang": {
        "running": ("sglang:num_running_reqs",),
        "waiting": ("sglang:num_queue_reqs",),
        "kv_usage": ("sglang:token_usage",),
        "prompt_tokens": ("sglang:prompt_tokens_total",),
        "generation_tokens": ("sglang:generation_tokens_total",),
        "ttft": ("sglang:time_to_first_token_seconds",),
        "itl": ("sglang:inter_token_latency_seconds", "sglang:time_per_output_token_seconds"),
        "e2e": ("sglang:e2e_request_latency_seconds",),
    },
    "llama.cpp": {
        "running": ("llamacpp:requests_processing",),
        "waiting": ("llamacpp:requests_deferred",),
        "kv_usage": ("llamacpp:kv_cache_usage_ratio",),
        "prompt_tokens": ("llamacpp:prompt_tokens_total",),
        "generation_tokens": ("llamacpp:tokens_predicted_total",),
        "decode_calls": ("llamacpp:n_decode_total",),
    },
}
PREFIXES = {"vllm:": "vllm", "sglang:": "sglang", "llamacpp:": "llama.cpp"}


def parse(text: str) -> Samples:
    """Samples of a Prometheus text exposition, by sample name as the server wrote it.

    Histogram ``_bucket``/``_sum``/``_count`` and counter ``_total`` samples keep their names.

    Raises:
        ValueError: the text is not Prometheus exposition format (an HTML page, JSON, ...).

    """
    samples: Samples = {}
    try:
        for family in text_string_to_metric_families(text):
            for s in family.samples:
                samples.setdefault(s.name, []).append((dict(s.labels), float(s.value)))
    except (ValueError, IndexError, KeyError, TypeError) as exc:
        raise ValueError(f"not Prometheus text exposition format: {exc}") from None
    return samples


def histogram_quantile(buckets: list[tuple[float, float]], q: float) -> float | None:
    """The q-quantile of a classic histogram, as PromQL's ``histogram_quantile`` computes it.

    ``buckets`` are cumulative ``(upper_bound, count)`` pairs including ``+Inf``. With
    ``rank = q * total`` and ``b`` the first bucket whose count reaches ``rank``, the value is
    interpolated linearly inside it: ``lower + (upper - lower) * (rank - count_below) /
    (count_b - count_below)``, where ``lower`` is the previous bound (0 for the first bucket
    when its bound is positive). A rank in the ``+Inf`` bucket gives the highest finite
    bound. Counts that go down are raised to the running maximum, as Prometheus does.

    Returns:
        The estimate; ``-inf``/``+inf`` for ``q < 0``/``q > 1``; None where PromQL gives NaN:
        no observations, no ``+Inf`` bucket, no finite bucket.

    """
    if q < 0 or q > 1:
        return math.inf if q > 1 else -math.inf
    merged: Buckets = {}
    for bound, count in buckets:
        merged[bound] = merged.get(bound, 0.0) + count
    bounds = sorted(merged)
    if len(bounds) < 2 or bounds[-1] != math.inf:
        return None
    counts = list(accumulate((merged[b] for b in bounds), max))
    if counts[-1] <= 0:
        return None
    rank = q * counts[-1]
    b = next((i for i, c in enumerate(counts[:-1]) if c >= rank), len(bounds) - 1)
    if b == len(bounds) - 1:
        return bounds[-2]
    if b == 0 and bounds[0] <= 0:
        return bounds[0]
    lower, below = (bounds[b - 1], counts[b - 1]) if b > 0 else (0.0, 0.0)
    in_bucket = counts[b] - below
    if in_bucket <= 0:  # only for q == 0 on an empty first bucket
        return lower
    return lower + (bounds[b] - lower) * (rank - below) / in_bucket


@dataclass(frozen=True, slots=True)
class ServerMetricsSample:
    """One scrape: gauges now, rates and latency percentiles since the previous scrape.

    A figure is None where the server does not export it. Rates and percentiles are None on
    the first scrape and after a counter went down (a server restart); percentiles also when
    the interval saw no new observations.

    Attributes:
        t_s: the caller's clock at the scrape, seconds.
        family: ``vllm``, ``sglang``, ``llama.cpp`` or ``unknown``.
        running, waiting: requests being processed / queued (summed over label sets).
        kv_cache_usage_pct: KV-cache use, 0..100 (mean over label sets, e.g. engines).
        prompt_tokens_per_s, generation_tokens_per_s, preemptions_per_s: counter increase
            over the interval / its length. Tokens as the server counts them.
        ttft_p50_s, ttft_p99_s, itl_p50_s, itl_p99_s, e2e_p50_s, e2e_p99_s: time to first
            token, inter-token and end-to-end latency of the interval's observations.

    """

    t_s: float
    family: str
    running: float | None = None
    waiting: float | None = None
    kv_cache_usage_pct: float | None = None
    prompt_tokens_per_s: float | None = None
    generation_tokens_per_s: float | None = None
    preemptions_per_s: float | None = None
    ttft_p50_s: float | None = None
    ttft_p99_s: float | None = None
    itl_p50_s: float | None = None
    itl_p99_s: float | None = None
    e2e_p50_s: float | None = None
    e2e_p99_s: float | None = None

    def as_dict(self) -> dict[str, Any]:
        """Field name to value, for JSON."""
        return asdict(self)


@dataclass(frozen=True, slots=True)
class _Scrape:
    """The figures of one scrape, reduced over label sets."""

    t_s: float
    family: str
    gauges: dict[str, float | None]
    counters: dict[str, float | None]
    histograms: dict[str, Buckets | None]


def detect_family(samples: Samples) -> str:
    """``vllm``, ``sglang`` or ``llama.cpp`` from the metric name prefixes, else ``unknown``."""
    found = (f for name in samples for p, f in PREFIXES.items() if name.startswith(p))
    return next(found, "unknown")


def _values(samples: Samples, names: tuple[str, ...]) -> list[float] | None:
    for name in names:
        found = [v for _, v in samples.get(name, ()) if not math.isnan(v)]
        if found:
            return found
    return None


def _sum(samples: Samples, names: tuple[str, ...]) -> float | None:
    values = _values(samples, names)
    return sum(values) if values is not None else None


def _buckets(samples: Samples, names: tuple[str, ...]) -> Buckets | None:
    """Cumulative bucket counts by upper bound, summed over the other labels."""
    for name in names:
        rows = samples.get(name + "_bucket")
        if rows:
            out: Buckets = {}
            for labels, value in rows:
                bound = _bound(labels.get("le", ""))
                if bound is not None:
                    out[bound] = out.get(bound, 0.0) + value
            return out
    return None


def _bound(le: str) -> float | None:
    try:
        return None if le.lower() == "nan" else float(le)
    except ValueError:
        return None


def _scrape(t_s: float, samples: Samples) -> _Scrape:
    family = detect_family(samples)
    names = METRIC_NAMES.get(family, {})
    kv = _values(samples, names.get("kv_usage", ()))
    # A ratio per engine: the mean is the share of all KV memory in use (engines are equal).
    gauges = {
        "running": _sum(samples, names.get("running", ())),
        "waiting": _sum(samples, names.get("waiting", ())),
        "kv_cache_usage_pct": 100 * sum(kv) / len(kv) if kv else None,
    }
    counters = {key: _sum(samples, names.get(key, ())) for key in COUNTERS}
    histograms = {key: _buckets(samples, names.get(key, ())) for key in HISTOGRAMS}
    return _Scrape(t_s, family, gauges, counters, histograms)


def _buckets_delta(prev: Buckets | None, cur: Buckets | None) -> Buckets | None:
    """Per-bound ``cur - prev``; None when unknown, re-bucketed, or any count went down."""
    if prev is None or cur is None or prev.keys() != cur.keys():
        return None
    delta = {bound: cur[bound] - prev[bound] for bound in cur}
    return None if any(v < 0 for v in delta.values()) else delta


def _quantile(buckets: Buckets | None, q: float) -> float | None:
    if not buckets or buckets.get(math.inf, 0.0) <= 0:
        return None
    return histogram_quantile(list(buckets.items()), q)


def _interval(cur: _Scrape, prev: _Scrape | None) -> ServerMetricsSample:
    if prev is not None and prev.family != cur.family:
        prev = None  # another server answers now: nothing to take a delta from
    dt = cur.t_s - prev.t_s if prev is not None else 0.0

    def rate(key: str) -> float | None:
        before, now = (prev.counters[key], cur.counters[key]) if prev else (None, None)
        if before is None or now is None or now < before or dt <= 0:
            return None  # unknown, or the counter went down: the server restarted
        return (now - before) / dt

    pcts: dict[str, float | None] = {}
    for key in HISTOGRAMS:
        delta = _buckets_delta(prev.histograms[key], cur.histograms[key]) if prev else None
        pcts[f"{key}_p50_s"] = _quantile(delta, 0.5)
        pcts[f"{key}_p99_s"] = _quantile(delta, 0.99)
    return ServerMetricsSample(
        t_s=cur.t_s,
        family=cur.family,
        **cur.gauges,
        prompt_tokens_per_s=rate("prompt_tokens"),
        generation_tokens_per_s=rate("generation_tokens"),
        preemptions_per_s=rate("preemptions"),
        **pcts,
    )


class ServerMetricsTracker:
    """Feeds on successive scrapes of one server; keeps only running totals (bounded memory).

    Over the window from the first to the last scrape, counter increases and histogram
    bucket increases are summed interval by interval. Without a restart that equals last
    minus first; when a counter goes down (the server restarted and began again from 0),
    the interval adds the new value, as Prometheus' ``increase()`` does.

    ``feed`` parses in pure Python, about 15 us per line (3 ms for a 200-line vLLM page): a
    load generator should call it through ``asyncio.to_thread`` to keep its loop on time.
    """

    def __init__(self) -> None:
        self._first: _Scrape | None = None
        self._prev: _Scrape | None = None
        self._scrapes = 0
        self._totals: dict[str, float] = {}
        self._buckets: dict[str, Buckets] = {}

    def feed(self, t_s: float, text: str) -> ServerMetricsSample:
        """Take one scrape taken at ``t_s`` (the caller's clock, seconds).

        Raises:
            ValueError: ``text`` is not Prometheus text; the tracker is left unchanged.

        """
        cur = _scrape(t_s, parse(text))
        sample = _interval(cur, self._prev)
        if self._prev is not None and self._prev.family == cur.family:
            self._accumulate(self._prev, cur)
        self._first = self._first or cur
        self._prev = cur
        self._scrapes += 1
        return sample

    def _accumulate(self, prev: _Scrape, cur: _Scrape) -> None:
        for key in COUNTERS:
            before, now = prev.counters[key], cur.counters[key]
            if before is not None and now is not None:
                added = now - before if now >= before else now
                self._totals[key] = self._totals.get(key, 0.0) + added
        for key in HISTOGRAMS:
            before_b, now_b = prev.histograms[key], cur.histograms[key]
            if before_b is None or now_b is None:
                continue
            added_b = _buckets_delta(before_b, now_b)
            # A restart, possibly with other bounds: take what the new server counted. Mixed
            # bounds keep the quantile defined (counts are forced monotonic) but approximate.
            total = self._buckets.setdefault(key, {})
            for bound, count in (now_b if added_b is None else added_b).items():
                total[bound] = total.get(bound, 0.0) + count

    def window_summary(self) -> dict[str, Any]:
        """What the server counted between the first and the last scrape.

        Keys: ``family``; ``scrapes``; ``window_s`` (last minus first scrape time);
        ``prompt_tokens``, ``generation_tokens``, ``preemptions``, ``decode_calls`` (totals
        the server counted; ``decode_calls`` is llama.cpp's ``llama_decode()`` calls);
        ``prompt_tokens_per_s``, ``generation_tokens_per_s`` (total / ``window_s``); for each
        of ``ttft``, ``itl``, ``e2e``: ``<m>_observations`` and ``<m>_p50_s``, ``<m>_p90_s``,
        ``<m>_p99_s`` (from the summed bucket increases). A value is None where the server
        does not export the figure or fewer than two scrapes were fed.
        """
        first, last = self._first, self._prev
        window_s = last.t_s - first.t_s if first and last and self._scrapes > 1 else None
        out: dict[str, Any] = {
            "family": last.family if last else None,
            "scrapes": self._scrapes,
            "window_s": window_s,
        }
        for key in COUNTERS:
            out[key] = self._totals.get(key)
        for key in ("prompt_tokens", "generation_tokens"):
            total = out[key]
            out[f"{key}_per_s"] = total / window_s if total is not None and window_s else None
        for key in HISTOGRAMS:
            buckets = self._buckets.get(key)
            out[f"{key}_observations"] = buckets.get(math.inf) if buckets else None
            for q in QUANTILES:
                out[f"{key}_p{round(q * 100)}_s"] = _quantile(buckets, q)
        return out


async def fetch(http: httpx.AsyncClient, url: str) -> str | None:
    """``GET url/metrics``: the text, or None on any error or non-200 answer.

    A server without metrics (404, or llama-server without ``--metrics``) is normal. The
    text is not checked here: ``parse`` rejects a 200 page that is not Prometheus text.
    """
    try:
        response = await http.get(url.rstrip("/") + "/metrics", timeout=METRICS_TIMEOUT_S)
    except httpx.HTTPError:
        return None
    return response.text if response.status_code == 200 else None
