"""Numbers and durations as llmtop prints them: one set of formatters for every surface.

Plain functions returning ``str``, no Textual and no Rich, so the live screen, the console,
``llmtop runs`` and the HTML report share them. Durations come in seconds (``None`` prints
``-``). The variants differ on purpose, by where the text goes: ``fmt_s`` picks its unit for
the live screen, ``fmt_ms`` carries its unit for prose and console lines, ``fmt_ms_cell`` is a
bare number under a column header that names the unit, ``fmt_ms_limit`` shows an SLO limit as
it was given. The knee's sentences are engine text and keep their own whole-millisecond
``_ms`` (``engine.metrics.knee``): the engine never imports ``tui``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from engine.metrics.summary import Distribution

NONE = "-"
"""What every formatter prints for a figure that does not exist."""


def fmt_s(seconds: float | None) -> str:
    """A duration as people read it: ``850 us``, ``42.1 ms``, ``1.24 s``.

    The live screen's panes and request list, where the unit must fit the figure.
    """
    if seconds is None:
        return NONE
    if seconds < 1e-3:
        return f"{seconds * 1e6:.0f} us"
    if seconds < 1:
        return f"{seconds * 1e3:.3g} ms" if seconds < 0.1 else f"{seconds * 1e3:.0f} ms"
    return f"{seconds:.3g} s"


def fmt_num(value: float | None, unit: str = "") -> str:
    """``12.3k tok/s``-style figures with three significant digits (the live screen)."""
    if value is None:
        return NONE
    for limit, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(value) >= limit:
            return f"{value / limit:.3g}{suffix}{unit}"
    return f"{value:.3g}{unit}" if value % 1 else f"{value:.0f}{unit}"


def fmt_elapsed(seconds: float) -> str:
    """``01:02:03``: the live screen's run clock."""
    s = int(seconds)
    return f"{s // 3600:02d}:{s % 3600 // 60:02d}:{s % 60:02d}"


def fmt_ms(seconds: float | None) -> str:
    """``1,234.5 ms``: a duration with its unit, in a sentence or a console table cell.

    The headless progress line, the console's summary tables, the telemetry lines.
    """
    return NONE if seconds is None else f"{seconds * 1000:,.1f} ms"


def fmt_ms_cell(seconds: float | None) -> str:
    """``1,234.5``: a duration in a table whose column header says ``ms``.

    ``llmtop runs``, the HTML report's tables and the console's per-profile latency table.
    """
    return NONE if seconds is None else f"{seconds * 1000:,.1f}"


def fmt_ms_limit(seconds: float) -> str:
    """``250 ms``, ``0.5 ms``: an SLO limit as the user gave it, with no rounding.

    The console's goodput line and ``llmtop runs --show-parameters``.
    """
    return f"{seconds * 1000:g} ms"


def stat_s(dist: Distribution | None, stat: str) -> float | None:
    """One statistic (``"p50"``, ``"mean"``...) of a latency distribution, for a formatter."""
    return None if dist is None else float(getattr(dist, stat))
