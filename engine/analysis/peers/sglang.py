"""SGLang's ``bench_serving`` definitions, read from SGLang 0.5.23 (``sglang/benchmark/serving.py``
in the ``sglang-0.5.23`` wheel; ``sglang.bench_serving`` re-exports it), chat backend
(``async_request_openai_chat_completions``).

Unlike vLLM, SGLang times text: its TTFT ends at the first chunk with content or reasoning and
its ITL gaps are between text chunks (llmtop's own). Its latency is taken at every line read,
``[DONE]`` included, so it ends with the stream; and where the server sends no usage it
counts the *requested* ``max_tokens`` as the output length.
"""

from __future__ import annotations

from engine.analysis.peers.model import (
    PeerDefinition,
    PeerValue,
    ProfileRequests,
    join_notes,
    rate_value,
    span_s,
    text_gaps_value,
    usage_tokens,
)
from engine.analysis.peers.stats import numpy_stats
from engine.records import RequestRecord

SERVING = "sglang/benchmark/serving.py"


class Sglang(PeerDefinition):
    """``python -m sglang.bench_serving --backend sglang-oai-chat`` (or ``vllm-chat``...)."""

    key = "sglang"
    version = "0.5.23"

    def values(self, requests: ProfileRequests) -> list[PeerValue]:
        """The six core metrics by this peer's definitions, then its own ones."""
        ok = requests.ok
        window = requests.window_s()
        return [
            # ttft = the first chunk whose delta has content or reasoning - st: 498 (st),
            # 564-572 (``if content:`` then ``if ttft == 0.0``), content = reasoning +
            # content (149-155).
            PeerValue(
                key="ttft",
                name="ttft_ms",
                unit="s",
                formula="first_token_ns - sent_ns",
                source=f"{SERVING}:149-155,498,564-572,1279-1285",
                **numpy_stats([span_s(r.sent_ns, r.first_token_ns) or 0.0 for r in ok]),
            ),
            # tpot = (latency - ttft) / (output_len - 1) where output_len > 1 (1171-1172);
            # output_len = usage completion_tokens (550-552), else the request's own
            # output_len (496): the requested max_tokens.
            PeerValue(
                key="tpot",
                name="tpot_ms",
                unit="s",
                formula="(end_ns - first_token_ns) / (output_len - 1) where output_len > 1; "
                "output_len = usage completion_tokens, else requested_max_tokens",
                source=f"{SERVING}:496,550-552,1171-1172,1286-1291",
                note=_assumed_lengths(ok),
                **numpy_stats([t for r in ok if (t := tpot_s(r)) is not None]),
            ),
            # One gap per later text chunk (574-581), pooled (1182-1183).
            text_gaps_value(
                ok, key="itl", name="itl_ms", source=f"{SERVING}:574-581,1182-1183,1292-1298"
            ),
            # latency = perf_counter at each line read minus st (543), [DONE] included:
            # llmtop's end of stream.
            PeerValue(
                key="e2e",
                name="e2e_latency_ms",
                unit="s",
                formula="end_ns - sent_ns (the last line read, [DONE] included)",
                source=f"{SERVING}:543,586,1186,1299-1304",
                **numpy_stats([span_s(r.sent_ns, r.end_ns) or 0.0 for r in ok]),
            ),
            # output_throughput = sum(output_lens) / dur_s (1274), request_throughput =
            # completed / dur_s (1272); dur_s from before the first request to after the last
            # (1551, 1665).
            rate_value(
                "output_throughput",
                "output_throughput",
                "tok/s",
                sum(output_len(r) for r in ok),
                window,
                count=len(ok),
                formula="sum(output_len) / (max end_ns - min scheduled_ns)",
                source=f"{SERVING}:1274,1551,1665",
            ),
            rate_value(
                "request_throughput",
                "request_throughput",
                "req/s",
                len(ok),
                window,
                count=len(ok),
                formula="successful requests / (max end_ns - min scheduled_ns)",
                source=f"{SERVING}:1272,1551,1665",
            ),
        ]


def output_len(r: RequestRecord) -> int:
    """SGLang's ``output_len``: usage's count, else the ``max_tokens`` it asked for."""
    return usage_tokens(r) or r.requested_max_tokens or 0


def tpot_s(r: RequestRecord) -> float | None:
    """SGLang's TPOT of one request; ``None`` for a single-token answer (left out)."""
    n = output_len(r)
    decode = span_s(r.first_token_ns, r.end_ns)
    return decode / (n - 1) if n > 1 and decode is not None else None


def _assumed_lengths(ok: list[RequestRecord]) -> str | None:
    without = sum(1 for r in ok if usage_tokens(r) is None)
    return join_notes(
        f"{without} requests without usage: SGLang counts their requested max_tokens"
        if without
        else None
    )
