"""The knee of a concurrency ladder or rate sweep: how much load a server takes.

A *sweep* is three or more profiles of one run that differ only in load: concurrency (closed
loop, e.g. a suite's ``concurrency_ladder``) or ``rate_rps`` (open loop), and in how long each
step runs (``requests``, ``duration_s``, ``warmup_requests``, ``max_in_flight``: a ladder often
sends more requests at higher load). Profiles are grouped by their definition with those
fields, ``name`` and ``description`` left out; without definitions, by name with a ``-cN``
suffix removed. Steps are ordered by load.

Two answers per sweep, each with the numbers that decided it:

* **SLO knee**: the highest load such that it and every lower step meet the SLOs: p99 TTFT <=
  ``slo.ttft_s`` (when set), p99 TPOT <= ``slo.tpot_s`` (when set), and no failed request
  (``cancelled`` ones excluded: llmtop stopped them). Contiguous from the bottom, so a lucky
  high step after a failing one does not count. Absent when no SLO is set or the lowest step
  already misses.
* **Saturation**: output tokens/s gain of step *i* over step *i-1*, in percent,
  ``100 * (T_i - T_{i-1}) / T_{i-1}``, per step (not per doubling: a ladder's steps need not
  double). Throughput stops growing at step *i-1*, where *i* is the first step whose gain is
  below ``gain_threshold_pct`` (default 10 %). Absent when every step gains at least that.

A step the over-saturation stop ended (``ProfileSummary.saturation_stop``, README "When the
server falls over") marks the knee: ``stopped_load`` and ``stop_reason`` name it, and when the
gains alone found no saturation point, the step before it is the saturation point. Such a
sweep needs only two steps (the later ones were skipped).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict

if TYPE_CHECKING:
    from engine.metrics.summary import ProfileSummary, Slo
    from engine.workload.profile import Profile

LoadKind = Literal["concurrency", "rate_rps"]
"""What varies between the steps of a sweep."""

DEFAULT_GAIN_THRESHOLD_PCT = 10.0
"""Throughput gain per step below which a sweep counts as saturated."""
MIN_STEPS = 3
"""Fewest distinct loads that make a sweep (two points give a line, not a knee)."""
LOAD_FIELDS = frozenset(
    {
        "name",
        "description",
        "concurrency",
        "rate_rps",
        "requests",
        "duration_s",
        "warmup_requests",
        "max_in_flight",
    }
)
"""Profile fields that may differ between the steps of one sweep."""
_LOAD_SUFFIX = re.compile(r"-(c\d+|r[\d.]+)$")


class LoadStep(BaseModel):
    """One step of a sweep and the figures the knee is decided on."""

    model_config = ConfigDict(frozen=True)

    profile: str
    """Profile name of the step."""
    load: float
    """Concurrency or arrival rate (requests/s)."""
    output_tokens_per_s: float
    """Output token throughput of the step."""
    gain_pct: float | None
    """Throughput gain over the previous step in percent (``None`` for the first)."""
    ttft_p99_s: float | None
    """p99 time to first token."""
    tpot_p99_s: float | None
    """p99 time per output token."""
    failures: int
    """Failed requests, ``cancelled`` ones excluded."""
    slo_misses: list[str]
    """Why the step misses the SLOs (``TTFT p99 1,210 ms > 1,000 ms``); empty if it meets them."""


class Knee(BaseModel):
    """The SLO knee and the saturation point of one sweep (definitions: module docstring)."""

    model_config = ConfigDict(frozen=True)

    group: str
    """The sweep's base profile name (``ladder-step`` for ``ladder-step-c1``...)."""
    load_kind: LoadKind
    """What varies between steps."""
    steps: list[LoadStep]
    """The steps, lowest load first."""
    slo_ttft_s: float | None
    """TTFT objective used (p99 must meet it)."""
    slo_tpot_s: float | None
    """TPOT objective used (p99 must meet it)."""
    gain_threshold_pct: float
    """Gain per step under which throughput counts as no longer growing."""
    slo_knee_load: float | None
    """Highest load meeting the SLOs (contiguously from the lowest step)."""
    slo_reason: str
    """The numbers that decided the SLO knee."""
    saturation_load: float | None
    """Load at which throughput stops growing."""
    saturation_reason: str
    """The numbers that decided the saturation point."""
    stopped_load: float | None = None
    """The step the over-saturation stop ended early (later steps were skipped)."""
    stop_reason: str | None = None
    """Why it stopped: ``stopped at concurrency 128: TTFT grew 4.1x in 20 s ...``."""

    def label(self, load: float | None) -> str:
        """``c=8`` or ``4 rps``."""
        if load is None:
            return "-"
        return f"c={load:g}" if self.load_kind == "concurrency" else f"{load:g} rps"

    def lines(self) -> list[str]:
        """Plain-text statement of both answers, for consoles and reports."""
        lines = [
            f"knee of {self.group} ({len(self.steps)} steps, "
            f"{self.label(self.steps[0].load)} .. {self.label(self.steps[-1].load)}):",
            f"  SLO knee: {self.label(self.slo_knee_load)}: {self.slo_reason}",
            f"  saturation: {self.label(self.saturation_load)}: {self.saturation_reason}",
        ]
        if self.stop_reason:
            lines.append(f"  over-saturated: {self.stop_reason}; later steps skipped")
        return lines


def find_knees(
    summaries: Sequence[ProfileSummary],
    definitions: Iterable[Profile | Mapping[str, Any]] = (),
    slo: Slo | None = None,
    gain_threshold_pct: float = DEFAULT_GAIN_THRESHOLD_PCT,
) -> list[Knee]:
    """The knee of every sweep among a run's profiles.

    Args:
        summaries: The run's profile summaries, in any order.
        definitions: The run's profiles (``Profile`` objects or their dumps from ``run.json``);
            used to group steps that differ only in load. Without them, names group.
        slo: Objectives for the SLO knee; default: each step's own ``slo``.
        gain_threshold_pct: Gain per step under which throughput stops growing.

    Returns:
        One ``Knee`` per sweep of at least ``MIN_STEPS`` distinct loads; empty if none.

    """
    keys = {d["name"]: sweep_key(d) for d in map(_as_dict, definitions)}
    groups: dict[tuple[LoadKind, str], list[ProfileSummary]] = {}
    for s in summaries:
        kind: LoadKind = "concurrency" if s.concurrency is not None else "rate_rps"
        key = keys.get(s.profile) or _LOAD_SUFFIX.sub("", s.profile)
        groups.setdefault((kind, key), []).append(s)
    knees = []
    for (kind, _key), members in groups.items():
        stopped = any(s.saturation_stop for s in members)
        if len({_load(s) for s in members}) >= (2 if stopped else MIN_STEPS):
            members = sorted(members, key=_load)
            knees.append(_knee(members, kind, slo or members[0].slo, gain_threshold_pct))
    return knees


def _as_dict(definition: Profile | Mapping[str, Any]) -> Mapping[str, Any]:
    return definition if isinstance(definition, Mapping) else definition.model_dump(mode="json")


def sweep_key(definition: Profile | Mapping[str, Any]) -> str:
    """What the steps of one sweep share: the definition without its load fields (and the
    load kind, since a closed-loop and an open-loop version of a profile are two sweeps).
    """
    data = _as_dict(definition)
    rest = {k: v for k, v in data.items() if k not in LOAD_FIELDS}
    kind = "concurrency" if data.get("concurrency") is not None else "rate_rps"
    return kind + json.dumps(rest, sort_keys=True, default=str)


def _load(s: ProfileSummary) -> float:
    return float(s.concurrency if s.concurrency is not None else s.rate_rps or 0.0)


def _knee(members: list[ProfileSummary], kind: LoadKind, slo: Slo, threshold: float) -> Knee:
    steps: list[LoadStep] = []
    previous: float | None = None
    for s in members:
        gain = (
            None
            if previous is None or previous <= 0
            else 100.0 * (s.output_tokens_per_s - previous) / previous
        )
        steps.append(_step(s, gain, slo))
        previous = s.output_tokens_per_s
    draft = Knee(
        group=_group_name([s.profile for s in members]),
        load_kind=kind,
        steps=steps,
        slo_ttft_s=slo.ttft_s,
        slo_tpot_s=slo.tpot_s,
        gain_threshold_pct=threshold,
        slo_knee_load=None,
        slo_reason="",
        saturation_load=None,
        saturation_reason="",
    )
    slo_load, slo_reason = _slo_knee(draft)
    sat_load, sat_reason = _saturation(draft)
    stopped = next((i for i, s in enumerate(members) if s.saturation_stop), None)
    marks: dict[str, Any] = {}
    if stopped is not None:
        marks = {
            "stopped_load": steps[stopped].load,
            "stop_reason": members[stopped].saturation_stop,
        }
        if sat_load is None:
            sat_load = steps[max(stopped - 1, 0)].load
            sat_reason = f"the step after it fell over: {members[stopped].saturation_stop}"
    return draft.model_copy(
        update={
            "slo_knee_load": slo_load,
            "slo_reason": slo_reason,
            "saturation_load": sat_load,
            "saturation_reason": sat_reason,
            **marks,
        }
    )


def _group_name(names: list[str]) -> str:
    """``ladder-step`` for ``ladder-step-c1``, ``-c2``...; else ``c1..c32``."""
    bases = {_LOAD_SUFFIX.sub("", name) for name in names}
    if len(bases) == 1 and bases != {names[0]}:
        return bases.pop()
    return f"{names[0]}..{names[-1]}"


def _step(s: ProfileSummary, gain: float | None, slo: Slo) -> LoadStep:
    ttft = s.ttft_s.p99 if s.ttft_s else None
    tpot = s.tpot_s.p99 if s.tpot_s else None
    failures = s.failures - s.failures_by_kind.get("cancelled", 0)
    misses = []
    if s.successes == 0:
        misses.append("no successful request")
    if failures:
        misses.append(f"{failures} failed requests")
    for name, value, limit in (("TTFT", ttft, slo.ttft_s), ("TPOT", tpot, slo.tpot_s)):
        if limit is not None and value is not None and value > limit:
            misses.append(f"{name} p99 {_ms(value)} > {_ms(limit)}")
    return LoadStep(
        profile=s.profile,
        load=_load(s),
        output_tokens_per_s=s.output_tokens_per_s,
        gain_pct=gain,
        ttft_p99_s=ttft,
        tpot_p99_s=tpot,
        failures=failures,
        slo_misses=misses,
    )


def _slo_knee(knee: Knee) -> tuple[float | None, str]:
    if knee.slo_ttft_s is None and knee.slo_tpot_s is None:
        return None, "no SLO set (--slo-ttft, --slo-tpot)"
    objectives = " and ".join(
        f"{n} p99 <= {_ms(v)}"
        for n, v in (("TTFT", knee.slo_ttft_s), ("TPOT", knee.slo_tpot_s))
        if v
    )
    passed = None
    for step in knee.steps:
        if step.slo_misses:
            if passed is None:
                return None, (
                    f"the lowest step {knee.label(step.load)} already misses "
                    f"{objectives}: {'; '.join(step.slo_misses)}"
                )
            return passed.load, (
                f"{_figures(knee, passed)} meets {objectives}; next step "
                f"{knee.label(step.load)}: {'; '.join(step.slo_misses)}"
            )
        passed = step
    assert passed is not None
    return passed.load, f"every step meets {objectives}; highest: {_figures(knee, passed)}"


def _saturation(knee: Knee) -> tuple[float | None, str]:
    steps = knee.steps
    for before, step in zip(steps, steps[1:]):
        if step.gain_pct is not None and step.gain_pct < knee.gain_threshold_pct:
            return before.load, (
                f"{knee.label(before.load)} -> {knee.label(step.load)}: output "
                f"{before.output_tokens_per_s:,.1f} -> {step.output_tokens_per_s:,.1f} tok/s "
                f"({step.gain_pct:+.1f} % < {knee.gain_threshold_pct:g} % per step)"
            )
    last = steps[-1]
    gain = "" if last.gain_pct is None else f" (last step {last.gain_pct:+.1f} %)"
    return None, (
        f"throughput still grows by >= {knee.gain_threshold_pct:g} % per step up to "
        f"{knee.label(last.load)}: {last.output_tokens_per_s:,.1f} tok/s{gain}"
    )


def _figures(knee: Knee, step: LoadStep) -> str:
    return (
        f"{knee.label(step.load)} (TTFT p99 {_ms(step.ttft_p99_s)}, TPOT p99 "
        f"{_ms(step.tpot_p99_s)}, {step.output_tokens_per_s:,.1f} tok/s)"
    )


def _ms(seconds: float | None) -> str:
    """``1,234 ms``: whole milliseconds for the knee's sentences (``-`` when missing).

    Engine text, so not ``tui.format.fmt_ms`` (the engine never imports the UI); whole ms
    where the UI's ``fmt_ms`` prints tenths, as the knee's sentences always have.
    """
    return "-" if seconds is None else f"{seconds * 1000:,.0f} ms"
