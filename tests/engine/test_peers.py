"""Peers' definitions (engine/analysis/peers) on recorded streams with hand-computed values.

Three captured streams are replayed through the decoder into records, each on its own
synthetic clock (payload i arrives ``(i + 1) * step`` after the request was sent):

====  ==================================  =====  ====  =========  ==========  ======  =====  ====
req   stream                              sent   step  role (1st  first/last  finish  end    usage
                                                       choices)   text chunk
====  ==================================  =====  ====  =========  ==========  ======  =====  ====
A     llamacpp_chat_usage (24 chunks)     0 s    10    10         20 / 250    260     280    24
B     llamacpp_chat_ignore_eos (16)       1 s    20    20         40 / 340    360     400    16
C     sglang_chat_reasoning_usage (7)     2 s    5     5          10 / 40     45      55     9
====  ==================================  =====  ====  =========  ==========  ======  =====  ====

(times in ms after each request's send). C's server counts 9 tokens in 7 text chunks, so
peers counting usage and peers counting chunks part ways. Each test names the lines of the
peer's source its formula comes from (they are cited in the definitions too).
"""

from __future__ import annotations

import math

import pytest

from engine.analysis.peers import ProfileRequests, parse_peers
from engine.analysis.peers.aiperf import Aiperf
from engine.analysis.peers.guidellm import Guidellm
from engine.analysis.peers.llama_benchy import LlamaBenchy
from engine.analysis.peers.model import PeerFigures, PeerValue
from engine.analysis.peers.sglang import Sglang
from engine.analysis.peers.stats import guidellm_stats
from engine.analysis.peers.vllm import Vllm, chunk_gaps
from engine.errors import InputError
from engine.http.exchange import Exchange
from engine.records import RequestRecord
from tests.support.exchange_replay import ORIGIN, payloads_of, record

MS = 1_000_000
S = 1_000 * MS
WINDOW_S = 2.055  # first scheduled (A, 0 s) to last end (C, 2 s + 55 ms)
USAGE_TOTAL = 24 + 16 + 9


def replay_at(name: str, sent_ns: int, step_ns: int, *, save_itl: bool = True) -> RequestRecord:
    ex = Exchange(sent_ns)
    ex.sent_ns = sent_ns
    payloads = payloads_of(name)
    for i, payload in enumerate(payloads):
        ex.on_payload(payload, sent_ns + (i + 1) * step_ns)
    ex.end_ns = sent_ns + len(payloads) * step_ns
    return record(ex, save_itl=save_itl)


def profile(*, save_itl: bool = True, concurrency: int | None = 1) -> ProfileRequests:
    records = [
        replay_at("llamacpp_chat_usage.sse", ORIGIN, 10 * MS, save_itl=save_itl),
        replay_at("llamacpp_chat_ignore_eos.sse", ORIGIN + S, 20 * MS, save_itl=save_itl),
        replay_at("sglang_chat_reasoning_usage.sse", ORIGIN + 2 * S, 5 * MS, save_itl=save_itl),
    ]
    return ProfileRequests(profile="p", records=records, concurrency=concurrency)


def value(figures: PeerFigures, key: str) -> PeerValue:
    found = figures.value(key)
    assert found is not None
    return found


def ms(x: float | None) -> float:
    assert x is not None
    return x * 1000


def test_the_replayed_records_have_the_instants_of_the_table() -> None:
    a, b, c = profile().records
    assert (a.first_choice_ns, a.last_choice_ns, a.choice_chunks) == (
        ORIGIN + 10 * MS - ORIGIN,
        260 * MS,
        26,
    )
    assert (b.token_chunks, b.choice_chunks, b.completion_tokens) == (16, 18, 16)
    assert (c.token_chunks, c.choice_chunks, c.completion_tokens) == (7, 9, 9)


# -- vLLM 0.32.0: serve.py, lib/endpoint_request_func.py --------------------------------------


def test_vllm_times_events_with_choices_role_and_finish_chunks_included() -> None:
    f = Vllm().figures(profile())
    ttft = value(f, "ttft")
    # TTFT to the first event with choices (endpoint_request_func.py 433-438): the role chunk.
    # [10, 20, 5] ms; np.percentile linear: p90 = 10 + 0.8 * 10, p99 = 10 + 0.98 * 10.
    assert ms(ttft.mean) == pytest.approx(35 / 3)
    assert (ms(ttft.p50), ms(ttft.p90), ms(ttft.p99)) == pytest.approx((10, 18, 19.8))
    # Latency to the last event with choices, the finish chunk (447, 462): not [DONE].
    assert ms(value(f, "e2e").mean) == pytest.approx((260 + 360 + 45) / 3)
    # TPOT = (latency - ttft) / (usage - 1) (serve.py 625-629).
    tpot = value(f, "tpot")
    assert ms(tpot.mean) == pytest.approx((250 / 23 + 340 / 15 + 40 / 8) / 3)
    assert ms(tpot.p50) == pytest.approx(250 / 23)


def test_vllm_itl_counts_one_gap_per_event_with_choices() -> None:
    itl = value(Vllm().figures(profile()), "itl")
    # A: 25 gaps of 10 ms (role .. finish), B: 17 of 20, C: 8 of 5 (its two events without
    # text are the role and finish chunks, so its 6 text gaps gain a lead and a tail).
    assert itl.count == 25 + 17 + 8
    assert ms(itl.mean) == pytest.approx((250 + 340 + 40) / 50)
    assert (ms(itl.p50), ms(itl.p90), ms(itl.p99)) == pytest.approx((10, 20, 20))
    assert itl.note is None


def test_vllm_itl_without_saved_gaps_is_its_exact_mean_and_says_so() -> None:
    itl = value(Vllm().figures(profile(save_itl=False)), "itl")
    assert itl.count == 50
    assert ms(itl.mean) == pytest.approx(630 / 50)
    assert itl.p50 is None
    assert itl.note is not None and "--save-itl" in itl.note


def test_vllm_gaps_are_not_invented_when_events_without_text_cannot_be_placed() -> None:
    a = profile().records[0]
    assert chunk_gaps(a.model_copy(update={"choice_chunks": 29})) is None
    assert chunk_gaps(a.model_copy(update={"choice_chunks": 24})) == a.itl_s


def test_vllm_throughputs_run_over_the_benchmark_loop() -> None:
    f = Vllm().figures(profile())
    # sum(usage) / dur_s and completed / dur_s (serve.py 749-751).
    assert value(f, "output_throughput").mean == pytest.approx(USAGE_TOTAL / WINDOW_S)
    assert value(f, "request_throughput").mean == pytest.approx(3 / WINDOW_S)


def test_vllm_says_what_a_run_before_the_choice_fields_cannot_give() -> None:
    old = [
        r.model_copy(
            update={"first_choice_ns": None, "last_choice_ns": None, "choice_chunks": None}
        )
        for r in profile().records
    ]
    ttft = value(Vllm().figures(ProfileRequests("p", old)), "ttft")
    assert ttft.mean is None
    assert ttft.note is not None and "first_choice_ns" in ttft.note


# -- SGLang 0.5.23: sglang/benchmark/serving.py ------------------------------------------------


def test_sglang_times_text_and_ends_with_the_stream() -> None:
    f = Sglang().figures(profile())
    # TTFT to the first chunk with content or reasoning (564-572), latency to the last line
    # read, [DONE] included (543).
    assert ms(value(f, "ttft").mean) == pytest.approx(70 / 3)
    assert ms(value(f, "e2e").mean) == pytest.approx((280 + 400 + 55) / 3)
    # TPOT = (latency - ttft) / (usage - 1) (1171-1172).
    assert ms(value(f, "tpot").mean) == pytest.approx((260 / 23 + 360 / 15 + 45 / 8) / 3)
    # ITL: the text gaps pooled (574-581, 1183): 23 x 10, 15 x 20, 6 x 5 ms.
    itl = value(f, "itl")
    assert itl.count == 44
    assert ms(itl.mean) == pytest.approx(560 / 44)
    assert ms(itl.p50) == pytest.approx(10)


def test_sglang_counts_the_requested_max_tokens_when_the_server_sends_no_usage() -> None:
    no_usage = [
        r.model_copy(update={"completion_tokens_by_source": {"chunks": r.token_chunks}})
        for r in profile().records
    ]
    limited = [r.model_copy(update={"requested_max_tokens": 32}) for r in no_usage]
    f = Sglang().figures(ProfileRequests("p", limited))
    assert value(f, "output_throughput").mean == pytest.approx(3 * 32 / WINDOW_S)
    assert "max_tokens" in (value(f, "tpot").note or "")


# -- AIPerf 0.13.0: aiperf/metrics/types ---------------------------------------------------------


def test_aiperf_latency_ends_at_the_last_content_response() -> None:
    f = Aiperf().figures(profile())
    # TTFT to the first content response (ttft_metric.py 49-56): the first text chunk.
    assert ms(value(f, "ttft").mean) == pytest.approx(70 / 3)
    # request_latency to the last content response (request_latency_metric.py 38-49).
    e2e = value(f, "e2e")
    assert ms(e2e.mean) == pytest.approx((250 + 340 + 40) / 3)
    # ITL = (latency - TTFT) / (OSL - 1) (inter_token_latency_metric.py 63-102):
    # 230 / 23, 300 / 15, 30 / 8.
    itl = value(f, "itl")
    assert [ms(itl.p50)] == pytest.approx([10])
    assert ms(itl.mean) == pytest.approx((10 + 20 + 3.75) / 3)
    assert value(f, "tpot").mean is None


def test_aiperf_throughputs_run_over_the_profiling_phase() -> None:
    f = Aiperf().figures(profile())
    # Over the phase's window (metric_dicts.py 217-238, records_manager.py 2073-2079), not
    # over the benchmark_duration it reports (to C's last text chunk, 2.040 s).
    assert value(f, "output_throughput").mean == pytest.approx(USAGE_TOTAL / WINDOW_S)
    assert value(f, "request_throughput").mean == pytest.approx(3 / WINDOW_S)
    icl = value(f, "icl")
    assert (icl.count, ms(icl.mean)) == (44, pytest.approx(560 / 44))


# -- GuideLLM v0.7.3+ee7a7745: schemas/request_stats.py, benchmark/schemas/metrics.py ------------


def test_guidellm_tpot_includes_the_first_token_and_is_weighted_by_tokens() -> None:
    f = Guidellm().figures(profile())
    # TPOT = (last token - start) / output_tokens (request_stats.py 175-192):
    # 250 / 24, 340 / 16, 40 / 9, weighted by 24, 16, 9 (metrics.py 948-955).
    tpot = value(f, "tpot")
    assert ms(tpot.mean) == pytest.approx(630 / 49)
    # Weighted cdf 9/49, 33/49, 1: p50 is the middle value, p90 the largest.
    assert (ms(tpot.p50), ms(tpot.p90)) == pytest.approx((250 / 24, 340 / 16))
    # ITL = (last - first token) / (output_tokens - 1), weighted by output_tokens - 1.
    itl = value(f, "itl")
    assert ms(itl.mean) == pytest.approx(560 / 46)
    assert ms(itl.p50) == pytest.approx(10)


def test_guidellm_percentiles_take_a_value_never_interpolate() -> None:
    ttft = value(Guidellm().figures(profile()), "ttft")
    # [10, 20, 40] ms at 1/3 each: p90 is 40 (NumPy would say 36).
    assert (ms(ttft.p50), ms(ttft.p90), ms(ttft.p99)) == pytest.approx((20, 40, 40))
    assert ms(value(Guidellm().figures(profile()), "e2e").mean) == pytest.approx(735 / 3)


def test_guidellm_stats_merge_equal_values_and_drop_zero_weights() -> None:
    stats = guidellm_stats([3.0, 1.0, 1.0, 9.0], [1.0, 1.0, 1.0, 0.0])
    assert stats["mean"] == pytest.approx(5 / 3)
    assert (stats["p50"], stats["p90"]) == (1.0, 3.0)
    assert stats["count"] == 3


def test_guidellm_throughputs_are_events_over_the_measure_window() -> None:
    f = Guidellm().figures(profile())
    assert value(f, "output_throughput").mean == pytest.approx(USAGE_TOTAL / WINDOW_S)
    assert value(f, "request_throughput").mean == pytest.approx(3 / WINDOW_S)


# -- llama-benchy v0.3.0+ae09cab: client.py, results.py ----------------------------------------


def test_llama_benchy_ttft_variants() -> None:
    f = LlamaBenchy().figures(profile())
    # e2e_ttft to the first text chunk, ttfr to the first event with choices (results.py
    # 291-302); with no latency measured, ttft = e2e_ttft and est_ppt = ttfr.
    e2e_ttft = value(f, "e2e_ttft")
    assert ms(e2e_ttft.mean) == pytest.approx(70 / 3)
    assert ms(e2e_ttft.std) == pytest.approx(math.sqrt((100 / 9 + 2500 / 9 + 1600 / 9) / 3))
    assert ms(value(f, "ttfr").mean) == pytest.approx(35 / 3)
    assert value(f, "ttft").mean == e2e_ttft.mean
    assert value(f, "e2e_ttft").p50 is None  # llama-benchy reports no percentiles
    # A measured round trip of 15 ms comes off both, floored at 0 (results.py 298-299).
    shifted = LlamaBenchy(latency_s=0.015).figures(profile())
    assert ms(value(shifted, "ttft").mean) == pytest.approx((5 + 25 + 0) / 3)
    assert ms(value(shifted, "est_ppt").mean) == pytest.approx((0 + 5 + 0) / 3)


def test_llama_benchy_counts_chunks_not_usage() -> None:
    f = LlamaBenchy().figures(profile())
    # (chunks - 1) / (end - first text chunk) (results.py 310-314): 23 / 0.26, 15 / 0.36,
    # 6 / 0.045; at concurrency 1 the throughput is their mean (187).
    speeds = [23 / 0.26, 15 / 0.36, 6 / 0.045]
    assert value(f, "tg_req").mean == pytest.approx(sum(speeds) / 3)
    assert value(f, "output_throughput").mean == pytest.approx(sum(speeds) / 3)
    assert value(f, "request_throughput").mean is None


def test_llama_benchy_batch_throughput_spans_first_to_last_token() -> None:
    f = LlamaBenchy().figures(profile(concurrency=4))
    # (sum(chunks) - requests) / (max last token - min first token) (results.py 320-341).
    assert value(f, "output_throughput").mean == pytest.approx((47 - 3) / (2.040 - 0.020))


# -- the command-line value ---------------------------------------------------------------------


def test_definitions_take_all_or_a_list_in_a_fixed_order() -> None:
    assert parse_peers("all") == ("vllm", "sglang", "aiperf", "guidellm", "llama-benchy")
    assert parse_peers("guidellm, VLLM") == ("vllm", "guidellm")
    with pytest.raises(InputError, match="genai-perf"):
        parse_peers("vllm,genai-perf")
