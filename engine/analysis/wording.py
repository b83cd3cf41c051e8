"""Plain-text wording of a comparison, shared by the console, the report and the TUI.

A verdict is worded only when its confidence interval excludes zero: "B faster by 41.2 ms
[12.0, 70.3]" gives the improvement and its interval; otherwise "no significant difference".
"""

from __future__ import annotations

from engine.analysis.compare import MetricDiff


def value_text(value: float | None, unit: str) -> str:
    """A figure in its display unit: seconds become milliseconds."""
    if value is None:
        return "-"
    if unit == "s":
        return f"{value * 1000:,.1f} ms"
    return f"{value:,.2f} {unit}" if unit != "%" else f"{value:,.1f} %"


def diff_text(m: MetricDiff) -> str:
    """``+12.3 ms (+4.5 %)``."""
    if m.diff is None:
        return "-"
    number = (
        f"{m.diff * 1000:+,.1f} ms"
        if m.unit == "s"
        else f"{m.diff:+,.1f} pp"
        if m.unit == "%"
        else f"{m.diff:+,.2f} {m.unit}"
    )
    return number + (f" ({m.diff_pct:+.1f} %)" if m.diff_pct is not None else "")


def interval_text(m: MetricDiff) -> str:
    """``[-19.0, -5.1] ms``: the interval of candidate - baseline, or why there is none."""
    if m.ci_low is None or m.ci_high is None:
        return ""
    return f"[{m.ci_low * 1000:+,.1f}, {m.ci_high * 1000:+,.1f}] ms"


def statement(m: MetricDiff, candidate: str = "B") -> str:
    """``B faster by 41.2 ms [12.0, 70.3]``, ``no significant difference`` or ``""``."""
    if m.verdict is None or m.diff is None or m.ci_low is None or m.ci_high is None:
        return ""
    if m.verdict == "no significant difference":
        return "no significant difference"
    word = "faster" if m.verdict == "better" else "slower"
    low, high = sorted((abs(m.ci_low), abs(m.ci_high)))
    return (
        f"{candidate} {word} by {abs(m.diff) * 1000:,.1f} ms [{low * 1000:,.1f}, "
        f"{high * 1000:,.1f}]"
    )
