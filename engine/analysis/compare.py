"""Compare runs: headline figures per profile, differences, and whether they survive noise.

``compare_runs([A, B, C])`` compares B with A and C with A (the first run is the baseline),
profile by profile, matched by name. For every figure: baseline, candidate, candidate minus
baseline, and that difference in percent of the baseline. For the p50/p90/p99 of TTFT, TPOT
and E2E it adds a bootstrap confidence interval of the difference from the per-request records
(engine/analysis/bootstrap.py), and a verdict only when the interval excludes zero.
Throughputs and the error rate are one number per run: no interval, no verdict. Anything
that makes two profiles not comparable (lengths, load, endpoint, model, server, a killed run)
is listed in ``mismatches`` rather than hidden. The result is data (pydantic models);
``engine/analysis/wording.py`` and the UIs format it.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path
from typing import Literal

from pydantic import BaseModel

from engine.analysis.bootstrap import (
    DEFAULT_CONFIDENCE,
    DEFAULT_RESAMPLES,
    min_samples,
    percentile_diff_intervals,
)
from engine.analysis.checks import profile_mismatches, run_mismatches
from engine.errors import InputError
from engine.metrics.summary import ProfileSummary
from engine.records import ErrorKind
from engine.results.folder import latency_columns
from engine.results.runs import RunInfo, load_run
from engine.status import RunStatus

Verdict = Literal["better", "worse", "no significant difference"]
Unit = Literal["s", "tok/s", "req/s", "%"]
"""Unit of a compared figure (latencies in seconds)."""
BOOTSTRAPPED = ("ttft_s", "tpot_s", "e2e_s")
"""Latencies with per-request values in requests.jsonl, so with a confidence interval."""
PERCENTILES = (("p50", 50.0), ("p90", 90.0), ("p99", 99.0))
LATENCIES = (("TTFT", "ttft_s"), ("TPOT", "tpot_s"), ("ITL", "itl_s"), ("E2E", "e2e_s"))
ONE_VALUE = "one value per run"
RATES: tuple[tuple[str, str, Unit], ...] = (
    ("output tok/s", "output_tokens_per_s", "tok/s"),
    ("input tok/s", "input_tokens_per_s", "tok/s"),
    ("requests/s", "requests_per_s", "req/s"),
    ("goodput req/s", "goodput_rps", "req/s"),
)


class RunRef(BaseModel):
    """Which run a side of a comparison is."""

    label: str
    """``A`` (the baseline), ``B``, ``C``... in the order given."""
    run_id: str
    """Run id."""
    path: str
    """Run folder."""
    status: RunStatus
    """Run status (``incomplete``: killed before its summary was written)."""
    model: str | None
    """Model requested."""
    server_kind: str | None
    """Server implementation."""


class MetricDiff(BaseModel):
    """One figure of one profile in two runs."""

    metric: str
    """Field and statistic, e.g. ``ttft_s.p99`` or ``output_tokens_per_s``."""
    label: str
    """For people, e.g. ``TTFT p99``."""
    unit: Unit
    """Unit of the values (latencies in seconds)."""
    lower_is_better: bool
    """True for latencies and the error rate."""
    baseline: float | None
    """Value in the baseline run."""
    candidate: float | None
    """Value in the compared run."""
    diff: float | None
    """candidate - baseline."""
    diff_pct: float | None
    """100 * diff / baseline."""
    ci_low: float | None = None
    """Lower bound of the confidence interval of ``diff`` (latency percentiles only)."""
    ci_high: float | None = None
    """Upper bound of that interval."""
    verdict: Verdict | None = None
    """``better``/``worse`` for the candidate only when the interval excludes zero;
    ``None`` when there is no interval (see ``no_interval``)."""
    no_interval: str | None = None
    """Why there is no interval, when there is none."""


class ProfileComparison(BaseModel):
    """A profile present in both runs."""

    profile: str
    """Profile name."""
    baseline_successes: int
    """Successful measured requests in the baseline."""
    candidate_successes: int
    """Successful measured requests in the compared run."""
    mismatches: list[str]
    """Why the two may not be comparable (lengths, load, endpoint, incomplete...)."""
    metrics: list[MetricDiff]
    """Every headline figure."""

    def metric(self, name: str) -> MetricDiff | None:
        """The diff of ``name`` (e.g. ``ttft_s.p99``), if compared."""
        return next((m for m in self.metrics if m.metric == name), None)


class RunComparison(BaseModel):
    """One run compared with the baseline."""

    candidate: RunRef
    """The compared run."""
    mismatches: list[str]
    """Run-level differences: model, server kind, incomplete runs."""
    profiles: list[ProfileComparison]
    """Profiles both runs have, in the baseline's order."""
    only_in_baseline: list[str]
    """Profiles the candidate lacks."""
    only_in_candidate: list[str]
    """Profiles the baseline lacks."""


class Comparison(BaseModel):
    """Every run compared with the first."""

    baseline: RunRef
    """The first run given."""
    runs: list[RunComparison]
    """One per further run, in the order given."""
    confidence: float
    """Coverage of the intervals (0.95)."""
    resamples: int
    """Bootstrap resamples per side."""
    seed: int
    """Bootstrap seed."""
    elapsed_s: float
    """Time the comparison took (reading records and bootstrapping)."""


def compare_runs(
    paths: Sequence[Path],
    *,
    resamples: int = DEFAULT_RESAMPLES,
    confidence: float = DEFAULT_CONFIDENCE,
    seed: int = 0,
) -> Comparison:
    """Load run folders and compare every one after the first with the first.

    Args:
        paths: Two or more run folders; the first is the baseline.
        resamples: Bootstrap resamples per side and figure.
        confidence: Coverage of the intervals.
        seed: Bootstrap seed (same records and seed: same intervals).

    Returns:
        The comparison, ready to format (engine/analysis/wording.py) or render.

    Raises:
        RunFolderError: A path is not a run folder.
        ValueError: Fewer than two paths.

    """
    return compare_loaded(
        [load_run(p) for p in paths], resamples=resamples, confidence=confidence, seed=seed
    )


def run_labels(count: int) -> list[str]:
    """How runs are named side by side: A, B, ... Z, then R27, R28, ..."""
    return [chr(ord("A") + i) if i < 26 else f"R{i + 1}" for i in range(count)]


def compare_loaded(
    runs: Sequence[RunInfo],
    *,
    resamples: int = DEFAULT_RESAMPLES,
    confidence: float = DEFAULT_CONFIDENCE,
    seed: int = 0,
) -> Comparison:
    """``compare_runs`` on runs already loaded with ``engine.results.runs.load_run``."""
    if len(runs) < 2:
        raise InputError("compare needs at least two runs")
    started = time.perf_counter()
    refs = [_ref(label, run) for label, run in zip(run_labels(len(runs)), runs, strict=True)]
    values = [latency_columns(Path(run.path), BOOTSTRAPPED, []) for run in runs]
    compared = []
    for ref, run, run_values in zip(refs[1:], runs[1:], values[1:]):
        profiles = [
            _compare_profile(
                runs[0],
                run,
                name,
                values[0].get(name, {}),
                run_values.get(name, {}),
                resamples,
                confidence,
                seed,
            )
            for name in _names(runs[0])
            if run.profile(name)
        ]
        compared.append(
            RunComparison(
                candidate=ref,
                mismatches=run_mismatches(runs[0], run),
                profiles=profiles,
                only_in_baseline=[n for n in _names(runs[0]) if not run.profile(n)],
                only_in_candidate=[n for n in _names(run) if not runs[0].profile(n)],
            )
        )
    return Comparison(
        baseline=refs[0],
        runs=compared,
        confidence=confidence,
        resamples=resamples,
        seed=seed,
        elapsed_s=time.perf_counter() - started,
    )


def _ref(label: str, run: RunInfo) -> RunRef:
    return RunRef(
        label=label,
        run_id=run.run_id,
        path=run.path,
        status=run.status,
        model=run.model,
        server_kind=run.server_kind,
    )


def _names(run: RunInfo) -> list[str]:
    return [p.profile for p in run.profiles]


def _compare_profile(
    base_run: RunInfo,
    cand_run: RunInfo,
    name: str,
    base_values: dict[str, list[float]],
    cand_values: dict[str, list[float]],
    resamples: int,
    confidence: float,
    seed: int,
) -> ProfileComparison:
    base, cand = base_run.profile(name), cand_run.profile(name)
    assert base is not None and cand is not None
    metrics = [
        _diff(field, label, unit, False, getattr(base, field), getattr(cand, field)).model_copy(
            update={"no_interval": ONE_VALUE}
        )
        for label, field, unit in RATES
    ]
    metrics.append(
        _diff(
            "error_rate_pct", "error rate", "%", True, _error_pct(base), _error_pct(cand)
        ).model_copy(update={"no_interval": ONE_VALUE})
    )
    for label, field in LATENCIES:
        intervals = (
            percentile_diff_intervals(
                base_values.get(field, []),
                cand_values.get(field, []),
                [q for _, q in PERCENTILES],
                resamples=resamples,
                confidence=confidence,
                seed=seed,
            )
            if field in BOOTSTRAPPED
            else [None] * len(PERCENTILES)
        )
        for (stat, q), interval in zip(PERCENTILES, intervals):
            diff = _diff(
                f"{field}.{stat}",
                f"{label} {stat}",
                "s",
                True,
                _stat(base, field, stat),
                _stat(cand, field, stat),
            )
            if interval is None:
                diff = diff.model_copy(
                    update={"no_interval": _why_no_interval(field, q, base_values, cand_values)}
                )
            else:
                diff = diff.model_copy(
                    update={
                        "ci_low": interval.low,
                        "ci_high": interval.high,
                        "verdict": (
                            "no significant difference"
                            if not interval.excludes_zero()
                            else "better"
                            if interval.high < 0
                            else "worse"
                        ),
                    }
                )
            metrics.append(diff)
    return ProfileComparison(
        profile=name,
        baseline_successes=base.successes,
        candidate_successes=cand.successes,
        mismatches=profile_mismatches(base_run, cand_run, name),
        metrics=metrics,
    )


def _why_no_interval(
    field: str, q: float, base: dict[str, list[float]], cand: dict[str, list[float]]
) -> str:
    if field not in BOOTSTRAPPED:
        return "per-request values not recorded (pooled gaps only)"
    n = min(len(base.get(field, [])), len(cand.get(field, [])))
    return f"too few requests for an interval: {n}, need {min_samples(q)} per run"


def _diff(
    metric: str, label: str, unit: Unit, lower: bool, base: float | None, cand: float | None
) -> MetricDiff:
    diff = None if base is None or cand is None else cand - base
    pct = 100.0 * diff / base if diff is not None and base else None
    return MetricDiff(
        metric=metric,
        label=label,
        unit=unit,
        lower_is_better=lower,
        baseline=base,
        candidate=cand,
        diff=diff,
        diff_pct=pct,
    )


def _stat(summary: ProfileSummary, field: str, stat: str) -> float | None:
    dist = getattr(summary, field)
    return None if dist is None else getattr(dist, stat)


def _error_pct(summary: ProfileSummary) -> float | None:
    """Failed requests in percent of those that ran their course. ``cancelled`` ones (stopped
    by Ctrl+C or a stop, or never sent past ``max_in_flight``) are llmtop's doing and leave
    both counts, as in the knee (counted, an interrupted run read as 33 % errors).
    """
    cancelled = summary.failures_by_kind.get(ErrorKind.CANCELLED, 0)
    ended = summary.requests - cancelled
    return 100.0 * (summary.failures - cancelled) / ended if ended else None
