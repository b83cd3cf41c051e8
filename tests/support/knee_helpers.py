"""Synthetic profile summaries for knee and comparison tests."""

from __future__ import annotations

from typing import Any

from engine.metrics.summary import Distribution, ProfileSummary, Slo


def dist(value: float | None) -> Distribution | None:
    if value is None:
        return None
    return Distribution(count=10, mean=value, p50=value, p90=value, p95=value, p99=value, max=value)


def summary(
    name: str,
    *,
    concurrency: int | None = None,
    rate_rps: float | None = None,
    out_tok_s: float = 100.0,
    ttft_s: float | None = 0.1,
    tpot_s: float | None = 0.02,
    failures: dict[str, int] | None = None,
    slo: Slo | None = None,
    **fields: Any,
) -> ProfileSummary:
    failures = failures or {}
    data: dict[str, Any] = dict(
        profile=name,
        description="",
        load=f"c={concurrency}",
        concurrency=concurrency,
        rate_rps=rate_rps,
        status="completed",
        requests=10 + sum(failures.values()),
        warmup_requests=0,
        successes=10,
        failures=sum(failures.values()),
        failures_by_kind=failures,
        duration_s=10.0,
        requests_per_s=1.0,
        input_tokens_total=100,
        output_tokens_total=int(out_tok_s * 10),
        input_tokens_per_s=10.0,
        output_tokens_per_s=out_tok_s,
        total_tokens_per_s=out_tok_s + 10,
        mean_input_tokens=10.0,
        mean_output_tokens=out_tok_s,
        ttft_s=dist(ttft_s),
        ttfc_s=None,
        tpot_s=dist(tpot_s),
        itl_s=None,
        e2e_s=dist(1.0),
        e2e_from_scheduled_s=None,
        slo=slo or Slo(ttft_s=0.5, tpot_s=0.05),
        good_requests=10,
        goodput_rps=1.0,
        token_sources={"usage": 10},
        token_count_mismatches=0,
        exact_output_requested=0,
        exact_output_honoured=0,
        retries=0,
        client_queue_wait_p99_s=0.0,
        schedule_lag_p99_s=0.0,
    )
    data.update(fields)
    return ProfileSummary(**data)
