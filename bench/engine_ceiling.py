"""The engine's own ceiling: how many streams and tokens/s llmtop can measure on this machine.

The real ``Engine`` (closed loop, results written to a temporary folder as in a real run)
drives ``bench.fast_server``, a server that streams 64 one-token chunks per response as fast
as it can, at several concurrency levels. Each measurement runs in a fresh client process so
that ``getrusage`` sees only the client and every level starts clean; the server is a separate
process too. Per run it reports:

* sustained streams: the most requests in flight in any ``SnapshotTaken`` of the measured
  phase (and the median over those snapshots);
* req/s and tok/s: successful requests and the sum of their completion tokens over the
  engine's measured duration (``ProfileSummary.duration_s``);
* event-loop lag p50/p99 over the whole run (``summary.client``, warm-up included) and p99
  over the measured phase only;
* client CPU seconds per 1000 streamed tokens (``getrusage(RUSAGE_SELF)`` over
  ``Engine.run``, warm-up tokens included in the count), client and server CPU in % of one
  core, and the CPU other processes used meanwhile (``/proc/stat``), in cores;
* failures, by kind.

For comparison, ``raw`` runs the same client stack with no engine (``httpx.AsyncClient``
over ``httpx_aiohttp.AiohttpTransport``, ``aiter_raw``, bytes counted, nothing parsed) and
``client`` (``--layers``) adds the engine's ``StreamingClient`` with SSE and JSON parsing but
no records, events or results files. ``nofile`` repeats the highest level with the soft
``RLIMIT_NOFILE`` lowered to 1024 (a common default) to check whether the engine raises it.
``engine-ui`` (``--ui``) is the engine as ``llmtop run`` drives it with its live screen: the
engine in its child process (``tui/live/engine_process.py``), the Textual app repainting
(headless) in the benchmark's process. Its ``UI cpu %`` is that process alone (the app and the
thread that reads the results files), in % of one core; ``TTFT p50`` is the engine's summary.

Run: ``.venv/bin/python -m bench.engine_ceiling [--levels 1,64,256,1024] [--seconds N]``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from time import perf_counter
from typing import Any

from bench.ceiling_client import MAX_TOKENS, Spec

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_LEVELS = (1, 64, 256, 1024)
TARGET_TOKENS_PER_S_AT_64 = 75_000
TARGET_LAG_P99_MS_AT_256 = 10.0
PACKAGES = (
    "aiohttp",
    "httpx",
    "httpx-aiohttp",
    "uvloop",
    "orjson",
    "pydantic",
    "yarl",
    "multidict",
    "propcache",
)


# --------------------------------------------------------------------------- parent side


def machine_info() -> dict[str, Any]:
    cpu = "unknown"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    versions = {}
    for name in PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return {
        "date": time.strftime("%Y-%m-%d %H:%M:%S %z"),
        "cpu_model": cpu,
        "cores_online": os.cpu_count(),
        "cores_usable": len(os.sched_getaffinity(0)),
        "python": platform.python_version(),
        "kernel": platform.release(),
        "packages": versions,
        "nofile": resource.getrlimit(resource.RLIMIT_NOFILE),
        "loadavg": os.getloadavg(),
        "ninja_running": _ninja_running(),
    }


def _ninja_running() -> bool:
    # -x: the process name, not the command line (which "--wait-ninja" itself would match).
    return subprocess.run(["pgrep", "-x", "ninja"], capture_output=True).returncode == 0


class Server:
    """``bench.fast_server`` in its own process."""

    def __init__(self, mode: str, itl_ms: float = 0.0) -> None:
        self._proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "bench.fast_server",
                "--port",
                "0",
                "--mode",
                mode,
                "--itl-ms",
                str(itl_ms),
            ],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self._proc.stdout is not None
        line = self._proc.stdout.readline().split()
        if not line or line[0] != "READY":
            self.stop()
            raise RuntimeError("bench.fast_server did not start")
        self.pid = self._proc.pid
        self.url = f"http://127.0.0.1:{line[1]}"
        self.loop_name = line[2]

    def stop(self) -> None:
        self._proc.terminate()
        try:
            self._proc.wait(5)
        except subprocess.TimeoutExpired:
            self._proc.kill()


def run_child(spec: Spec) -> dict[str, Any]:
    args = [sys.executable, "-m", "bench.ceiling_client", json.dumps(spec.__dict__)]
    try:
        done = subprocess.run(
            args, cwd=ROOT, capture_output=True, text=True, timeout=spec.seconds * 4 + 60
        )
    except subprocess.TimeoutExpired:
        return {"error": "client process timed out"}
    lines = done.stdout.strip().splitlines()
    if done.returncode != 0 or not lines:
        return {"error": f"client exited {done.returncode}: {done.stderr.strip()[-500:]}"}
    return json.loads(lines[-1])


@dataclass(frozen=True)
class Config:
    """One configuration to measure (``repeats`` times)."""

    kind: str
    loop: str
    level: int
    nofile: int | None = None
    paced: bool = False

    @property
    def label(self) -> str:
        return (
            f"{self.kind}/{self.loop}"
            + (f" NOFILE={self.nofile}" if self.nofile else "")
            + (" paced" if self.paced else "")
        )


def plan(args: argparse.Namespace) -> list[Config]:
    """Configurations in the order they run (each repeat runs them all again)."""
    levels = [int(v) for v in args.levels.split(",") if v]
    configs: list[Config] = []
    for level in levels:
        configs.append(Config("engine", "uvloop", level))
        if args.ui:
            configs.append(Config("engine-ui", "uvloop", level))
        if level == 64 and not args.ui:
            configs.append(Config("engine", "asyncio", level))
        if args.layers:
            configs += [
                Config("client", "uvloop", level),
                Config("raw-sse", "uvloop", level),
                Config("aiohttp", "uvloop", level),
            ]
        if not args.no_raw:
            configs.append(Config("raw", "uvloop", level))
    if not args.no_nofile and levels and max(levels) >= 1000:
        configs.append(Config("engine", "uvloop", max(levels), nofile=1024))
    if args.paced_itl_ms:
        for v in args.paced_levels.split(","):
            if v:
                configs.append(Config("engine", "uvloop", int(v), paced=True))
                if args.ui:
                    configs.append(Config("engine-ui", "uvloop", int(v), paced=True))
    return configs


def _fmt(value: Any, spec: str) -> str:
    return "-" if value is None else format(value, spec)


HEADER = (
    f"{'config':<26}{'level':>6}{'streams':>9}{'req/s':>8}{'tok/s':>9}{'lag p50':>8}"
    f"{'p99':>7}{'p99m':>7}{'cpu/1k':>8}{'cli%':>6}{'srv%':>6}{'other':>6}{'fail':>6}"
)


def row(label: str, level: int, r: dict[str, Any]) -> str:
    if r.get("error") and "tokens_per_s" not in r:
        return f"{label:<26}{level:>6}  ERROR {r['error']}"
    return (
        f"{label:<26}{level:>6}{r['sustained_max']:>9}{r['requests_per_s']:>8.0f}"
        f"{r['tokens_per_s']:>9.0f}{_fmt(r['lag_p50_ms'], '.2f'):>8}"
        f"{_fmt(r['lag_p99_ms'], '.1f'):>7}{_fmt(r['lag_p99_measured_ms'], '.1f'):>7}"
        f"{_fmt(r['cpu_s_per_1k_tokens'], '.4f'):>8}{r['client_cpu_pct']:>6.0f}"
        f"{r['server_cpu_pct']:>6.0f}{r['other_load_cores']:>6.2f}{r['failures']:>6}"
        + (f"  {r['failures_by_kind']}" if r["failures"] else "")
        + (f"  error: {r['error']}" if r.get("error") else "")
    )


def _span(rs: list[dict[str, Any]], key: str, fmt: str) -> str:
    """``median [min-max]`` of one figure over repeats."""
    values = [r[key] for r in rs if r.get(key) is not None]
    if not values:
        return "-"
    return (
        f"{format(statistics.median(values), fmt)} "
        f"[{format(min(values), fmt)}-{format(max(values), fmt)}]"
    )


def summarize(results: list[dict[str, Any]]) -> list[str]:
    lines = [
        "",
        "Per configuration: median of repeats [min-max]",
        f"{'config':<26}{'level':>6}{'streams':>8}  {'tok/s':<25}{'lag p99 ms':<24}"
        f"{'cpu s/1k tok':<25}{'other load, cores':<18}{'TTFT p50 ms':<24}{'UI cpu %':<18}"
        f"{'repaints/s':<10}",
    ]
    groups: dict[tuple[str, int], list[dict[str, Any]]] = {}
    for r in results:
        if "tokens_per_s" in r:
            groups.setdefault((r["label"], r["level"]), []).append(r)
    for (label, level), rs in groups.items():
        lines.append(
            f"{label:<26}{level:>6}{max(r['sustained_max'] for r in rs):>8}  "
            f"{_span(rs, 'tokens_per_s', '.0f'):<25}{_span(rs, 'lag_p99_ms', '.1f'):<24}"
            f"{_span(rs, 'cpu_s_per_1k_tokens', '.4f'):<25}"
            f"{_span(rs, 'other_load_cores', '.2f'):<18}"
            f"{_span(rs, 'ttft_p50_ms', '.2f'):<24}{_span(rs, 'ui_cpu_pct', '.1f'):<18}"
            f"{_span(rs, 'ui_repaints_per_s', '.1f'):<10}"
        )
    return lines


def verdicts(results: list[dict[str, Any]], paced_itl_ms: float) -> list[str]:
    def pick(label: str, level: int) -> list[dict[str, Any]]:
        return [
            r
            for r in results
            if r.get("label") == label and r.get("level") == level and "tokens_per_s" in r
        ]

    lines = [""]
    at64 = pick("engine/uvloop", 64)
    if at64:
        tps = [r["tokens_per_s"] for r in at64]
        ok = statistics.median(tps) >= TARGET_TOKENS_PER_S_AT_64
        lines.append(
            f"target >= {TARGET_TOKENS_PER_S_AT_64} tok/s at 64 streams: "
            f"{'MET' if ok else 'NOT MET'} (median {statistics.median(tps):.0f}, "
            f"runs {', '.join(f'{v:.0f}' for v in tps)})"
        )
    at256 = pick("engine/uvloop", 256)
    if at256:
        lags = [r["lag_p99_ms"] for r in at256]
        ok = statistics.median(lags) < TARGET_LAG_P99_MS_AT_256
        lines.append(
            f"target lag p99 < {TARGET_LAG_P99_MS_AT_256:g} ms at 256 streams "
            f"(server as fast as it can): {'MET' if ok else 'NOT MET'} (median "
            f"{statistics.median(lags):.1f} ms, runs "
            f"{', '.join(f'{v:.1f}' for v in lags)})"
        )
    paced = [r for r in results if r.get("paced") and "tokens_per_s" in r]
    for label, level in sorted({(r["label"], r["level"]) for r in paced}):
        rs = [r for r in paced if r["level"] == level and r["label"] == label]
        lines.append(
            f"{label}, paced server ({paced_itl_ms:g} ms per token) at {level} streams: lag p99 "
            f"{_span(rs, 'lag_p99_ms', '.1f')} ms, p50 {_span(rs, 'lag_p50_ms', '.2f')} ms; "
            f"measured ITL p50 {_span(rs, 'itl_p50_ms', '.1f')} ms, p99 "
            f"{_span(rs, 'itl_p99_ms', '.1f')} ms; {_span(rs, 'tokens_per_s', '.0f')} tok/s"
        )
    for r in results:
        if r.get("nofile") and "nofile_soft" in r:
            before, after = r["nofile_soft"]
            raised = "raised it" if after > before else "did NOT raise it"
            lines.append(
                f"soft RLIMIT_NOFILE {before} at {r['level']} streams: the engine "
                f"{raised} ({after}); {r['failures']} failures {r['failures_by_kind']}, "
                f"{r['sustained_max']} streams sustained"
            )
    return lines


def _wait_for_ninja(limit_s: float) -> None:
    """Other agents build C++ here; their build would take CPU from the client."""
    waited = 0.0
    while limit_s > waited and _ninja_running():
        if not waited:
            print(f"waiting up to {limit_s:g} s for a running ninja build to finish...", flush=True)
        time.sleep(5)
        waited += 5


def parent_main(args: argparse.Namespace) -> int:
    _wait_for_ninja(args.wait_ninja)
    started = perf_counter()
    info = machine_info()
    print(
        f"{info['date']}  {info['cpu_model']}, {info['cores_usable']} usable cores, "
        f"Python {info['python']}, load {info['loadavg'][0]:.2f}, soft/hard NOFILE "
        f"{info['nofile'][0]}/{info['nofile'][1]}"
    )
    print("packages: " + ", ".join(f"{k} {v}" for k, v in info["packages"].items()))
    if info["ninja_running"]:
        print("WARNING: a ninja build is running on this machine: figures will be low.")
    configs = plan(args)
    servers = {False: Server(args.server_mode)}
    try:
        if any(c.paced for c in configs):
            servers[True] = Server("tick", args.paced_itl_ms)
        fast = servers[False]
        paced = (
            f"; paced server: one token per stream every {args.paced_itl_ms:g} ms"
            if True in servers
            else ""
        )
        print(
            f"server: bench.fast_server ({fast.loop_name}, mode {args.server_mode}) at "
            f"{fast.url}; {MAX_TOKENS} tokens per response; {args.seconds:g} s per run, "
            f"{args.repeats} repeat(s){paced}"
        )
        print(
            "streams = max in flight; lag in ms (p99m: measured phase only); cpu/1k = client "
            "CPU s per 1000 tokens; cli%/srv% = % of one core; other = cores used by other "
            "processes"
        )
        print(HEADER)
        results = _run_all(args, configs, servers)
    finally:
        for server in servers.values():
            server.stop()
    print("\n".join(summarize(results) + verdicts(results, args.paced_itl_ms)))
    print(f"total {perf_counter() - started:.0f} s; load after {os.getloadavg()[0]:.2f}")
    if args.json:
        Path(args.json).write_text(
            json.dumps(
                {
                    "machine": info,
                    "server_mode": args.server_mode,
                    "paced_itl_ms": args.paced_itl_ms,
                    "seconds": args.seconds,
                    "results": results,
                },
                indent=2,
            )
        )
    return 0


def _run_all(
    args: argparse.Namespace, configs: list[Config], servers: dict[bool, Server]
) -> list[dict[str, Any]]:
    results: list[dict[str, Any]] = []
    started = perf_counter()
    for repeat in range(args.repeats):
        for config in configs:
            if perf_counter() - started > args.budget:
                print(f"(time budget of {args.budget:g} s spent: remaining runs skipped)")
                return results
            if config.nofile and repeat:
                continue  # the descriptor check needs one run, not a spread
            server = servers[config.paced]
            spec = Spec(
                config.kind,
                config.level,
                args.seconds,
                config.loop,
                server.url,
                server.pid,
                config.nofile,
                cprofile=args.cprofile,
            )
            result = run_child(spec)
            result.update(
                label=config.label,
                level=config.level,
                kind=config.kind,
                loop=config.loop,
                nofile=config.nofile,
                paced=config.paced,
                repeat=repeat,
            )
            results.append(result)
            print(row(config.label, config.level, result), flush=True)
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--levels",
        default=",".join(map(str, DEFAULT_LEVELS)),
        help="comma-separated concurrency levels (default 1,64,256,1024)",
    )
    parser.add_argument(
        "--seconds", type=float, default=4.0, help="duration cap of each measured phase (default 4)"
    )
    parser.add_argument("--repeats", type=int, default=2, help="runs per configuration")
    parser.add_argument(
        "--budget",
        type=float,
        default=170.0,
        help="stop starting new runs after this many seconds (default 170)",
    )
    parser.add_argument("--server-mode", default="chunked", choices=("chunked", "burst", "tick"))
    parser.add_argument(
        "--paced-itl-ms",
        type=float,
        default=20.0,
        help="also run the engine against a paced server (one token per "
        "stream per this many ms; 0 skips it; default 20)",
    )
    parser.add_argument(
        "--paced-levels", default="256", help="concurrency levels of the paced runs (default 256)"
    )
    parser.add_argument(
        "--wait-ninja",
        type=float,
        default=0.0,
        help="first wait up to this many seconds for a ninja build to end",
    )
    parser.add_argument("--no-raw", action="store_true", help="skip the raw client stack")
    parser.add_argument(
        "--ui",
        action="store_true",
        help="also measure each level with the live Textual screen drawing "
        "(headless) in the same process, as llmtop run does",
    )
    parser.add_argument(
        "--layers",
        action="store_true",
        help="also run StreamingClient+Exchange without the engine, the raw client "
        "(plain aiohttp, own SSE split, orjson) and plain aiohttp counting bytes",
    )
    parser.add_argument(
        "--no-nofile",
        action="store_true",
        help="skip the RLIMIT_NOFILE=1024 check at the highest level",
    )
    parser.add_argument(
        "--cprofile",
        help="write each client's cProfile stats to this path (use with one level and one repeat)",
    )
    parser.add_argument("--json", help="also write every result and the machine info here")
    return parent_main(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
