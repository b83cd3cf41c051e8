"""The report's plots, drawn with matplotlib and returned as inline SVG text.

matplotlib's object API (``Figure``, no pyplot): no global state, no display needed. SVG keeps
text as text (``svg.fonttype = none``) and needs no script, so the HTML opens offline and
stays small. Several runs are overlaid: one colour per run, one line style per profile.
"""

from __future__ import annotations

import io
import re
from collections.abc import Sequence
from dataclasses import dataclass

import matplotlib
import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from engine.analysis.timeline import Timeline
from engine.metrics.knee import Knee
from engine.metrics.summary import Distribution
from engine.results.runs import RunInfo

matplotlib.rcParams.update(
    {
        "svg.fonttype": "none",
        "svg.hashsalt": "llmtop",
        "font.size": 9,
        "axes.grid": True,
        "grid.alpha": 0.3,
    }
)
LINE_STYLES = ("-", "--", ":", "-.")
MAX_POINTS = 2000
"""Points per line at most: a CDF of 100k requests drawn point by point would make the file
megabytes for no visible difference."""
MAX_LEGEND_ENTRIES = 16
"""Beyond this many lines a legend hides the plot; it is left out."""


@dataclass
class RunPlotData:
    """One run as the plots need it."""

    label: str
    """``A``, ``B``...: the run's short name in legends."""
    run: RunInfo
    """The run."""
    latencies: dict[str, dict[str, list[float]]]
    """Per profile, per latency field, successful requests' values."""
    timeline: Timeline
    """Throughput, in-flight and GPU series."""


def to_svg(fig: Figure) -> str:
    """The figure as an ``<svg>`` element (no XML prolog, ready to inline in HTML)."""
    buffer = io.StringIO()
    fig.savefig(buffer, format="svg", bbox_inches="tight", metadata={"Date": None})
    text = buffer.getvalue()
    # The RDF metadata block only names matplotlib; it is dropped to keep the file lean.
    return re.sub(r"<metadata>.*?</metadata>", "", text[text.index("<svg") :], flags=re.S)


def _color(index: int) -> str:
    return f"C{index % 10}"


def latency_distributions(data: Sequence[RunPlotData]) -> str:
    """Empirical CDFs of TTFT, TPOT and E2E, one line per run and profile."""
    fig = Figure(figsize=(12, 3.6))
    axes = fig.subplots(1, 3)
    for ax, (title, field) in zip(axes, (("TTFT", "ttft_s"), ("TPOT", "tpot_s"), ("E2E", "e2e_s"))):
        lines = 0
        for i, d in enumerate(data):
            for j, (profile, columns) in enumerate(d.latencies.items()):
                values, fractions = _cdf(columns.get(field, []))
                if len(values):
                    lines += 1
                    ax.step(
                        values,
                        fractions,
                        where="post",
                        color=_color(i),
                        linestyle=LINE_STYLES[j % len(LINE_STYLES)],
                        label=f"{d.label} {profile}",
                    )
        ax.set(title=f"{title} distribution", xlabel=f"{title} (ms)", ylabel="fraction <= x")
        if 0 < lines <= MAX_LEGEND_ENTRIES:
            ax.legend(fontsize=7)
    return to_svg(fig)


def over_time(data: Sequence[RunPlotData]) -> str:
    """Output tok/s, requests in flight, GPU utilization and power on one time axis."""
    has_gpu = any(d.timeline.gpus for d in data)
    fig = Figure(figsize=(12, 7.5 if has_gpu else 5))
    axes = fig.subplots(3 if has_gpu else 2, 1, sharex=True)
    for i, d in enumerate(data):
        t = d.timeline
        axes[0].plot(
            t.bin_start_s + t.bin_s / 2, t.output_tokens_per_s, color=_color(i), label=d.label
        )
        axes[1].step(
            *_thin(t.in_flight_t_s, t.in_flight), where="post", color=_color(i), label=d.label
        )
        for j, gpu in enumerate(t.gpus if has_gpu else []):
            style = LINE_STYLES[j % len(LINE_STYLES)]
            axes[2].plot(
                gpu.t_s,
                _nan(gpu.utilization_pct),
                color=_color(i),
                linestyle=style,
                label=f"{d.label} {gpu.name} util",
            )
    if len(data) == 1:
        _profile_marks(axes, data[0].timeline)
    axes[0].set(title=f"output tokens/s (bins of {data[0].timeline.bin_s:g} s)", ylabel="tok/s")
    axes[1].set(title="requests in flight", ylabel="requests")
    if has_gpu:
        _gpu_power(axes[2], data)
    axes[-1].set_xlabel("seconds since the run started")
    for ax in axes:
        handles = ax.get_legend_handles_labels()[0]
        if 1 < len(handles) <= MAX_LEGEND_ENTRIES:
            ax.legend(fontsize=7, loc="upper right")
    return to_svg(fig)


def _cdf(values: Sequence[float]) -> tuple[np.ndarray, np.ndarray]:
    """Empirical CDF in ms, at most ``MAX_POINTS`` points (evenly spaced in rank)."""
    ordered = np.sort(np.asarray(values, dtype=float)) * 1000
    fractions = np.arange(1, len(ordered) + 1) / max(len(ordered), 1)
    if len(ordered) > MAX_POINTS:
        keep = np.linspace(0, len(ordered) - 1, MAX_POINTS).astype(int)
        return ordered[keep], fractions[keep]
    return ordered, fractions


def _thin(t_s: np.ndarray, values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """A step function read at ``MAX_POINTS`` evenly spaced times when it has more points."""
    if len(t_s) <= MAX_POINTS:
        return t_s, values
    grid = np.linspace(t_s[0], t_s[-1], MAX_POINTS)
    return grid, values[np.searchsorted(t_s, grid, side="right") - 1]


def _profile_marks(axes: Sequence[Axes], timeline: Timeline) -> None:
    """A faint line where each profile starts, named on the top panel (one run only)."""
    for name, start_s in timeline.profile_starts_s:
        for ax in axes:
            ax.axvline(start_s, color="grey", linewidth=0.6, alpha=0.6)
        axes[0].annotate(
            name,
            (start_s, 1.0),
            xycoords=("data", "axes fraction"),
            fontsize=7,
            color="grey",
            va="top",
            ha="left",
            rotation=90,
        )


def _gpu_power(ax: Axes, data: Sequence[RunPlotData]) -> None:
    ax.set(
        title="GPU utilization (solid, left) and power (faint, right)",
        ylabel="utilization %",
        ylim=(0, 105),
    )
    power = ax.twinx()
    power.set_ylabel("power W")
    power.grid(False)
    for i, d in enumerate(data):
        for gpu in d.timeline.gpus:
            power.plot(gpu.t_s, _nan(gpu.power_w), color=_color(i), alpha=0.4, linewidth=0.8)


def _nan(values: Sequence[float | None]) -> np.ndarray:
    return np.array([np.nan if v is None else v for v in values], dtype=float)


def against_load(knees: Sequence[tuple[str, RunInfo, Knee]]) -> str:
    """Throughput and p50/p99 TTFT and TPOT against load, knees marked; runs overlaid."""
    fig = Figure(figsize=(12, 3.8))
    axes = fig.subplots(1, 3)
    for i, (label, run, knee) in enumerate(knees):
        loads = [s.load for s in knee.steps]
        profiles = [run.profile(s.profile) for s in knee.steps]
        axes[0].plot(
            loads,
            [s.output_tokens_per_s for s in knee.steps],
            "o-",
            color=_color(i),
            label=f"{label} {knee.group}",
        )
        for ax, field in ((axes[1], "ttft_s"), (axes[2], "tpot_s")):
            for stat, style in (("p50", "o-"), ("p99", "s--")):
                ax.plot(
                    loads,
                    [_ms_or_nan(getattr(p, field), stat) for p in profiles],
                    style,
                    color=_color(i),
                    label=f"{label} {stat}",
                )
        _mark(axes, knee, _color(i))
    unit = "concurrency" if knees[0][2].load_kind == "concurrency" else "arrival rate (req/s)"
    axes[0].set(title="output tokens/s against load", ylabel="tok/s", xlabel=unit)
    axes[1].set(title="TTFT against load", ylabel="ms", xlabel=unit)
    axes[2].set(title="TPOT against load", ylabel="ms", xlabel=unit)
    for ax, limit in ((axes[1], knees[0][2].slo_ttft_s), (axes[2], knees[0][2].slo_tpot_s)):
        if limit:
            ax.axhline(limit * 1000, color="red", linewidth=0.8, label="SLO")
    for ax in axes:
        if _doubling(knees):
            ax.set_xscale("log", base=2)
        loads = sorted({s.load for _, _, k in knees for s in k.steps})
        ax.set_xticks(loads, [f"{load:g}" for load in loads])
        ax.minorticks_off()
        if len(ax.get_legend_handles_labels()[0]) <= MAX_LEGEND_ENTRIES:
            ax.legend(fontsize=7)
    return to_svg(fig)


def _mark(axes: Sequence[Axes], knee: Knee, color: str) -> None:
    for load, name, style in (
        (knee.slo_knee_load, "SLO knee", "--"),
        (knee.saturation_load, "saturation", ":"),
        (knee.stopped_load, "over-saturated", "-."),
    ):
        if load is not None:
            for ax in axes:
                ax.axvline(load, color=color, linestyle=style, linewidth=1.2)
            axes[0].annotate(
                f"{name} {knee.label(load)}",
                (load, axes[0].get_ylim()[1]),
                rotation=90,
                va="top",
                ha="right",
                fontsize=7,
                color=color,
            )


def _doubling(knees: Sequence[tuple[str, RunInfo, Knee]]) -> bool:
    loads = sorted({s.load for _, _, k in knees for s in k.steps})
    return len(loads) >= 3 and loads[0] > 0 and loads[-1] / loads[0] >= 8


def _ms_or_nan(dist: Distribution | None, stat: str) -> float:
    """A statistic in ms for a plot's y values: a missing one is a gap (NaN), not a string."""
    return np.nan if dist is None else getattr(dist, stat) * 1000
