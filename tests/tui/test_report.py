"""`llmtop report` and `llmtop export` on recorded runs, complete and killed."""

from __future__ import annotations

import csv
import re

import pytest

from tests.support.paths import ROOT
from tests.support.run_fixtures import BASE, KILLED, LADDER, RUNS, SLOW, copy_run
from tui.cli import main

EXTERNAL = re.compile(r"""(src|href)\s*=\s*["']?\s*(https?:)?//""", re.IGNORECASE)


def test_report_of_several_runs_is_one_offline_file(tmp_path, capsys):
    out = tmp_path / "r.html"
    assert main(["report", BASE, SLOW, LADDER, KILLED, "--root", str(RUNS), "-o", str(out)]) == 0
    printed = capsys.readouterr().out
    assert f"report: {out}" in printed and "opens offline" in printed
    assert f"note: {KILLED}: requests.jsonl: truncated last line 5 skipped" in printed
    text = out.read_text()
    assert not EXTERNAL.search(text) and "<script" not in text and "<link" not in text
    assert text.count("<svg") == 3  # distributions, over time, against load
    for heading in (
        "Latency distributions",
        "Over time",
        "Against load",
        "Knee",
        "Comparison with A",
    ):
        assert heading in text
    assert "SLO knee: c=4" in text and "B slower by 543.5 ms" in text
    assert f"{KILLED}: no final summary.json" in text and "incomplete" in text
    assert out.stat().st_size < 1_000_000


def test_report_default_paths(tmp_path, capsys):
    copy_run(BASE, tmp_path)
    copy_run(KILLED, tmp_path)
    assert main(["report", BASE, "--root", str(tmp_path)]) == 0
    single = tmp_path / BASE / "report.html"
    assert single.is_file() and f"report: {single}" in capsys.readouterr().out
    assert "Against load" not in single.read_text()  # no ladder, no load plot
    assert main(["report", BASE, KILLED, "--root", str(tmp_path)]) == 0
    pair = tmp_path / f"report-{BASE}-vs-{KILLED}.html"
    assert pair.is_file() and str(pair) in capsys.readouterr().out


def test_report_with_csv_and_export(tmp_path, capsys):
    assert (
        main(
            [
                "report",
                LADDER,
                KILLED,
                "--root",
                str(RUNS),
                "-o",
                str(tmp_path / "r.html"),
                "--csv",
                str(tmp_path / "csv"),
            ]
        )
        == 0
    )
    assert f"csv: {tmp_path / 'csv' / 'requests.csv'}" in capsys.readouterr().out
    with (tmp_path / "csv" / "requests.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 15 + 4  # the ladder's 15, the killed run's 4 whole lines
    assert {r["run_id"] for r in rows} == {LADDER, KILLED}
    assert rows[0]["itl_p50_s"] and rows[0]["completion_tokens_by_source"].startswith("{")
    assert main(["export", BASE, SLOW, "--root", str(RUNS), "-o", str(tmp_path / "x")]) == 0
    with (tmp_path / "x" / "summary.csv").open() as handle:
        summary = list(csv.DictReader(handle))
    assert [r["run_id"] for r in summary] == [BASE, SLOW]
    assert float(summary[1]["ttft_s_p50"]) == pytest.approx(0.8803389755)


@pytest.mark.parametrize(
    "argv, message",
    [
        (["report", "nope"], "no run 'nope' under"),
        (["report", str(RUNS)], "is not a run folder"),
        (["report", BASE, "--output", str(RUNS)], "is a folder: give a file name"),
        (
            ["report", BASE, "--csv", str(RUNS / "README.md")],
            "README.md: it is a file, not a folder",
        ),
        (
            ["export", BASE, "--output", str(RUNS / "README.md")],
            "README.md: it is a file, not a folder",
        ),
        (["report", BASE, "--definitions", "vllm,genai-perf"], "--definitions takes all or any"),
        (["report", BASE, "--in-summary"], "--in-summary needs --definitions"),
    ],
)
def test_report_bad_input(capsys, argv, message):
    assert main([*argv, "--root", str(RUNS)]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err and len(err.strip().splitlines()) == 1
    assert not (RUNS / BASE / "report.html").exists()


def test_report_with_peers_definitions_prints_them_adds_them_and_records_them(tmp_path, capsys):
    import json

    from engine.results.runs import load_run

    run = copy_run(BASE, tmp_path)
    copy_run(KILLED, tmp_path)
    argv = ["report", BASE, KILLED, "--root", str(tmp_path), "--definitions", "all"]
    assert main([*argv, "--in-summary", "-o", str(tmp_path / "r.html")]) == 0
    printed = capsys.readouterr().out
    header = "metric  stat  llmtop  vllm  sglang  aiperf  guidellm  llama-benchy"
    assert " ".join(header.split()) in " ".join(printed.split())
    assert "vllm 0.32.0 ttft (ttft_ms) = first_choice_ns - sent_ns" in printed
    assert f"recorded under peer_definitions in {run / 'summary.json'}" in printed
    assert f"note: {KILLED}: no readable summary.json to record the definitions in" in printed
    section = json.loads((run / "summary.json").read_text())["peer_definitions"]
    assert list(section["quick"]) == ["vllm", "sglang", "aiperf", "guidellm", "llama-benchy"]
    assert section["quick"]["sglang"]["values"][0]["mean"] == pytest.approx(0.3565436187)
    assert load_run(run).complete  # the summary still loads as it did
    text = (tmp_path / "r.html").read_text()
    assert "Peers' definitions: A (" in text and "<h3>Formulas</h3>" in text


def test_export_trace_into_the_run_folder_or_a_given_one(tmp_path, capsys):
    import json

    run = copy_run(BASE, tmp_path)
    assert main(["export", BASE, "--root", str(tmp_path), "--trace"]) == 0
    printed = capsys.readouterr().out
    assert f"trace: {run / 'trace.json'} (11 requests, 22 token instants" in printed
    assert "ui.perfetto.dev" in printed
    assert json.loads((run / "trace.json").read_text())["traceEvents"]
    out = tmp_path / "traces"
    assert main(["export", BASE, LADDER, "--root", str(RUNS), "--trace", "-o", str(out)]) == 0
    assert sorted(p.name for p in out.iterdir()) == sorted(
        [f"{BASE}.trace.json", f"{LADDER}.trace.json"]
    )


def test_export_needs_an_output_folder(capsys):
    assert main(["export", BASE, "--root", str(RUNS)]) == 2
    assert "export needs --output DIR (or --trace)" in capsys.readouterr().err


def test_timeline_conserves_tokens_and_counts_in_flight():
    from engine.analysis.timeline import run_timeline

    notes: list[str] = []
    timeline = run_timeline(RUNS / LADDER, notes)
    # 15 requests of exactly 16 tokens; spreading them over time must not lose any.
    assert timeline.output_tokens_per_s.sum() * timeline.bin_s == pytest.approx(240)
    assert timeline.in_flight.max() == 4 and timeline.in_flight[-1] == 0
    assert [name for name, _ in timeline.profile_starts_s] == ["step-c1", "step-c2", "step-c4"]
    assert timeline.gpus == [] and notes == []


def test_timeline_reads_gpu_samples_of_an_archived_run():

    from engine.analysis.timeline import run_timeline

    bench = ROOT / "bench" / "gpu" / "h200-telemetry-20261121"
    [gpu] = run_timeline(bench, []).gpus
    assert gpu.name == "GPU 0 NVIDIA H200" and len(gpu.t_s) == len(gpu.power_w) > 100


def test_plot_lines_are_bounded():
    import numpy as np

    from tui.report.plots import MAX_POINTS, _cdf, _thin

    values, fractions = _cdf(list(np.linspace(0.001, 1.0, 50_000)))
    assert len(values) == len(fractions) == MAX_POINTS
    assert values[0] == pytest.approx(1.0) and values[-1] == pytest.approx(1000.0)
    assert fractions[-1] == 1.0
    t = np.arange(100_000, dtype=float)
    grid, steps = _thin(t, (t % 7).astype(int))
    assert len(grid) == MAX_POINTS and steps[-1] == 99_999 % 7
