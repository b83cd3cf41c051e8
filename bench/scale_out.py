"""How the load scales with worker processes (``--workers``) and with Ray actors (``--ray``).

Runs the real ``Engine`` (closed loop, as ``llmtop run`` builds it, results written to a
temporary folder) against ``bench.fast_server``, once per worker count, each measurement in
a fresh client process. ``--servers N`` starts N server processes sharing one port
(SO_REUSEPORT, the kernel spreads the connections), so that on a many-core box the server is
not what limits the client. ``--ray local`` adds the same runs with the workers as Ray
actors on a local Ray instance, for the Ray-against-processes comparison.

    python -m bench.scale_out --workers 1,2 --servers 1              # 2 shared cores
    python -m bench.scale_out --workers 1,2,4,8 --servers 6 --per-worker 64   # 16 cores
    python -m bench.scale_out --workers 2 --ray local --mode tick --itl-ms 20 \\
        --concurrency 16 --requests 800                              # Ray against processes

Per run: output tokens/s and requests/s of the measured window, TTFT p50/p99, the client
health (per worker CPU % of a core and loop-lag p99; the parent's lag) and the servers' CPU
(sum over their processes, in cores: when it nears their count, the servers are the limit, not
the client). ``--per-worker N`` gives every worker count the same load per worker (N streams
each) and ends with the two scaling verdicts of issue 15: tokens/s against linear (target
>= 80 % up to 8 workers) and the merged TTFT p50 against one worker's (target within 2 %).
``--json FILE`` keeps every result with the machine's description.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.engine_ceiling import ROOT, machine_info


class Servers:
    """``count`` ``bench.fast_server`` processes on one port."""

    def __init__(self, count: int, mode: str, itl_ms: float) -> None:
        self._procs: list[subprocess.Popen[str]] = []
        port = 0
        for _ in range(count):
            argv = [sys.executable, "-m", "bench.fast_server", "--port", str(port)]
            argv += ["--mode", mode, "--reuse-port"]
            if itl_ms:
                argv += ["--itl-ms", str(itl_ms)]
            proc = subprocess.Popen(argv, cwd=ROOT, stdout=subprocess.PIPE, text=True)
            self._procs.append(proc)
            assert proc.stdout is not None
            line = proc.stdout.readline().split()
            if not line or line[0] != "READY":
                self.stop()
                raise RuntimeError("bench.fast_server did not start")
            port = int(line[1])
        self.url = f"http://127.0.0.1:{port}"

    def cpu_s(self) -> float:
        """CPU seconds the server processes have used so far."""
        import psutil

        total = 0.0
        for proc in self._procs:
            times = psutil.Process(proc.pid).cpu_times()
            total += times.user + times.system
        return total

    def stop(self) -> None:
        for proc in self._procs:
            proc.terminate()
        for proc in self._procs:
            try:
                proc.wait(5)
            except subprocess.TimeoutExpired:
                proc.kill()


def child(spec: dict[str, Any]) -> dict[str, Any]:
    """One measurement in this (fresh) process: the engine's summary, reduced."""
    from engine.run.config import RunConfig
    from engine.run.engine import Engine
    from engine.workload.profile import Profile

    profile = Profile(
        name=f"c{spec['concurrency']}",
        concurrency=spec["concurrency"],
        requests=spec["requests"],
        duration_s=spec["seconds"] if spec["requests"] is None else None,
        warmup_requests=spec["concurrency"],
        input_tokens=64,
        max_tokens=spec.get("max_tokens", 64),
    )
    with tempfile.TemporaryDirectory() as folder:
        config = RunConfig(
            url=spec["url"],
            model="bench",
            profiles=[profile],
            results_root=Path(folder),
            workers=spec["workers"],
            ray_address=spec["ray"],
        )
        started, cpu0 = time.perf_counter(), time.process_time()
        summary = _run_loop(Engine(config).run())
        wall, cpu = time.perf_counter() - started, time.process_time() - cpu0
    p = summary.profiles[0]
    return {
        **spec,
        "status": str(summary.status),
        "wall_s": wall,
        "requests_done": p.requests,
        "failures": p.failures,
        "tok_s": p.output_tokens_per_s,
        "req_s": p.requests_per_s,
        "ttft_p50_ms": p.ttft_s.p50 * 1e3 if p.ttft_s else None,
        "ttft_p99_ms": p.ttft_s.p99 * 1e3 if p.ttft_s else None,
        "parent_lag_p99_ms": summary.client.loop_lag_p99_ms,
        "parent_cpu_pct": 100 * cpu / wall,
        "workers_health": [w.model_dump() for w in summary.client.workers],
    }


def _run_loop(main: Any) -> Any:
    """Run on uvloop where it is installed, as ``llmtop run`` does."""
    try:
        import uvloop
    except ImportError:
        return asyncio.run(main)
    return uvloop.run(main)


def measure(spec: dict[str, Any], servers: Servers) -> dict[str, Any]:
    """``child(spec)`` in a fresh process, with the servers' CPU over its whole run."""
    cpu0, t0 = servers.cpu_s(), time.perf_counter()
    out = subprocess.run(
        [sys.executable, "-m", "bench.scale_out", "--child", json.dumps(spec)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=900,
    )
    lines = [x for x in out.stdout.splitlines() if x.startswith("{")]
    if out.returncode != 0 or not lines:
        raise RuntimeError(f"measurement failed: {out.stderr[-2000:]}")
    result: dict[str, Any] = json.loads(lines[-1])
    result["server_cores"] = (servers.cpu_s() - cpu0) / (time.perf_counter() - t0)
    return result


def row(r: dict[str, Any]) -> str:
    health = r["workers_health"]
    cpu = "/".join(f"{w['cpu_pct']:.0f}" for w in health if w["cpu_pct"] is not None) or "-"
    lag = "/".join(
        f"{w['loop_lag_p99_ms']:.1f}" for w in health if w["loop_lag_p99_ms"] is not None
    )
    parent = r["parent_lag_p99_ms"]
    return (
        f"| {'ray' if r['ray'] else 'processes'} | {r['workers']} | {r['concurrency']} | "
        f"{r['requests_done']} | {r['tok_s']:,.0f} | {r['req_s']:,.1f} | "
        f"{r['ttft_p50_ms']:.2f} | {r['ttft_p99_ms']:.2f} | {cpu} | {lag or '-'} | "
        f"{parent:.1f} | {r.get('parent_cpu_pct', 0):.0f} | {r.get('server_cores', 0):.1f} | "
        f"{r['failures']} |"
    )


HEADER = (
    "| workers as | workers | streams | requests | out tok/s | req/s | TTFT p50 ms | "
    "TTFT p99 ms | worker CPU % | worker lag p99 ms | parent lag p99 ms | parent CPU % | "
    "server cores | failures |\n"
    "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"
)
TARGET_OF_LINEAR = 0.80
TARGET_TTFT_CHANGE = 0.02


def verdicts(results: list[dict[str, Any]]) -> list[str]:
    """Scaling against one worker: tokens/s against linear, TTFT p50 against one worker's
    (medians over the repeats; equal load per worker assumed, i.e. ``--per-worker``)."""
    import statistics

    by_workers: dict[int, list[dict[str, Any]]] = {}
    for r in results:
        if not r["ray"]:
            by_workers.setdefault(r["workers"], []).append(r)
    if 1 not in by_workers:
        return ["no one-worker run to compare with"]
    one_tok = statistics.median(r["tok_s"] for r in by_workers[1])
    one_ttft = statistics.median(r["ttft_p50_ms"] for r in by_workers[1])
    lines = []
    for workers, rs in sorted(by_workers.items()):
        tok = statistics.median(r["tok_s"] for r in rs)
        ttft = statistics.median(r["ttft_p50_ms"] for r in rs)
        of_linear = tok / (workers * one_tok)
        change = ttft / one_ttft - 1
        lines.append(
            f"{workers} worker(s): {tok:,.0f} tok/s = {of_linear:.0%} of linear "
            f"({'MET' if of_linear >= TARGET_OF_LINEAR else 'NOT MET'}); TTFT p50 "
            f"{ttft:.2f} ms, {change:+.1%} against one worker "
            f"({'MET' if abs(change) <= TARGET_TTFT_CHANGE else 'NOT MET'})"
        )
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--workers", default="1,2", help="worker counts, comma-separated")
    parser.add_argument("--servers", type=int, default=1, help="server processes (one port)")
    parser.add_argument("--concurrency", type=int, default=64, help="closed-loop streams")
    parser.add_argument(
        "--per-worker",
        type=int,
        help="streams per worker instead of --concurrency (equal load per worker)",
    )
    parser.add_argument("--seconds", type=float, default=5.0, help="measured seconds per run")
    parser.add_argument("--requests", type=int, help="a request count instead of --seconds")
    parser.add_argument(
        "--max-tokens", type=int, default=64, help="output tokens per request (default 64)"
    )
    parser.add_argument("--repeats", type=int, default=2, help="runs per configuration")
    parser.add_argument("--mode", default="chunked", choices=("chunked", "burst", "tick"))
    parser.add_argument("--itl-ms", type=float, default=0.0, help="tick mode: ms per step")
    parser.add_argument("--ray", help="also run the workers as Ray actors (e.g. local)")
    parser.add_argument("--no-processes", action="store_true", help="only the Ray runs")
    parser.add_argument("--json", help="also write every result and the machine here")
    args = parser.parse_args(argv)
    if args.child:
        print(json.dumps(child(json.loads(args.child))))
        return 0
    counts = [int(x) for x in args.workers.split(",")]
    machine = machine_info()
    print(
        f"machine: {machine['cpu_model']}, {machine['cores_usable']} cores usable, load "
        f"{machine['loadavg']}",
        file=sys.stderr,
    )
    servers = Servers(args.servers, args.mode, args.itl_ms)
    results = []
    try:
        kinds = ([] if args.no_processes else [None]) + ([args.ray] if args.ray else [])
        for ray in kinds:
            for workers in counts:
                for _ in range(args.repeats):
                    spec = {
                        "url": servers.url,
                        "workers": workers,
                        "ray": ray,
                        "concurrency": args.concurrency,
                        "seconds": args.seconds,
                        "requests": args.requests,
                        "servers": args.servers,
                        "mode": args.mode,
                        "itl_ms": args.itl_ms,
                        "max_tokens": args.max_tokens,
                    }
                    if args.per_worker:
                        spec["concurrency"] = args.per_worker * workers
                    result = measure(spec, servers)
                    results.append(result)
                    print(row(result), file=sys.stderr)
    finally:
        servers.stop()
    print(HEADER)
    for result in results:
        print(row(result))
    if args.per_worker:
        print("\n".join(verdicts(results)))
    if args.json:
        Path(args.json).write_text(
            json.dumps({"machine": machine, "args": vars(args), "results": results}, indent=2)
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
