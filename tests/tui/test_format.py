"""The shared formatters: each surface's variant, and ``-`` for a figure that is missing."""

from __future__ import annotations

import subprocess
import sys

from engine.metrics.summary import Distribution
from tests.support.paths import ROOT
from tui.format import fmt_elapsed, fmt_ms, fmt_ms_cell, fmt_ms_limit, fmt_num, stat_s


def test_ms_in_prose_carries_its_unit_and_in_a_cell_does_not():
    assert [fmt_ms(v) for v in (None, 0.0123, 1.23456)] == ["-", "12.3 ms", "1,234.6 ms"]
    assert [fmt_ms_cell(v) for v in (None, 0.0123, 1.23456)] == ["-", "12.3", "1,234.6"]


def test_an_slo_limit_reads_as_it_was_given():
    assert [fmt_ms_limit(v) for v in (0.25, 0.0005, 2.0)] == ["250 ms", "0.5 ms", "2000 ms"]


def test_live_figures_and_clock():
    assert [fmt_num(v, " tok/s") for v in (None, 12, 12.34, 12345)] == [
        "-",
        "12 tok/s",
        "12.3 tok/s",
        "12.3k tok/s",
    ]
    assert fmt_elapsed(3723.9) == "01:02:03"


def test_a_statistic_of_a_missing_distribution_is_missing():
    dist = Distribution.of([0.1, 0.2, 0.3])
    assert stat_s(dist, "p50") == 0.2 and stat_s(None, "p50") is None


def test_the_formatters_load_neither_textual_nor_rich():
    code = "import sys, tui.format; assert not {'textual', 'rich'} & set(sys.modules)"
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT, timeout=60)
