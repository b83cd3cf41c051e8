"""llmtop's per-GPU telemetry next to ``nvidia-smi`` sampling the same GPUs at the same time.

``python -m bench.gpu_vs_smi --url URL --out DIR --profile bench/gpu/c8.toml ...`` starts
``nvidia-smi --query-gpu=... -lms 500`` (its own 500 ms samples, written to ``DIR/smi.csv``),
runs ``llmtop run --no-ui`` against ``URL`` with telemetry at ``--sample-hz``, stops
nvidia-smi, and compares over the run, GPU by GPU: mean utilization, memory, power and
temperature from each tool, and energy (llmtop: NVML's energy counter from first to last
sample; nvidia-smi: its power readings integrated over time, the trapezoid rule). Prints a
markdown table and writes ``DIR/gpu_vs_smi.json``. Without nvidia-smi or a GPU it says so.
"""

from __future__ import annotations

import argparse
import csv
import json
import shutil
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path
from statistics import fmean

SMI_FIELDS = "timestamp,index,utilization.gpu,memory.used,power.draw,temperature.gpu"
NS = 1_000_000_000


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--profile", action="append", required=True)
    parser.add_argument("--smi-ms", type=int, default=500)
    parser.add_argument("--sample-hz", type=float, default=4.0)
    parser.add_argument("--extra", nargs=argparse.REMAINDER, default=[], help="more llmtop args")
    args = parser.parse_args()
    if shutil.which("nvidia-smi") is None:
        print("no nvidia-smi here: nothing to compare against")
        return 1
    args.out.mkdir(parents=True, exist_ok=True)
    smi_path = args.out / "smi.csv"
    smi = subprocess.Popen(
        [
            "nvidia-smi",
            f"--query-gpu={SMI_FIELDS}",
            "--format=csv,noheader,nounits",
            f"-lms={args.smi_ms}",
            f"--filename={smi_path}",
        ]
    )
    time.sleep(1.0)
    runs = args.out / "runs"
    profiles = [arg for p in args.profile for arg in ("--profile", p)]
    command = [
        sys.executable,
        "-m",
        "tui",
        "run",
        "--url",
        args.url,
        "--no-ui",
        *profiles,
        "--sample-hz",
        str(args.sample_hz),
        "--output",
        str(runs),
        *args.extra,
    ]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    (args.out / "console.txt").write_text(done.stdout + done.stderr)
    time.sleep(1.0)
    smi.terminate()
    smi.wait(10)
    (run_dir,) = [p for p in runs.iterdir() if p.is_dir()]
    result = compare(run_dir, smi_path)
    result["llmtop_exit_code"] = done.returncode
    (args.out / "gpu_vs_smi.json").write_text(json.dumps(result, indent=2))
    print(table(result))
    return 0


def llmtop_samples(run_dir: Path) -> dict[int, list[dict]]:
    """GPU samples by index, each with ``unix_s`` from the run's recorded clock."""
    origin = json.loads((run_dir / "run.json").read_text())["clock"]["origin_unix_ns"]
    by_gpu: dict[int, list[dict]] = {}
    for line in (run_dir / "samples.jsonl").read_text().splitlines():
        row = json.loads(line)
        if row.get("kind") == "gpu":
            row["unix_s"] = (origin + row["t_ns"]) / NS
            by_gpu.setdefault(row["index"], []).append(row)
    return by_gpu


def smi_samples(path: Path) -> dict[int, list[dict]]:
    by_gpu: dict[int, list[dict]] = {}
    with path.open() as handle:
        for fields in csv.reader(handle):
            if len(fields) < 6:
                continue
            stamp, index, util, mem, power, temp = (f.strip() for f in fields[:6])
            try:
                when = datetime.strptime(stamp, "%Y/%m/%d %H:%M:%S.%f").timestamp()
                row = {
                    "unix_s": when,
                    "util": float(util),
                    "mem": float(mem),
                    "power": float(power),
                    "temp": float(temp),
                }
            except ValueError:
                continue  # a header, or [N/A]
            by_gpu.setdefault(int(index), []).append(row)
    return by_gpu


def compare(run_dir: Path, smi_path: Path) -> dict:
    ours, theirs = llmtop_samples(run_dir), smi_samples(smi_path)
    gpus = []
    for index, samples in sorted(ours.items()):
        start, end = samples[0]["unix_s"], samples[-1]["unix_s"]
        smi = [r for r in theirs.get(index, []) if start <= r["unix_s"] <= end]
        if len(smi) < 2:
            gpus.append({"index": index, "note": "no nvidia-smi samples in the run's span"})
            continue
        energy_ours = (samples[-1]["energy_mj"] - samples[0]["energy_mj"]) / 1000
        energy_smi = (
            sum(
                (b["unix_s"] - a["unix_s"]) * (a["power"] + b["power"]) / 2
                for a, b in zip(smi, smi[1:], strict=False)
            )
            * (end - start)
            / (smi[-1]["unix_s"] - smi[0]["unix_s"])
        )
        gpus.append(
            {
                "index": index,
                "span_s": round(end - start, 1),
                "samples": {"llmtop": len(samples), "nvidia-smi": len(smi)},
                "util_pct": _pair(samples, "utilization_pct", smi, "util"),
                "memory_mib": _pair(samples, "memory_used_mib", smi, "mem"),
                "power_w": _pair(samples, "power_w", smi, "power"),
                "temperature_c": _pair(samples, "temperature_c", smi, "temp"),
                "energy_j": {
                    "llmtop": round(energy_ours, 1),
                    "nvidia-smi": round(energy_smi, 1),
                    "diff_pct": round(100 * (energy_ours - energy_smi) / energy_smi, 2),
                },
            }
        )
    return {"run_dir": str(run_dir), "gpus": gpus}


def _pair(ours: list[dict], key: str, smi: list[dict], smi_key: str) -> dict:
    values = [s[key] for s in ours if s.get(key) is not None]
    a, b = fmean(values), fmean(r[smi_key] for r in smi)
    return {"llmtop": round(a, 1), "nvidia-smi": round(b, 1), "diff": round(a - b, 2)}


def table(result: dict) -> str:
    lines = [
        "| GPU | span s | util % | memory MiB | power W | temp C | energy J (diff) |",
        "|---|---|---|---|---|---|---|",
    ]
    for g in result["gpus"]:
        if "note" in g:
            lines.append(f"| {g['index']} | {g['note']} |||||")
            continue
        cells = [
            f"{g[k]['llmtop']} / {g[k]['nvidia-smi']}"
            for k in ("util_pct", "memory_mib", "power_w", "temperature_c")
        ]
        e = g["energy_j"]
        lines.append(
            f"| {g['index']} | {g['span_s']} | "
            + " | ".join(cells)
            + f" | {e['llmtop']} / {e['nvidia-smi']} ({e['diff_pct']:+.2f} %) |"
        )
    return "\n".join(lines) + "\n(each cell: llmtop / nvidia-smi, means over the run)"


if __name__ == "__main__":
    sys.exit(main())
