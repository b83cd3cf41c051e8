"""What makes two runs, or two profiles of the same name, not comparable like for like.

Differences are reported, never silently compared: a faster TTFT means nothing if the prompts
were shorter. Profiles are checked field by field against ``run.json``'s definitions, and by
what the server actually counted (mean prompt and output tokens, ``LENGTH_TOLERANCE_PCT``).
"""

from __future__ import annotations

from typing import Any

from engine.results.runs import RunInfo
from engine.status import ProfileStatus

DEFINITION_FIELDS = (
    "endpoint",
    "concurrency",
    "rate_rps",
    "arrival",
    "input_tokens",
    "prompt_rep",
    "prompt_file",
    "shared_prefix_tokens",
    "max_tokens",
    "exact_output",
    "system_prompt",
    "prompt_suffix",
    "temperature",
    "extra_body",
)
"""Profile fields that change what is measured (not ``requests``: more samples, same thing)."""
LENGTH_TOLERANCE_PCT = 10.0
"""Mean prompt or output lengths further apart than this are flagged."""


def run_mismatches(base: RunInfo, cand: RunInfo) -> list[str]:
    """Run-level differences: model, server kind, runs that did not finish."""
    found = [
        f"{label} differs: {getattr(base, field)} vs {getattr(cand, field)}"
        for label, field in (("model", "model"), ("server", "server_kind"))
        if getattr(base, field) != getattr(cand, field)
    ]
    found += [
        f"{run.run_id} is incomplete (killed before its summary): figures from the "
        "requests it recorded"
        for run in (base, cand)
        if not run.complete
    ]
    return found


def profile_mismatches(base: RunInfo, cand: RunInfo, name: str) -> list[str]:
    """Differences in a profile's definition and in the lengths the server counted."""
    found = []
    a, b = base.definition(name), cand.definition(name)
    if a is None or b is None:
        found.append("profile definition missing from run.json: fields not checked")
    else:
        found += [
            f"{field} differs: {_show(a.get(field))} vs {_show(b.get(field))}"
            for field in DEFINITION_FIELDS
            if a.get(field) != b.get(field)
        ]
    pa, pb = base.profile(name), cand.profile(name)
    if pa is not None and pb is not None:
        for label, field in (("prompt", "mean_input_tokens"), ("output", "mean_output_tokens")):
            va, vb = getattr(pa, field), getattr(pb, field)
            if va and vb and abs(vb - va) / va * 100.0 > LENGTH_TOLERANCE_PCT:
                found.append(f"mean {label} tokens differ: {va:,.1f} vs {vb:,.1f}")
        found += [
            f"{run.run_id} {name}: {p.status}"
            for run, p in ((base, pa), (cand, pb))
            if p.status is not ProfileStatus.COMPLETED
        ]
    return found


def _show(value: Any) -> str:
    """Lengths as people write them (``16``, ``10-200``, ``~500+-50``), the rest as is."""
    if isinstance(value, dict) and {"min", "max"} <= set(value):
        low, high = value["min"], value["max"]
        if value.get("mean") is not None:
            return f"~{value['mean']}+-{value.get('std')}"
        return str(low) if low == high else f"{low}-{high}"
    return "none" if value is None else str(value)
