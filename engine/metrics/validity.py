"""What ``summary.json`` says about the run's own validity: the rules, and one entry per rule
broken (per profile), with when it first broke, how often and how badly.

The rules themselves, with their thresholds and formulas, are in ``engine/run/validity.py``;
they run live, fed by the engine's events, and raise ``ValidityWarned`` the first time each
one breaks in a profile. This module is only the closed set of names and the stored entry.
"""

from __future__ import annotations

from enum import StrEnum

from pydantic import BaseModel, ConfigDict


class ValidityRule(StrEnum):
    """Each rule whose breach makes a run's figures suspect (engine/run/validity.py)."""

    CLIENT_CPU = "client_cpu"
    """llmtop's own process used most of a core: the client may be the bottleneck."""
    LOOP_LAG = "loop_lag"
    """llmtop's event loop ran late: chunk timestamps are late by about as much."""
    SCHEDULE_LAG = "schedule_lag"
    """Open loop: requests went out later than their arrivals: the offered load differed."""
    POOL_WAIT = "pool_wait"
    """Closed loop: requests waited inside the client for a connection."""
    USAGE_MISSING = "usage_missing"
    """The server sent no ``usage``: token counts came from ``timings`` or chunks."""
    TOKEN_MISMATCH = "token_mismatch"
    """``usage``, ``timings`` and the number of text chunks disagree."""
    PROMPT_LENGTH = "prompt_length"
    """The server counted a prompt length other than the one asked for."""
    CACHE_HITS = "cache_hits"
    """The server served prompt tokens from its cache although every prompt differs."""
    SERVER_QUEUE = "server_queue"
    """The server's ``/metrics`` showed requests waiting throughout a latency-goal load."""
    GPU_GAP = "gpu_gap"
    """A GPU reading was missed (NVML gave nothing, or sampling fell behind)."""
    GPU_CLOCK = "gpu_clock"
    """A busy GPU's SM clock fell well below its peak: throttling."""


class ValidityIssue(BaseModel):
    """One rule broken in one profile (or in the run, outside any profile)."""

    model_config = ConfigDict(frozen=True)

    rule: ValidityRule
    """Which rule."""
    profile: str | None
    """The profile running when it broke (``None``: between profiles)."""
    first_s: float
    """Run time (seconds from the run's clock origin) when it first broke."""
    count: int
    """How many times it was found broken (one per window or check)."""
    worst: float
    """The worst value seen, in ``unit`` (the highest; for ``gpu_clock`` the lowest)."""
    threshold: float
    """The limit the value was held against, in ``unit``."""
    unit: str
    """``%``, ``ms`` or ``s``."""
    message: str
    """The first breach in words, with its numbers."""
