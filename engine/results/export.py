"""CSV export of runs: every request record, and every profile summary, one row each.

For spreadsheets and pandas: nested values are flattened (``itl`` -> ``itl_p50_s``, latency
distributions -> ``ttft_s_p99``); dictionaries and lists are written as JSON in one cell.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from engine.metrics.summary import Distribution, ProfileSummary
from engine.records import RequestRecord
from engine.results.folder import iter_records
from engine.results.runs import RunInfo

REQUESTS_CSV = "requests.csv"
SUMMARY_CSV = "summary.csv"
RUN_COLUMNS = ("run_id", "run_status", "model", "server_kind", "started_unix_s")


def export_csv(runs: Sequence[RunInfo], folder: Path) -> tuple[Path, Path, list[str]]:
    """Write ``requests.csv`` and ``summary.csv`` of ``runs`` into ``folder``.

    Returns:
        The two paths, and notes about damaged lines skipped while reading records.

    """
    folder.mkdir(parents=True, exist_ok=True)
    notes: list[str] = []
    requests_path = folder / REQUESTS_CSV
    with requests_path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=_record_columns(), extrasaction="ignore")
        writer.writeheader()
        for run in runs:
            run_notes: list[str] = []
            for record in iter_records(Path(run.path), run_notes):
                writer.writerow(_record_row(record))
            notes += [f"{run.run_id}: {n}" for n in run_notes]
    summary_path = folder / SUMMARY_CSV
    rows = [_summary_row(run, p) for run in runs for p in run.profiles]
    columns = list(dict.fromkeys(c for row in rows for c in row)) or list(RUN_COLUMNS)
    with summary_path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=columns)
        writer.writeheader()
        writer.writerows(rows)
    return requests_path, summary_path, notes


def _record_columns() -> list[str]:
    columns = []
    for name in RequestRecord.model_fields:
        if name == "itl":
            columns += [
                "itl_count",
                "itl_mean_s",
                "itl_p50_s",
                "itl_p90_s",
                "itl_p99_s",
                "itl_max_s",
            ]
        else:
            columns.append(name)
    return columns


def _record_row(record: RequestRecord) -> dict[str, Any]:
    row = {k: _cell(v) for k, v in record.model_dump(mode="json").items() if k != "itl"}
    if record.itl is not None:
        row.update({f"itl_{k}": v for k, v in record.itl.model_dump().items()})
    return row


def _summary_row(run: RunInfo, p: ProfileSummary) -> dict[str, Any]:
    row: dict[str, Any] = {
        "run_id": run.run_id,
        "run_status": run.status,
        "model": run.model,
        "server_kind": run.server_kind,
        "started_unix_s": run.started_unix_s,
    }
    for name in ProfileSummary.model_fields:
        value = getattr(p, name)
        if name in ("slo", "prompt_calibration", "telemetry"):
            continue
        if isinstance(value, Distribution) or name in _DISTRIBUTIONS:
            for stat in Distribution.model_fields:
                row[f"{name}_{stat}"] = getattr(value, stat) if value is not None else None
        else:
            row[name] = _cell(value)
    row["slo_ttft_s"], row["slo_tpot_s"] = p.slo.ttft_s, p.slo.tpot_s
    return row


_DISTRIBUTIONS = {
    name for name, f in ProfileSummary.model_fields.items() if "Distribution" in str(f.annotation)
}


def _cell(value: object) -> object:
    return json.dumps(value) if isinstance(value, dict | list) else value
