"""Distributions in bounded memory (engine/metrics/sketch.py): exact while small, a sketch
within 0.5 % beyond, and the exact figures still computable from requests.jsonl."""

from __future__ import annotations

import os
import random
import subprocess
import sys
from functools import partial
from pathlib import Path

import numpy as np
import pytest

from engine.metrics.sketch import RELATIVE_ACCURACY, LogSketch, StreamingDistribution
from engine.metrics.summary import Distribution, ProfileAggregate, Slo
from engine.results.runs import exact_distributions
from engine.run import profile_run
from tests.support.builders import make_profile

QS = (50, 90, 95, 99)


def lognormal(n: int, seed: int = 0) -> list[float]:
    rng = random.Random(seed)
    return [rng.lognormvariate(-2.0, 0.8) for _ in range(n)]


def test_sketched_percentiles_are_within_the_relative_accuracy():
    values = lognormal(200_000)
    sketch = LogSketch()
    sketch.add_many(values)
    exact = np.percentile(values, QS)
    for got, want in zip(sketch.percentiles(QS), exact, strict=True):
        assert got == pytest.approx(want, rel=RELATIVE_ACCURACY + 1e-3)


def test_negative_and_zero_values_keep_their_order():
    values = [-40.0, -3.0, -0.5, 0.0, 0.0, 0.2, 2.5, 30.0] * 100
    sketch = LogSketch()
    sketch.add_many(values)
    for got, want in zip(
        sketch.percentiles((0, 10, 40, 50, 100)),
        np.percentile(values, (0, 10, 40, 50, 100)),
        strict=True,
    ):
        assert got == pytest.approx(want, rel=RELATIVE_ACCURACY, abs=1e-9)


def test_two_sketches_merge_into_the_sketch_of_both():
    a, b, both = LogSketch(), LogSketch(), LogSketch()
    first, second = lognormal(5000, 1), lognormal(7000, 2)
    a.add_many(first)
    b.add_many(second)
    both.add_many(first + second)
    a.merge(b)
    assert a.count == 12_000 and a.positive == both.positive
    assert a.percentiles(QS) == both.percentiles(QS)
    with pytest.raises(ValueError):
        a.merge(LogSketch(0.01))


def test_a_distribution_is_exact_up_to_its_limit_then_bounded_and_within_accuracy():
    values = lognormal(30_000)
    small = StreamingDistribution(exact_limit=50_000)
    for v in values:
        small.add(v)
    assert Distribution.of_stream(small) == Distribution.of(values)
    big = StreamingDistribution(exact_limit=10_000)
    for start in range(0, len(values), 16):
        big.extend(values[start : start + 16])
    summary = Distribution.of_stream(big)
    assert summary is not None and not summary.exact and big.values is None
    assert summary.count == len(values) and summary.max == max(values)
    assert summary.mean == pytest.approx(float(np.mean(values)), rel=1e-12)
    exact = np.percentile(values, QS)
    got = (summary.p50, summary.p90, summary.p95, summary.p99)
    assert got == pytest.approx(tuple(exact), rel=RELATIVE_ACCURACY + 1e-3)


def test_a_million_values_take_a_few_thousand_buckets():
    d = StreamingDistribution(exact_limit=1000)
    rng = np.random.default_rng(0)
    for chunk in np.array_split(rng.lognormal(-3, 2, 1_000_000), 100):
        d.extend(chunk.tolist())
    assert d.sketch is not None and d.values is None
    assert len(d.sketch.positive) < 3000 and len(d._pending) < 20_000
    assert d.count == 1_000_000


def test_an_aggregate_beyond_its_limit_says_so_and_the_records_give_the_exact_figures(
    fake_server, run_engine, monkeypatch
):
    fake_server.behaviour.itl_s = 0.001
    # The live run sketches beyond 50 values per figure; the records still hold every value.
    monkeypatch.setattr(profile_run, "ProfileAggregate", partial(ProfileAggregate, exact_limit=50))
    result = run_engine(
        fake_server.url, make_profile(concurrency=4, requests=120, max_tokens=5), save_itl=True
    )
    live = result.profile
    assert live.ttft_s is not None and not live.ttft_s.exact and live.ttft_s.count == 120
    exact = exact_distributions(result.run_dir)["t"]
    ttft = [r["ttft_s"] for r in result.records if r["ok"] and not r["warmup"]]
    assert exact["ttft_s"] == Distribution.of(ttft) and exact["ttft_s"].exact
    assert live.ttft_s.p50 == pytest.approx(exact["ttft_s"].p50, rel=RELATIVE_ACCURACY + 1e-3)
    gaps = [g for r in result.records if r["ok"] and not r["warmup"] for g in r["itl_s"]]
    assert exact["itl_s"] == Distribution.of(gaps)


def test_old_summaries_without_the_flag_read_as_exact():
    d = Distribution.model_validate(
        {"count": 1, "mean": 1.0, "p50": 1.0, "p90": 1.0, "p95": 1.0, "p99": 1.0, "max": 1.0}
    )
    assert d.exact
    assert ProfileAggregate(make_profile(), Slo()).summarize(1.0, "completed").ttft_s is None


def test_the_loop_lag_of_a_run_of_any_length_is_reported_whole():
    from engine.run.loop_lag import LoopLagMonitor

    lag = LoopLagMonitor()
    for i in range(150_000):  # 25 minutes of 10 ms readings: the last third lag 30 ms
        lag.samples.add(30.0 if i >= 100_000 else 0.5)
    p50, p99, worst = lag.percentiles_ms()
    assert lag.samples.values is None and len(lag.samples_ms) == 0
    assert p50 == pytest.approx(0.5, rel=RELATIVE_ACCURACY)
    assert p99 == pytest.approx(30.0, rel=RELATIVE_ACCURACY) and worst == 30.0


@pytest.mark.skipif(not Path("/proc/self/task").is_dir(), reason="threads listed by /proc")
def test_numpy_is_loaded_without_a_blas_thread_per_core_and_the_environment_is_kept() -> None:
    # OpenBLAS starts a thread per core when NumPy loads and they spin for a while: on the
    # 16-core device that was ~1.5 s of CPU inside the load generator's process. A server
    # llmtop starts afterwards must still see the environment as it was.
    code = (
        "import os; from engine.metrics.sketch import preload; preload(); import numpy; "
        "print(len(os.listdir('/proc/self/task')), 'OPENBLAS_NUM_THREADS' in os.environ, "
        "os.environ.get('OMP_NUM_THREADS'))"
    )
    env = {k: v for k, v in os.environ.items() if not k.endswith("_NUM_THREADS")}
    env["OMP_NUM_THREADS"] = "3"  # the user's own value is put back as it was
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True
    )
    assert out.stdout.split() == ["1", "False", "3"]
