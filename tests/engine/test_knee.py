"""The knee of a ladder: SLO knee and saturation on synthetic and recorded ladders."""

from __future__ import annotations

import json

import pytest

from engine.metrics.knee import find_knees
from engine.metrics.summary import RunSummary, Slo
from tests.support.knee_helpers import summary
from tests.support.paths import DATA, ROOT

RUNS = DATA / "runs"
LADDER = RUNS / "20261121-080817-4fc2"


def ladder(*steps: tuple[int, float, float, float], **fields):
    return [
        summary(f"step-c{c}", concurrency=c, out_tok_s=tok, ttft_s=ttft, tpot_s=tpot, **fields)
        for c, tok, ttft, tpot in steps
    ]


def test_saturation_is_the_step_before_the_first_small_gain():
    steps = ladder(
        (1, 100, 0.1, 0.02),
        (2, 190, 0.1, 0.02),
        (4, 350, 0.2, 0.03),
        (8, 370, 0.4, 0.04),
        (16, 500, 0.9, 0.09),
    )
    [knee] = find_knees(steps)
    assert knee.group == "step" and knee.load_kind == "concurrency"
    assert [s.load for s in knee.steps] == [1, 2, 4, 8, 16]
    assert knee.steps[1].gain_pct == pytest.approx(90.0)
    # 350 -> 370 is +5.7 %: throughput stops growing at c=4 even though c=16 jumps again.
    assert knee.saturation_load == 4
    assert "c=4 -> c=8" in knee.saturation_reason and "+5.7 % < 10 %" in knee.saturation_reason
    # SLO: TTFT p99 <= 500 ms and TPOT p99 <= 50 ms; c=16 misses both.
    assert knee.slo_knee_load == 8
    assert "TTFT p99 900 ms > 500 ms" in knee.slo_reason
    assert "TPOT p99 90 ms > 50 ms" in knee.slo_reason


def test_threshold_is_a_parameter_and_growth_without_saturation_says_so():
    steps = ladder((1, 100, 0.1, 0.02), (2, 150, 0.1, 0.02), (4, 200, 0.1, 0.02))
    [knee] = find_knees(steps, gain_threshold_pct=10)
    assert knee.saturation_load is None
    assert "still grows by >= 10 %" in knee.saturation_reason
    [knee] = find_knees(steps, gain_threshold_pct=40)
    assert knee.saturation_load == 2  # 150 -> 200 is +33 %


def test_slo_knee_is_contiguous_from_the_lowest_step():
    steps = ladder((1, 100, 0.1, 0.02), (2, 190, 0.9, 0.02), (4, 350, 0.1, 0.02))
    [knee] = find_knees(steps)
    assert knee.slo_knee_load == 1  # c=4 passing after c=2 failed does not count


def test_lowest_step_missing_and_failures_count_as_misses():
    steps = ladder((1, 100, 0.9, 0.02), (2, 190, 0.1, 0.02), (4, 350, 0.1, 0.02))
    [knee] = find_knees(steps)
    assert knee.slo_knee_load is None and "lowest step c=1 already misses" in knee.slo_reason
    steps = ladder((1, 100, 0.1, 0.02), (2, 190, 0.1, 0.02))
    steps.append(
        summary("step-c4", concurrency=4, out_tok_s=350, failures={"http_5xx": 2, "cancelled": 3})
    )
    [knee] = find_knees(steps)
    assert knee.slo_knee_load == 2 and "2 failed requests" in knee.slo_reason


def test_no_slo_set():
    steps = ladder(
        (1, 100, 0.1, 0.02),
        (2, 190, 0.1, 0.02),
        (4, 350, 0.2, 0.03),
        slo=Slo(ttft_s=None, tpot_s=None),
    )
    [knee] = find_knees(steps)
    assert knee.slo_knee_load is None and knee.slo_reason.startswith("no SLO set")


def test_rate_sweep_and_no_knee_for_fewer_than_three_loads_or_unrelated_profiles():
    rates = [
        summary(f"r{r}", rate_rps=r, out_tok_s=tok)
        for r, tok in ((1.0, 100), (2.0, 200), (4.0, 210))
    ]
    [knee] = find_knees(
        rates,
        definitions=[{"name": f"r{r}", "rate_rps": r, "max_tokens": 64} for r in (1.0, 2.0, 4.0)],
    )
    assert knee.load_kind == "rate_rps" and knee.saturation_load == 2.0
    assert knee.label(2.0) == "2 rps"
    assert find_knees(ladder((1, 100, 0.1, 0.02), (2, 190, 0.1, 0.02))) == []
    # Same names pattern, but the definitions differ in more than load: not a sweep.
    defs = [{"name": f"step-c{c}", "concurrency": c, "max_tokens": c} for c in (1, 2, 4)]
    steps = ladder((1, 100, 0.1, 0.02), (2, 190, 0.1, 0.02), (4, 350, 0.2, 0.03))
    assert find_knees(steps, definitions=defs) == []


def test_recorded_real_ladder():
    run = RunSummary.model_validate(json.loads((LADDER / "summary.json").read_text()))
    definitions = json.loads((LADDER / "run.json").read_text())["profiles"]
    [knee] = find_knees(run.profiles, definitions, gain_threshold_pct=25)
    assert [s.profile for s in knee.steps] == ["step-c1", "step-c2", "step-c4"]
    assert knee.saturation_load == 2  # 54.1 -> 64.7 tok/s on 2 shared cores: +19 %
    assert knee.slo_knee_load == 4  # TPOT p99 stays far under 100 ms
    assert "\n".join(knee.lines()).startswith("knee of step (3 steps, c=1 .. c=4)")


def test_a_ladder_run_records_its_knee_and_the_console_prints_it(fake_server, run_engine):
    import io

    from rich.console import Console

    from engine.events import EventBus
    from tests.support.builders import make_profile
    from tui.console.reporter import ConsoleReporter

    output = io.StringIO()
    bus = EventBus()
    bus.sinks.append(ConsoleReporter(Console(file=output, width=200)))
    profiles = [make_profile(name=f"s-c{c}", concurrency=c, requests=4) for c in (1, 2, 4)]
    result = run_engine(fake_server.url, profiles, bus=bus)
    [knee] = result.summary.knees
    assert knee.group == "s" and [s.load for s in knee.steps] == [1, 2, 4]
    saved = RunSummary.model_validate_json((result.run_dir / "summary.json").read_text())
    assert saved.knees == result.summary.knees
    assert "knee of s (3 steps, c=1 .. c=4):" in output.getvalue()
    assert "SLO knee:" in output.getvalue() and "saturation:" in output.getvalue()


def test_steps_may_differ_in_how_long_they_run_as_in_the_h200_bench():
    bench = ROOT / "bench" / "gpu" / "h200-telemetry-20261121"
    run = RunSummary.model_validate(json.loads((bench / "summary.json").read_text()))
    definitions = json.loads((bench / "run.json").read_text())["profiles"]
    [knee] = find_knees(run.profiles, definitions)
    assert knee.group == "c1..c32" and [s.load for s in knee.steps] == [1, 8, 32]
    # 1,378 -> 1,432 output tok/s from c=8 to c=32 on one H200: +3.9 %, saturated at c=8.
    assert knee.saturation_load == 8 and "+3.9 % < 10 %" in knee.saturation_reason
