"""Bootstrap intervals, run comparisons and `llmtop compare`."""

from __future__ import annotations

import json
import time

import numpy as np
import pytest

from engine.analysis.bootstrap import min_samples, percentile_diff_intervals
from engine.analysis.compare import compare_runs
from engine.analysis.wording import statement
from tests.support.run_fixtures import BASE, KILLED, LADDER, RUNS, SLOW, copy_run
from tui.cli import main


def lognormal(n, seed, scale=1.0):
    return np.random.default_rng(seed).lognormal(np.log(0.2 * scale), 0.4, n)


def test_known_shift_is_detected_and_identical_samples_are_not():
    a = lognormal(2000, 1)
    b = lognormal(2000, 2, scale=1.15)  # 15 % slower, independent draws
    p50, p90, p99 = percentile_diff_intervals(a, b, [50, 90, 99])
    assert p50.low > 0 and p90.low > 0 and p50.excludes_zero()
    true_shift = 0.15 * 0.2  # median of the lognormal is 0.2 s
    assert p50.low < true_shift < p50.high
    for interval in percentile_diff_intervals(a, a.copy(), [50, 90, 99]):
        assert interval.low <= 0 <= interval.high and not interval.excludes_zero()
    # Two samples from one distribution: the interval covers 0.
    same = percentile_diff_intervals(a, lognormal(2000, 3), [50])[0]
    assert same.low <= 0 <= same.high


def test_intervals_are_seeded_and_need_enough_tail_samples():
    a, b = lognormal(100, 1), lognormal(100, 2)
    assert percentile_diff_intervals(a, b, [50]) == percentile_diff_intervals(a, b, [50])
    assert percentile_diff_intervals(a, b, [50], seed=1) != percentile_diff_intervals(a, b, [50])
    assert [min_samples(q) for q in (50, 90, 99)] == [10, 30, 300]
    p50, p90, p99 = percentile_diff_intervals(a, b, [50, 90, 99])
    assert p50 is not None and p90 is not None and p99 is None
    assert percentile_diff_intervals(a[:9], b, [50]) == [None]


def test_bootstrap_speed_for_ten_thousand_records():
    a, b = lognormal(10_000, 1), lognormal(10_000, 2)
    started = time.perf_counter()
    percentile_diff_intervals(a, b, [50, 90, 99], resamples=2000)
    # Measured ~0.9 s on 2 shared cores; the bound leaves room for a loaded CI machine.
    assert time.perf_counter() - started < 10


def test_compare_recorded_runs_one_slot_against_four():
    c = compare_runs([RUNS / BASE, RUNS / SLOW])
    assert c.baseline.label == "A" and c.baseline.run_id == BASE
    [rc] = c.runs
    assert rc.candidate.label == "B" and rc.mismatches == [] and rc.only_in_baseline == []
    [p] = rc.profiles
    assert p.profile == "quick" and p.mismatches == []
    ttft = p.metric("ttft_s.p50")
    # One server slot instead of four: requests queue, so TTFT p50 grows (+543 ms).
    assert ttft.diff == pytest.approx(0.8803389755 - 0.336793604)
    assert ttft.verdict == "worse" and ttft.ci_low > 0
    assert statement(ttft, "B").startswith("B slower by 543.5 ms [")
    assert p.metric("ttft_s.p99").verdict is None
    assert "need 300 per run" in p.metric("ttft_s.p99").no_interval
    out = p.metric("output_tokens_per_s")
    assert out.diff_pct == pytest.approx(-41.38, abs=0.01) and out.no_interval
    assert p.metric("itl_s.p50").no_interval.startswith("per-request values not recorded")


def test_mismatches_are_flagged(tmp_path):
    folder = copy_run(SLOW, tmp_path)
    meta = json.loads((folder / "run.json").read_text())
    meta["model"], meta["server_kind"] = "other", "vllm"
    meta["profiles"][0]["max_tokens"] = {"min": 64, "max": 64}
    meta["profiles"][0]["concurrency"] = 8
    (folder / "run.json").write_text(json.dumps(meta))
    [rc] = compare_runs([RUNS / BASE, folder]).runs
    assert "model differs: gemma-3-270m vs other" in rc.mismatches
    assert "server differs: llama.cpp vs vllm" in rc.mismatches
    assert rc.profiles[0].mismatches == [
        "concurrency differs: 4 vs 8",
        "max_tokens differs: 16 vs 64",
    ]
    [rc] = compare_runs([RUNS / BASE, RUNS / LADDER]).runs
    assert rc.profiles == [] and rc.only_in_baseline == ["quick"]
    assert rc.only_in_candidate == ["step-c1", "step-c2", "step-c4"]


def test_error_rate_leaves_out_requests_llmtop_cancelled(tmp_path):
    # An interrupted run: 5 requests cancelled by Ctrl+C, 1 real failure, 9 successes.
    folder = copy_run(SLOW, tmp_path)
    summary = json.loads((folder / "summary.json").read_text())
    profile = summary["profiles"][0]
    profile.update(requests=15, failures=6, failures_by_kind={"cancelled": 5, "http_5xx": 1})
    (folder / "summary.json").write_text(json.dumps(summary))
    [rc] = compare_runs([RUNS / BASE, folder]).runs
    errors = rc.profiles[0].metric("error_rate_pct")
    # Before: 6 of 15 = 40 %; the cancelled ones are llmtop's doing, not the server's.
    assert errors.baseline == 0 and errors.candidate == pytest.approx(10.0)


def test_cli_compare_three_runs_against_the_first(capsys):
    code = main(["compare", BASE, SLOW[:15], str(RUNS / KILLED), "--root", str(RUNS)])
    assert code == 0
    out = capsys.readouterr().out
    assert f"baseline A = {BASE}" in out and f"C = {KILLED}" in out
    assert "each run is compared with A, the baseline" in out
    assert "B slower by 543.5 ms [" in out
    assert "no significant difference" in out
    assert f"! C vs A: {KILLED} is incomplete" in out
    assert "too few requests for an interval: 3, need 10 per run" in out


def test_cli_compare_json(capsys):
    assert (
        main(
            [
                "compare",
                BASE,
                SLOW,
                "--root",
                str(RUNS),
                "--json",
                "--resamples",
                "500",
                "--seed",
                "3",
            ]
        )
        == 0
    )
    data = json.loads(capsys.readouterr().out)
    assert data["resamples"] == 500 and data["seed"] == 3
    metrics = {m["metric"]: m for m in data["runs"][0]["profiles"][0]["metrics"]}
    assert metrics["ttft_s.p50"]["verdict"] == "worse"


@pytest.mark.parametrize(
    "argv, message",
    [
        (["compare", BASE], "compare needs at least two runs"),
        (["compare", BASE, "nope"], "no run 'nope' under"),
        (["compare", BASE, "2026"], "'2026' matches 4 runs"),
        (
            ["compare", BASE, SLOW, "--resamples", "5"],
            "--resamples must be between 100 and 100,000 (got 5)",
        ),
    ],
)
def test_cli_compare_bad_input(capsys, argv, message):
    assert main([*argv, "--root", str(RUNS)]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err and len(err.strip().splitlines()) == 1
