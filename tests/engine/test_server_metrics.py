"""Server-side metrics from Prometheus ``/metrics``: parsing, rates, interval percentiles.

Fixtures in tests/data/metrics/ (README there says where each came from): a real capture from
llama-server, and vLLM and SGLang scrapes written from their documented formats. Expected
percentiles are worked out by hand below with PromQL's formula:
lower + (upper - lower) * (rank - count_below) / count_in_bucket, rank = q * observations.
"""

from __future__ import annotations

import asyncio
import math

import httpx
import pytest

from engine.telemetry.server_metrics import (
    ServerMetricsSample,
    ServerMetricsTracker,
    fetch,
    histogram_quantile,
    parse,
)
from tests.support.paths import DATA
from tests.support.real_server import MODEL, start_llama_server

DATA = DATA / "metrics"
INF = math.inf


def fixture(name: str) -> str:
    return (DATA / name).read_text()


def tracker_fed(*scrapes: tuple[float, str]) -> tuple[ServerMetricsTracker, ServerMetricsSample]:
    tracker = ServerMetricsTracker()
    sample = None
    for t_s, text in scrapes:
        sample = tracker.feed(t_s, text)
    assert sample is not None
    return tracker, sample


# --- parse ---------------------------------------------------------------------------------


def test_parse_keeps_sample_names_as_written():
    samples = parse(fixture("vllm_after.prom"))
    assert samples["vllm:prompt_tokens_total"] == [
        ({"engine": "0", "model_name": "Qwen/Qwen3-0.6B"}, 14000.0),
        ({"engine": "1", "model_name": "Qwen/Qwen3-0.6B"}, 9000.0),
    ]
    assert "vllm:time_to_first_token_seconds_bucket" in samples
    assert "vllm:time_to_first_token_seconds_sum" in samples
    assert "vllm:time_to_first_token_seconds_count" in samples
    inf_bucket = [
        v
        for labels, v in samples["vllm:e2e_request_latency_seconds_bucket"]
        if labels["le"] == "+Inf"
    ]
    assert inf_bucket == [37.0, 18.0]


def test_parse_real_llama_server_capture():
    samples = parse(fixture("llamacpp_after.prom"))
    assert samples["llamacpp:tokens_predicted_total"] == [({}, 24.0)]
    assert samples["llamacpp:n_decode_total"] == [({}, 26.0)]


@pytest.mark.parametrize(
    "text",
    [
        "<html><body>Not Found</body></html>",
        '{"error": "not found"}',
        "hello world",
        'metric{label="unclosed 1',
    ],
)
def test_parse_rejects_text_that_is_not_prometheus(text):
    with pytest.raises(ValueError, match="not Prometheus text"):
        parse(text)


def test_parse_empty_text_is_no_samples():
    assert parse("") == {}


# --- histogram_quantile --------------------------------------------------------------------


def test_histogram_quantile_interpolates_linearly_within_the_bucket():
    buckets = [(0.1, 2.0), (0.2, 6.0), (0.5, 9.0), (1.0, 10.0), (INF, 10.0)]
    # rank 5 falls in (0.1, 0.2], which holds observations 3..6: 0.1 + 0.1 * (5 - 2) / 4.
    assert histogram_quantile(buckets, 0.5) == pytest.approx(0.175)
    # rank 9 is the top of (0.2, 0.5]: 0.2 + 0.3 * (9 - 6) / 3.
    assert histogram_quantile(buckets, 0.9) == pytest.approx(0.5)
    # rank 9.9 in (0.5, 1.0] holding one observation: 0.5 + 0.5 * 0.9 / 1.
    assert histogram_quantile(buckets, 0.99) == pytest.approx(0.95)
    # rank 1 in the first bucket interpolates from 0: 0.1 * 1 / 2.
    assert histogram_quantile(buckets, 0.1) == pytest.approx(0.05)


def test_histogram_quantile_in_the_inf_bucket_is_the_highest_finite_bound():
    buckets = [(0.1, 1.0), (1.0, 2.0), (INF, 10.0)]
    assert histogram_quantile(buckets, 0.5) == 1.0


def test_histogram_quantile_sorts_and_merges_buckets_like_promql():
    # Unordered input and a duplicate bound (two label sets not yet summed).
    buckets = [(INF, 6.0), (0.2, 4.0), (0.1, 1.0), (0.1, 1.0), (INF, 4.0)]
    # Merged: 0.1 -> 2, 0.2 -> 4, +Inf -> 10; rank 3: 0.1 + 0.1 * (3 - 2) / 2.
    assert histogram_quantile(buckets, 0.3) == pytest.approx(0.15)


def test_histogram_quantile_special_cases():
    assert histogram_quantile([(0.1, 0.0), (INF, 0.0)], 0.5) is None  # no observations
    assert histogram_quantile([(0.1, 3.0), (1.0, 5.0)], 0.5) is None  # no +Inf bucket
    assert histogram_quantile([(INF, 5.0)], 0.5) is None  # no finite bucket
    assert histogram_quantile([(0.1, 1.0), (INF, 1.0)], 1.5) == INF
    assert histogram_quantile([(0.1, 1.0), (INF, 1.0)], -0.5) == -INF
    # Counts that go down are raised to the running maximum: 0.2's 1 becomes 3, so rank 3.6
    # lies in (0.2, 0.5] holding one observation: 0.2 + 0.3 * (3.6 - 3) / 1.
    buckets = [(0.1, 3.0), (0.2, 1.0), (0.5, 4.0), (INF, 4.0)]
    assert histogram_quantile(buckets, 0.9) == pytest.approx(0.38)


# --- the real llama-server capture ---------------------------------------------------------


def test_llama_server_capture_rates_and_window_equal_the_counter_deltas():
    before, after = parse(fixture("llamacpp_before.prom")), parse(fixture("llamacpp_after.prom"))
    prompt = (
        after["llamacpp:prompt_tokens_total"][0][1] - before["llamacpp:prompt_tokens_total"][0][1]
    )
    generated = (
        after["llamacpp:tokens_predicted_total"][0][1]
        - before["llamacpp:tokens_predicted_total"][0][1]
    )
    # The three completions of the capture: 3 x 8 tokens; prompts 6 + 7 + 4 less 2 cached.
    assert (prompt, generated) == (15.0, 24.0)

    tracker, sample = tracker_fed(
        (10.0, fixture("llamacpp_before.prom")), (12.5, fixture("llamacpp_after.prom"))
    )
    assert sample.family == "llama.cpp"
    assert sample.prompt_tokens_per_s == pytest.approx(prompt / 2.5)
    assert sample.generation_tokens_per_s == pytest.approx(generated / 2.5)
    assert (sample.running, sample.waiting) == (0.0, 0.0)
    # This build no longer exports kv_cache_usage_ratio; llama.cpp has no latency histograms.
    assert sample.kv_cache_usage_pct is None
    assert sample.preemptions_per_s is None and sample.ttft_p50_s is None
    window = tracker.window_summary()
    assert window["prompt_tokens"] == prompt
    assert window["generation_tokens"] == generated
    assert window["decode_calls"] == 26.0
    assert window["window_s"] == pytest.approx(2.5)
    assert window["ttft_observations"] is None and window["ttft_p50_s"] is None


# --- vLLM (two engines, summed) --------------------------------------------------------------


def test_vllm_first_scrape_has_gauges_but_no_rates():
    sample = ServerMetricsTracker().feed(100.0, fixture("vllm_before.prom"))
    assert sample.family == "vllm"
    assert (sample.running, sample.waiting) == (5.0, 1.0)  # 3 + 2 and 0 + 1 over engines
    assert sample.kv_cache_usage_pct == pytest.approx(25.0)  # mean of 0.2 and 0.3
    assert sample.prompt_tokens_per_s is None and sample.generation_tokens_per_s is None
    assert sample.ttft_p50_s is None and sample.e2e_p99_s is None


def test_vllm_second_scrape_rates_and_interval_percentiles():
    _, sample = tracker_fed(
        (100.0, fixture("vllm_before.prom")), (110.0, fixture("vllm_after.prom"))
    )
    assert (sample.running, sample.waiting) == (8.0, 5.0)
    assert sample.kv_cache_usage_pct == pytest.approx(60.0)
    # Prompt 15000 -> 23000, generation 3000 -> 6000, preemptions 0 -> 3, over 10 s.
    assert sample.prompt_tokens_per_s == pytest.approx(800.0)
    assert sample.generation_tokens_per_s == pytest.approx(300.0)
    assert sample.preemptions_per_s == pytest.approx(0.3)
    # TTFT, new in the interval (both engines): 4 in (0.04, 0.06], 5 in (0.06, 0.08],
    # 1 in (0.25, 0.5]. p50: rank 5 -> 0.06 + 0.02 * (5 - 4) / 5; p99: rank 9.9 ->
    # 0.25 + 0.25 * (9.9 - 9) / 1.
    assert sample.ttft_p50_s == pytest.approx(0.06 + 0.02 * 1 / 5)
    assert sample.ttft_p99_s == pytest.approx(0.25 + 0.25 * 0.9)
    # ITL: 1000 in (0.01, 0.025], 1400 in (0.025, 0.05], 580 in (0.05, 0.075], 10 in
    # (5, 7.5] = 2990. p50: rank 1495 -> 0.025 + 0.025 * 495 / 1400; p99: rank 2960.1 ->
    # 0.05 + 0.025 * (2960.1 - 2400) / 580.
    assert sample.itl_p50_s == pytest.approx(0.025 + 0.025 * 495 / 1400)
    assert sample.itl_p99_s == pytest.approx(0.05 + 0.025 * 560.1 / 580)
    # E2E: 7 in (1.0, 1.5], 3 in (5, 10]. p50: rank 5 -> 1.0 + 0.5 * 5 / 7; p99: rank 9.9 ->
    # 5 + 5 * 2.9 / 3.
    assert sample.e2e_p50_s == pytest.approx(1.0 + 0.5 * 5 / 7)
    assert sample.e2e_p99_s == pytest.approx(5 + 5 * 2.9 / 3)


def test_vllm_window_summary():
    tracker, _ = tracker_fed(
        (100.0, fixture("vllm_before.prom")), (110.0, fixture("vllm_after.prom"))
    )
    window = tracker.window_summary()
    assert window["family"] == "vllm" and window["scrapes"] == 2
    assert window["window_s"] == pytest.approx(10.0)
    assert window["prompt_tokens"] == 8000.0 and window["generation_tokens"] == 3000.0
    assert window["prompt_tokens_per_s"] == pytest.approx(800.0)
    assert window["preemptions"] == 3.0 and window["decode_calls"] is None
    assert window["ttft_observations"] == 10.0
    assert window["ttft_p90_s"] == pytest.approx(0.06 + 0.02 * 5 / 5)  # rank 9: top of 0.08
    assert window["itl_observations"] == 2990.0
    assert window["itl_p90_s"] == pytest.approx(0.05 + 0.025 * (2691 - 2400) / 580)
    assert window["e2e_p90_s"] == pytest.approx(5 + 5 * 2 / 3)  # rank 9
    assert window["e2e_p50_s"] == pytest.approx(1.0 + 0.5 * 5 / 7)


def test_window_summary_spans_first_to_last_scrape():
    # Three scrapes: the middle one must not change the window's totals or percentiles.
    before, after = fixture("vllm_before.prom"), fixture("vllm_after.prom")
    two, _ = tracker_fed((0.0, before), (10.0, after))
    three, last = tracker_fed((0.0, before), (10.0, after), (15.0, after))
    assert last.generation_tokens_per_s == 0.0 and last.ttft_p50_s is None
    expected = {
        **two.window_summary(),
        "scrapes": 3,
        "window_s": 15.0,
        "prompt_tokens_per_s": 8000 / 15,
        "generation_tokens_per_s": 3000 / 15,
    }
    assert three.window_summary() == pytest.approx(expected)


# --- SGLang (the docs' example, then 5 s later) --------------------------------------------


def test_sglang_gauges_rates_and_percentiles():
    tracker, sample = tracker_fed(
        (0.0, fixture("sglang_before.prom")), (5.0, fixture("sglang_after.prom"))
    )
    assert sample.family == "sglang"
    assert (sample.running, sample.waiting) == (170.0, 2810.0)
    assert sample.kv_cache_usage_pct == pytest.approx(41.0)
    assert sample.prompt_tokens_per_s == pytest.approx(10000 / 5)
    assert sample.generation_tokens_per_s == pytest.approx(2500 / 5)
    assert sample.preemptions_per_s is None  # SGLang has no preemption counter
    # TTFT: 4 new in (1.0, 2.5], 2 in (2.5, 5.0]. p50: rank 3 -> 1.0 + 1.5 * 3 / 4;
    # p99: rank 5.94 -> 2.5 + 2.5 * 1.94 / 2.
    assert sample.ttft_p50_s == pytest.approx(1.0 + 1.5 * 3 / 4)
    assert sample.ttft_p99_s == pytest.approx(2.5 + 2.5 * 1.94 / 2)
    # This SGLang version names it time_per_output_token_seconds: 600 in (0.02, 0.025],
    # 300 in (0.025, 0.03], 100 in (0.04, 0.05]. p50: rank 500 -> 0.02 + 0.005 * 500 / 600.
    assert sample.itl_p50_s == pytest.approx(0.02 + 0.005 * 500 / 600)
    assert sample.itl_p99_s == pytest.approx(0.04 + 0.01 * 90 / 100)
    # No request finished in the interval: the e2e histogram did not move.
    assert sample.e2e_p50_s is None and sample.e2e_p99_s is None
    window = tracker.window_summary()
    assert window["prompt_tokens"] == 10000.0 and window["generation_tokens"] == 2500.0
    assert window["ttft_observations"] == 6.0
    assert window["ttft_p90_s"] == pytest.approx(2.5 + 2.5 * (5.4 - 4) / 2)
    assert window["e2e_observations"] == 0.0 and window["e2e_p99_s"] is None


def test_sglang_prefers_inter_token_latency_when_both_exist():
    text = fixture("sglang_after.prom") + (
        'sglang:inter_token_latency_seconds_bucket{le="0.01"} 0.0\n'
        'sglang:inter_token_latency_seconds_bucket{le="+Inf"} 0.0\n'
    )
    later = text.replace(
        'inter_token_latency_seconds_bucket{le="0.01"} 0.0',
        'inter_token_latency_seconds_bucket{le="0.01"} 4.0',
    ).replace(
        'inter_token_latency_seconds_bucket{le="+Inf"} 0.0',
        'inter_token_latency_seconds_bucket{le="+Inf"} 4.0',
    )
    _, sample = tracker_fed((0.0, text), (1.0, later))
    assert sample.itl_p50_s == pytest.approx(0.005)  # rank 2 of 4 in (0, 0.01]


# --- edge cases ----------------------------------------------------------------------------

VLLM_SMALL = """\
vllm:num_requests_running{{model_name="a"}} {running}
vllm:num_requests_running{{model_name="b"}} 1
vllm:gpu_cache_usage_perc{{model_name="a"}} 0.5
vllm:generation_tokens_total{{model_name="a"}} {gen_a}
vllm:generation_tokens_total{{model_name="b"}} {gen_b}
vllm:time_to_first_token_seconds_bucket{{model_name="a",le="0.1"}} {ttft}
vllm:time_to_first_token_seconds_bucket{{model_name="a",le="+Inf"}} {ttft}
vllm:time_per_output_token_seconds_bucket{{model_name="a",le="0.01"}} 5
vllm:time_per_output_token_seconds_bucket{{model_name="a",le="+Inf"}} 5
"""


def small(running: int = 2, gen_a: int = 100, gen_b: int = 50, ttft: int = 4) -> str:
    return VLLM_SMALL.format(running=running, gen_a=gen_a, gen_b=gen_b, ttft=ttft)


def test_label_sets_are_summed_and_old_vllm_names_understood():
    _, sample = tracker_fed((0.0, small()), (2.0, small(running=3, gen_a=120, gen_b=70)))
    assert sample.running == 4.0  # 3 (model a) + 1 (model b)
    assert sample.kv_cache_usage_pct == pytest.approx(50.0)  # gpu_cache_usage_perc only
    assert sample.generation_tokens_per_s == pytest.approx((20 + 20) / 2)
    assert sample.itl_p50_s is None  # time_per_output_token_seconds: no new observations


def test_counter_reset_gives_no_rate_and_the_window_counts_after_the_restart():
    tracker, sample = tracker_fed(
        (0.0, small(gen_a=100, gen_b=50)),
        (1.0, small(gen_a=120, gen_b=50)),
        (2.0, small(gen_a=5, gen_b=0, ttft=1)),
    )
    assert sample.generation_tokens_per_s is None
    assert sample.ttft_p50_s is None  # the histogram went down too
    after = tracker.feed(3.0, small(gen_a=15, gen_b=0, ttft=3))
    assert after.generation_tokens_per_s == pytest.approx(10.0)
    assert after.ttft_p50_s == pytest.approx(0.05)  # 2 new in (0, 0.1]
    window = tracker.window_summary()
    # 20 before the restart, 5 counted by the restarted server, then 10 more.
    assert window["generation_tokens"] == 35.0
    assert window["ttft_observations"] == 3.0  # 0, then 1 since the restart, then 2


def test_histogram_without_new_observations_gives_no_percentiles():
    _, sample = tracker_fed((0.0, small()), (1.0, small(gen_a=110)))
    assert sample.generation_tokens_per_s == pytest.approx(10.0)
    assert (sample.ttft_p50_s, sample.ttft_p99_s) == (None, None)


def test_unknown_family_has_every_figure_none():
    text = '# TYPE http_requests_total counter\nhttp_requests_total{code="200"} 7\n'
    tracker, sample = tracker_fed((0.0, text), (1.0, text.replace("7", "9")))
    assert sample.family == "unknown"
    figures = {k: v for k, v in sample.as_dict().items() if k not in ("t_s", "family")}
    assert set(figures.values()) == {None}
    window = tracker.window_summary()
    assert window["family"] == "unknown" and window["generation_tokens"] is None


def test_invalid_text_raises_and_leaves_the_tracker_unchanged():
    tracker = ServerMetricsTracker()
    tracker.feed(0.0, small())
    with pytest.raises(ValueError):
        tracker.feed(1.0, "<html>502 Bad Gateway</html>")
    sample = tracker.feed(2.0, small(gen_a=120))
    assert sample.generation_tokens_per_s == pytest.approx(10.0)
    assert tracker.window_summary()["scrapes"] == 2


def test_window_summary_before_two_scrapes():
    assert ServerMetricsTracker().window_summary()["family"] is None
    tracker, _ = tracker_fed((0.0, fixture("vllm_before.prom")))
    window = tracker.window_summary()
    assert window["scrapes"] == 1 and window["window_s"] is None
    assert window["prompt_tokens"] is None and window["ttft_p50_s"] is None


def test_as_dict_has_every_field():
    sample = ServerMetricsTracker().feed(1.5, small())
    data = sample.as_dict()
    assert data["t_s"] == 1.5 and data["family"] == "vllm" and data["running"] == 3.0
    assert list(data) == [f for f in ServerMetricsSample.__dataclass_fields__]


# --- fetch ---------------------------------------------------------------------------------


def fetch_with(handler) -> str | None:
    async def main() -> str | None:
        async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as http:
            return await fetch(http, "http://server:8000/")

    return asyncio.run(main())


def test_fetch_returns_the_text():
    def handler(request: httpx.Request) -> httpx.Response:
        assert request.url.path == "/metrics"
        return httpx.Response(200, text="vllm:num_requests_running 1\n")

    assert fetch_with(handler) == "vllm:num_requests_running 1\n"


def test_fetch_returns_none_on_404_and_on_errors():
    assert fetch_with(lambda request: httpx.Response(404, text="Not Found")) is None
    assert fetch_with(lambda request: httpx.Response(501, text="disabled")) is None

    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    assert fetch_with(refuse) is None


# --- the real server -----------------------------------------------------------------------


@pytest.mark.real_server
def test_real_llama_server_metrics(tmp_path):
    server = start_llama_server(tmp_path)
    try:
        before, usages, after = asyncio.run(scrape_around_requests(server.url))
    finally:
        server.stop()
    assert before is not None and after is not None
    tracker, sample = tracker_fed((0.0, before), (1.0, after))
    assert sample.family == "llama.cpp"
    window = tracker.window_summary()
    assert window["generation_tokens"] == sum(u["completion_tokens"] for u in usages)
    # llama.cpp's prompt_tokens_total leaves out prompt tokens reused from its cache.
    cached = sum(u.get("prompt_tokens_details", {}).get("cached_tokens", 0) for u in usages)
    assert window["prompt_tokens"] == sum(u["prompt_tokens"] for u in usages) - cached


async def scrape_around_requests(url: str) -> tuple[str | None, list[dict], str | None]:
    async with httpx.AsyncClient(timeout=60) as http:
        before = await fetch(http, url)
        usages = []
        for prompt in ("The capital of France is", "One, two, three,"):
            response = await http.post(
                url + "/v1/completions",
                json={"model": MODEL, "prompt": prompt, "max_tokens": 8, "temperature": 0},
            )
            response.raise_for_status()
            usages.append(response.json()["usage"])
        after = await fetch(http, url)
    return before, usages, after
