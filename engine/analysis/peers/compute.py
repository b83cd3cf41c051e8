"""A run's records, recomputed by the peers' definitions, profile by profile.

``parse_peers`` reads the ``--definitions`` value; ``run_peer_figures`` reads a run folder
and returns one ``PeerFigures`` per profile and peer, llmtop's own figures (from the run's
summary) first so every table has its reference column; ``summary_section`` is what
``summary.json`` records under ``peer_definitions``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

from engine.analysis.peers.aiperf import Aiperf
from engine.analysis.peers.guidellm import Guidellm
from engine.analysis.peers.llama_benchy import LlamaBenchy
from engine.analysis.peers.model import PeerDefinition, PeerFigures, PeerValue, ProfileRequests
from engine.analysis.peers.sglang import Sglang
from engine.analysis.peers.vllm import Vllm
from engine.errors import InputError
from engine.metrics.summary import Distribution, ProfileSummary
from engine.records import RequestRecord
from engine.results.folder import iter_records, read_json
from engine.results.layout import SUMMARY_FILE
from engine.results.runs import RunInfo
from engine.results.writer import write_json_atomic

PEERS: dict[str, Callable[[], PeerDefinition]] = {
    "vllm": Vllm,
    "sglang": Sglang,
    "aiperf": Aiperf,
    "guidellm": Guidellm,
    "llama-benchy": LlamaBenchy,
}
"""Every peer ``--definitions`` knows, in display order."""
OWN = "llmtop"
"""The key of llmtop's own figures in the tables."""
SUMMARY_SECTION = "peer_definitions"
"""The key ``summary.json`` holds the recomputation under."""


def parse_peers(text: str) -> tuple[str, ...]:
    """``all`` or a comma-separated list of peer keys, in ``PEERS`` order.

    Raises:
        InputError: a name that is not a known peer.

    """
    names = {n.strip().lower() for n in text.split(",") if n.strip()}
    if "all" in names:
        return tuple(PEERS)
    unknown = sorted(names - set(PEERS))
    if unknown or not names:
        raise InputError(f"--definitions takes all or any of {', '.join(PEERS)} (got {text!r})")
    return tuple(p for p in PEERS if p in names)


def run_peer_figures(run: RunInfo, peers: Sequence[str], notes: list[str]) -> list[PeerFigures]:
    """Llmtop's figures and each peer's, for every profile of ``run`` with measured requests.

    Reads ``requests.jsonl`` once; holds the measured records of the run (what a peer needs:
    windows, raw gaps) until every profile is computed.
    """
    grouped = group_by_profile(iter_records(Path(run.path), notes))
    definitions = [PEERS[p]() for p in peers]
    figures: list[PeerFigures] = []
    for requests in grouped:
        summary = run.profile(requests.profile)
        if summary is not None:
            figures.append(own_figures(summary))
        figures += [d.figures(requests) for d in definitions]
    return figures


def group_by_profile(records: Iterable[RequestRecord]) -> list[ProfileRequests]:
    """Measured records (warm-up excluded) per profile, profiles in order of first record."""
    grouped: dict[str, list[RequestRecord]] = {}
    for record in records:
        if not record.warmup:
            grouped.setdefault(record.profile, []).append(record)
    return [
        ProfileRequests(profile=name, records=rs, concurrency=rs[0].concurrency)
        for name, rs in grouped.items()
    ]


def own_figures(p: ProfileSummary) -> PeerFigures:
    """Llmtop's own figures of a profile, from its summary (README "Metric definitions")."""
    return PeerFigures(
        peer=OWN,
        version="this run",
        profile=p.profile,
        requests=p.requests,
        values=[
            _own("ttft", "ttft_s", p.ttft_s, "first_token_ns - sent_ns"),
            _own("tpot", "tpot_s", p.tpot_s, "(e2e - ttft) / (completion_tokens - 1)"),
            _own("itl", "itl_s", p.itl_s, "gaps between text chunks, pooled"),
            _own("e2e", "e2e_s", p.e2e_s, "end_ns - sent_ns"),
            PeerValue(
                key="output_throughput",
                name="output_tokens_per_s",
                unit="tok/s",
                count=p.successes,
                mean=p.output_tokens_per_s,
                formula="completion tokens / measured duration",
                source="README.md: Metric definitions",
            ),
            PeerValue(
                key="request_throughput",
                name="requests_per_s",
                unit="req/s",
                count=p.successes,
                mean=p.requests_per_s,
                formula="successful requests / measured duration",
                source="README.md: Metric definitions",
            ),
        ],
    )


def _own(key: str, name: str, d: Distribution | None, formula: str) -> PeerValue:
    return PeerValue(
        key=key,
        name=name,
        unit="s",
        count=d.count if d else 0,
        mean=d.mean if d else None,
        p50=d.p50 if d else None,
        p90=d.p90 if d else None,
        p99=d.p99 if d else None,
        formula=formula,
        source="README.md: Metric definitions",
        note=None if d or key != "itl" else "no gaps in the summary",
    )


def summary_section(figures: Sequence[PeerFigures]) -> dict[str, Any]:
    """What ``summary.json`` records under ``peer_definitions``: the figures per profile and
    peer (llmtop's own left out: they are the summary).
    """
    section: dict[str, Any] = {}
    for f in figures:
        if f.peer == OWN:
            continue
        profile = section.setdefault(f.profile, {})
        profile[f.peer] = f.model_dump(mode="json", exclude={"peer", "profile"})
    return section


def record_in_summary(run: RunInfo, figures: Sequence[PeerFigures], notes: list[str]) -> bool:
    """Put ``summary_section(figures)`` into the run's ``summary.json`` under
    ``peer_definitions`` (replacing an earlier one); older llmtops ignore the key.

    Returns:
        False, with a note, when the run has no ``summary.json`` (killed) to record it in.

    Raises:
        WriteFailed: the file could not be replaced (the old one is left as it was).

    """
    path = Path(run.path) / SUMMARY_FILE
    data = read_json(path, []) if path.is_file() else None
    if data is None:
        notes.append(f"{run.run_id}: no readable summary.json to record the definitions in")
        return False
    write_json_atomic(path, {**data, SUMMARY_SECTION: summary_section(figures)})
    return True
