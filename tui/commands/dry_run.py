"""``llmtop run --dry-run``: the requests each profile would send, without sending any."""

from __future__ import annotations

import itertools
from statistics import fmean

from engine.workload.arrivals import arrivals
from engine.workload.profile import Profile
from engine.workload.prompts import PromptFactory

SHOWN_PER_PROFILE = 20
"""Requests listed one per line; the rest are summarised."""
PROMPT_PREVIEW_CHARS = 60


def dry_run(profiles: list[Profile]) -> int:
    """Print each profile's planned requests: index, arrival, lengths, prompt preview."""
    for profile in profiles:
        factory = PromptFactory(profile)
        planned = _planned_count(profile)
        times = _arrival_times(profile, planned)
        print(
            f"{profile.name}: {profile.load_label}, {planned} measured request(s)"
            f" after {profile.warmup_requests} warm-up, endpoint {profile.endpoint}"
        )
        print(f"  {stop_rule(profile)}")
        print(f"  {'#':>6} {'phase':<7} {'arrival_s':>9} {'in_tok':>7} {'max_tok':>7}  prompt")
        plans = [factory.plan(i) for i in range(profile.warmup_requests + planned)]
        for index, plan in enumerate(plans[:SHOWN_PER_PROFILE]):
            warm = index < profile.warmup_requests
            at = "-" if warm or times is None else f"{times[index - profile.warmup_requests]:.3f}"
            preview = plan.text[:PROMPT_PREVIEW_CHARS].replace("\n", " ")
            print(
                f"  {index:>6} {'warm-up' if warm else 'measure':<7} {at:>9} "
                f"{plan.input_tokens if plan.input_tokens is not None else '-':>7} "
                f"{plan.max_tokens:>7}  {preview}..."
            )
        if len(plans) > SHOWN_PER_PROFILE:
            ins = [p.input_tokens for p in plans if p.input_tokens is not None]
            print(
                f"  ... {len(plans) - SHOWN_PER_PROFILE} more; over all {len(plans)}: input "
                f"tokens mean {fmean(ins) if ins else float('nan'):.1f}, max_tokens mean "
                f"{fmean(p.max_tokens for p in plans):.1f}"
            )
        print(
            "  closed loop: each request starts when a slot frees, so arrival is '-'"
            if times is None
            else "  arrival: seconds after the measured phase starts"
        )
    return 0


def stop_rule(profile: Profile) -> str:
    """Which limit ends the profile's measured phase, in words (open loop: when, and after
    how many arrivals; closed loop with both limits: unknowable before the server answers).
    """
    count, duration_s = profile.requests, profile.duration_s
    if duration_s is None:
        return f"stops after {count} measured requests (no time limit)"
    due = _due_within(profile, duration_s)
    if count is None:
        arrived = f": {due} arrivals due" if due is not None else ""
        return f"stops after {duration_s:g} s{arrived} (no count)"
    both = f"stops at {count} requests or after {duration_s:g} s, whichever comes first"
    if due is None:
        return f"{both} (closed loop: which depends on how fast the server answers)"
    if count <= due:
        last_s = next(itertools.islice(arrivals(profile), count - 1, None))
        return f"{both}: the count, at {last_s:.1f} s"
    return f"{both}: the duration, {due} arrivals"


def _due_within(profile: Profile, duration_s: float) -> int | None:
    """Open-loop arrivals due before ``duration_s``; ``None`` in closed loop."""
    if profile.rate_rps is None:
        return None
    return sum(1 for _ in itertools.takewhile(lambda t: t < duration_s, arrivals(profile)))


def _planned_count(profile: Profile) -> int:
    due = _due_within(profile, profile.duration_s) if profile.duration_s else None
    if profile.requests is not None:
        return min(profile.requests, due) if due is not None else profile.requests
    if due is not None:
        return due
    return profile.concurrency or 1  # closed loop bounded only by time: one round shown


def _arrival_times(profile: Profile, count: int) -> list[float] | None:
    if profile.rate_rps is None:
        return None
    return list(itertools.islice(arrivals(profile), count))
