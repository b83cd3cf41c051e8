"""Peers' definitions, computed: TTFT, TPOT, ITL, E2E and throughputs as vLLM, SGLang, AIPerf,
GuideLLM and llama-benchy define them, recomputed from llmtop's per-request records.

One module per peer, each a ``PeerDefinition`` whose formulas sit beside the file and lines of
the peer's source they were read from (re-implemented, never imported); ``model`` holds the
result types and shared pieces, ``stats`` the peers' ways of summarising, ``compute`` the
reading of a run folder. Part of ``engine.analysis``: imports the layers below it only.
"""

from engine.analysis.peers.compute import (
    OWN,
    PEERS,
    SUMMARY_SECTION,
    parse_peers,
    record_in_summary,
    run_peer_figures,
    summary_section,
)
from engine.analysis.peers.model import CORE_METRICS, PeerFigures, PeerValue, ProfileRequests

__all__ = [
    "CORE_METRICS",
    "OWN",
    "PEERS",
    "SUMMARY_SECTION",
    "PeerFigures",
    "PeerValue",
    "ProfileRequests",
    "parse_peers",
    "record_in_summary",
    "run_peer_figures",
    "summary_section",
]
