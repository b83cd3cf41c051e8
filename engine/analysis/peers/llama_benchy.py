"""llama-benchy's definitions, read from eugr/llama-benchy at ae09cab (v0.3.0 + 2 commits):
``src/llama_benchy/client.py`` for the instants, ``src/llama_benchy/results.py`` for the figures.

llama-benchy counts streamed chunks with text as tokens (never ``usage``) and has three TTFTs:
``ttfr`` to the first event with choices (the role chunk), ``e2e_ttft`` to the first text
chunk, and ``ttft`` = ``e2e_ttft`` minus a network latency it measures before the run
(``--latency-mode api``: the mean of three ``GET /models``); ``est_ppt`` is ``ttfr`` minus
the same latency. llmtop measures no such latency, so it is taken as 0 (llama-benchy's
``--latency-mode none``). It reports means and standard deviations, no percentiles, no E2E
and no request rate. Its runs are batches of ``concurrency`` requests sent together; a
closed-loop profile is taken here as one batch.
"""

from __future__ import annotations

from engine.analysis.peers.model import (
    NO_CHOICE_TIMES,
    PeerDefinition,
    PeerValue,
    ProfileRequests,
    absent_value,
    join_notes,
    rate_value,
    span_s,
)
from engine.analysis.peers.stats import mean_std
from engine.records import RequestRecord
from engine.stats import NS

CLIENT = "src/llama_benchy/client.py"
RESULTS = "src/llama_benchy/results.py"
LATENCY = "latency taken as 0 (llama-benchy's --latency-mode none): llmtop measures no round trip"
NOT_REPORTED = "llama-benchy reports no such figure"


class LlamaBenchy(PeerDefinition):
    """``llama-benchy`` (its ``ctx_pp``/``ctx_tg`` rows), with ``latency_s`` subtracted from
    its TTFTs where llama-benchy subtracts its measured round trip.
    """

    key = "llama-benchy"
    version = "0.3.0+ae09cab"

    def __init__(self, latency_s: float = 0.0) -> None:
        self.latency_s = latency_s

    def values(self, requests: ProfileRequests) -> list[PeerValue]:
        """The six core metrics by this peer's definitions, then its own ones."""
        ok = requests.ok
        e2e_ttfts = [span_s(r.sent_ns, r.first_token_ns) for r in ok]
        ttfrs = [span_s(r.sent_ns, r.first_choice_ns) for r in ok]
        latency_note = None if self.latency_s else LATENCY
        untimed = NO_CHOICE_TIMES if any(r.first_choice_ns is None for r in ok) else None
        return [
            # ttft = max(0, e2e_ttft - latency) (results.py 295-298).
            PeerValue(
                key="ttft",
                name="ttft",
                unit="s",
                formula="max(0, first_token_ns - sent_ns - latency)",
                source=f"{CLIENT}:143,186-188; {RESULTS}:295-302",
                note=latency_note,
                **mean_std([max(0.0, t - self.latency_s) for t in e2e_ttfts if t is not None]),
            ),
            absent_value("tpot", "s", f"{NOT_REPORTED}; tg_req below is its inverse"),
            absent_value("itl", "s", NOT_REPORTED),
            absent_value("e2e", "s", NOT_REPORTED),
            self._tg_throughput(requests),
            absent_value("request_throughput", "req/s", NOT_REPORTED),
            # e2e_ttft = first_token_ts - start_ts (results.py 295-297): the first chunk with
            # content, reasoning_content or reasoning text (client.py 186-188).
            PeerValue(
                key="e2e_ttft",
                name="e2e_ttft",
                unit="s",
                formula="first_token_ns - sent_ns",
                source=f"{CLIENT}:143,186-188; {RESULTS}:295-297",
                **mean_std([t for t in e2e_ttfts if t is not None]),
            ),
            # ttfr = first_response_ts - start_ts (results.py 291-293): the first event with
            # a non-empty choices list (client.py 177-179).
            PeerValue(
                key="ttfr",
                name="ttfr",
                unit="s",
                formula="first_choice_ns - sent_ns",
                source=f"{CLIENT}:143,177-179; {RESULTS}:291-293",
                note=untimed,
                **mean_std([t for t in ttfrs if t is not None]),
            ),
            # est_ppt = max(0, ttfr - latency) (results.py 299).
            PeerValue(
                key="est_ppt",
                name="est_ppt",
                unit="s",
                formula="max(0, first_choice_ns - sent_ns - latency)",
                source=f"{RESULTS}:299",
                note=join_notes(untimed, latency_note),
                **mean_std([max(0.0, t - self.latency_s) for t in ttfrs if t is not None]),
            ),
            # Per request: (total_tokens - 1) / (end_ts - first_token_ts), total_tokens being
            # the text chunks (results.py 310-314; client.py 190, 195).
            PeerValue(
                key="tg_req",
                name="t_s_req",
                unit="tok/s",
                formula="(token_chunks - 1) / (end_ns - first_token_ns) where token_chunks > 1",
                source=f"{CLIENT}:190,195; {RESULTS}:188,310-314",
                **mean_std([s for r in ok if (s := tg_speed(r)) is not None]),
            ),
        ]

    def _tg_throughput(self, requests: ProfileRequests) -> PeerValue:
        ok = requests.ok
        if (requests.concurrency or 1) <= 1:
            # One request at a time: the mean of the per-request speeds (results.py 187).
            return PeerValue(
                key="output_throughput",
                name="t_s",
                unit="tok/s",
                formula="mean over requests of (token_chunks - 1) / (end_ns - first_token_ns)",
                source=f"{RESULTS}:187,310-314",
                **mean_std([s for r in ok if (s := tg_speed(r)) is not None]),
            )
        # A batch: (sum(total_tokens) - requests) / (max last token - min first token)
        # (results.py 320-341).
        firsts = [r.first_token_ns for r in ok if r.first_token_ns is not None]
        lasts = [r.last_token_ns or r.end_ns for r in ok]
        window = (max(lasts) - min(firsts)) / NS if firsts and lasts else None
        tokens = sum(r.token_chunks for r in ok)
        return rate_value(
            "output_throughput",
            "t_s",
            "tok/s",
            tokens - len(ok) if tokens > len(ok) else 0,
            window,
            count=len(ok),
            formula="(sum(token_chunks) - requests) / (max last_token_ns - min first_token_ns)",
            source=f"{RESULTS}:187,320-341",
            note="the whole profile taken as one batch",
        )


def tg_speed(r: RequestRecord) -> float | None:
    """llama-benchy's generation speed of one request, tokens/s (chunks with text counted)."""
    decode = span_s(r.first_token_ns, r.end_ns)
    if r.token_chunks > 1 and decode:
        return (r.token_chunks - 1) / decode
    return None
