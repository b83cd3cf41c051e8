"""The over-saturation detector on synthetic steps (engine/metrics/saturation.py), and the knee
it marks; the stop in real runs is in test_saturation_runs.py."""

from __future__ import annotations

import random

import pytest

from engine.metrics.knee import find_knees
from engine.metrics.saturation import SaturationDetector, StepFigures, Trend, t_quantile
from engine.metrics.summary import ProfileAggregate, Slo
from engine.workload.saturation import SaturationThresholds
from tests.support.builders import make_profile

THRESHOLDS = SaturationThresholds()  # window 20 s, verdicts from 10 s


@pytest.mark.parametrize(("df", "exact"), [(3, 2.353), (5, 2.015), (10, 1.812), (30, 1.697)])
def test_the_t_quantile_is_within_2_percent_of_the_tables(df, exact):
    assert t_quantile(0.95, df) == pytest.approx(exact, rel=0.02)


def test_a_clean_rising_line_is_significant_and_noise_is_not():
    rising = Trend.fit([(t, 0.1 + 0.05 * t) for t in range(10)])
    assert rising is not None and rising.significant
    assert rising.start == pytest.approx(0.1) and rising.end == pytest.approx(0.55)
    rng = random.Random(3)
    noise = Trend.fit([(t, 0.3 + rng.uniform(-0.1, 0.1)) for t in range(40)])
    assert noise is not None and not noise.significant
    assert Trend.fit([(1.0, 1.0), (1.0, 2.0), (1.0, 3.0)]) is None


def feed(
    detector: SaturationDetector,
    seconds: float,
    *,
    ttft=lambda t: 0.2,
    throughput=lambda t: 1090.0,
    in_flight=lambda t: 8,
    per_s: int = 10,
    failed_every: int = 0,
) -> str | None:
    """Run a synthetic step: ``per_s`` requests a second, a snapshot every 250 ms; the last
    verdict."""
    verdict = None
    n = 0
    for tick in range(int(seconds * 4)):
        t = tick / 4
        detector.add_snapshot(t, throughput(t), in_flight(t))
        for _ in range(per_s // 4 or 1):
            n += 1
            failed = failed_every and n % failed_every == 0
            detector.add_request(t, ok=not failed, ttft_s=ttft(t), e2e_s=ttft(t) + 1.0)
        verdict = detector.check(t) or verdict
    return verdict


def test_ttft_growing_without_bound_while_throughput_stays_flat_stops_the_step():
    detector = SaturationDetector(THRESHOLDS, "40 rps")
    verdict = feed(detector, 30, ttft=lambda t: 0.05 + 0.04 * t)
    assert verdict is not None
    assert verdict.startswith("stopped at 40 rps: TTFT grew ")
    assert "in 20 s" in verdict and "while throughput stayed at 1,090 tok/s" in verdict


def test_requests_in_flight_piling_up_while_throughput_stays_flat_stops_the_step():
    detector = SaturationDetector(THRESHOLDS, "40 rps")
    verdict = feed(detector, 30, in_flight=lambda t: 10 + 8 * t)
    assert verdict is not None and "requests in flight grew" in verdict


def test_growth_with_throughput_growing_too_is_a_ramp_not_saturation():
    detector = SaturationDetector(THRESHOLDS, "40 rps")
    assert feed(detector, 30, ttft=lambda t: 0.05 + 0.04 * t, throughput=lambda t: 100 * t) is None


def test_a_steady_step_with_noise_is_not_saturated():
    rng = random.Random(7)
    detector = SaturationDetector(THRESHOLDS, "concurrency 8")
    assert feed(detector, 40, ttft=lambda t: 0.2 + rng.uniform(-0.05, 0.05)) is None


def test_a_ladder_step_that_only_queued_stops_with_the_previous_steps_figures():
    before = StepFigures("c=64", 1069.0, ttft_mean_s=0.2, e2e_mean_s=1.2)
    detector = SaturationDetector(THRESHOLDS, "concurrency 128", before)
    verdict = feed(detector, 12, ttft=lambda t: 0.8)
    assert verdict == (
        "stopped at concurrency 128: throughput stayed at 1,090 tok/s (+2.0 % over c=64's "
        "1,069) while mean TTFT grew 4.0x (200 ms -> 800 ms)"
    )


def test_a_ladder_step_that_still_gains_goes_on():
    before = StepFigures("c=4", 500.0, ttft_mean_s=0.1, e2e_mean_s=0.8)
    detector = SaturationDetector(THRESHOLDS, "concurrency 8", before)
    assert feed(detector, 30, ttft=lambda t: 0.3) is None  # +118 % throughput


def test_errors_above_the_rate_stop_the_step():
    detector = SaturationDetector(THRESHOLDS, "concurrency 32")
    verdict = feed(detector, 12, failed_every=3)
    assert verdict is not None and "failed (> 20 %)" in verdict
    assert feed(SaturationDetector(THRESHOLDS, "c"), 30, failed_every=10) is None


def test_no_verdict_before_the_minimum_duration_or_with_too_few_requests():
    early = SaturationDetector(THRESHOLDS, "concurrency 32")
    assert feed(early, 9, failed_every=2) is None
    few = SaturationDetector(THRESHOLDS.model_copy(update={"min_requests": 500}), "c")
    assert feed(few, 30, failed_every=2) is None


def test_the_window_forgets_what_came_before_it():
    detector = SaturationDetector(THRESHOLDS, "concurrency 32")
    feed(detector, 25, failed_every=2)  # 50 % failed, long ago
    for tick in range(100, 200):  # then 25 s of healthy requests
        detector.add_snapshot(tick / 4, 1090.0, 8)
        detector.add_request(tick / 4, ok=True, ttft_s=0.2, e2e_s=1.2)
    assert detector.check(50.0) is None


def test_the_knee_marks_the_step_that_fell_over_even_in_a_two_step_ladder():
    profiles = [make_profile(name=f"lad-c{c}", concurrency=c, requests=40) for c in (1, 2, 4)]
    summaries = []
    for profile, throughput in zip(profiles[:2], (100.0, 190.0), strict=True):
        summary = ProfileAggregate(profile, Slo()).summarize(1.0, "completed")
        summaries.append(summary.model_copy(update={"output_tokens_per_s": throughput}))
    summaries[1] = summaries[1].model_copy(
        update={"status": "stopped", "saturation_stop": "stopped at concurrency 2: 40 % failed"}
    )
    (knee,) = find_knees(summaries, profiles)
    assert knee.stopped_load == 2 and knee.saturation_load == 1
    assert knee.lines()[-1] == (
        "  over-saturated: stopped at concurrency 2: 40 % failed; later steps skipped"
    )
