"""One llmtop process against the raw client, and its event-loop lag at 256 streams.

Issue 15's two single-process targets, measured in one sitting against one
``bench.fast_server`` (64 one-token events per response, as fast as it can):

* throughput: the real ``Engine`` (one process, the path every ``--workers`` worker runs) and
  the raw client (plain aiohttp on uvloop, its own SSE split, ``orjson`` per event, a
  timestamp per token: ``bench.ceiling_client._run_raw_sse``) alternate, ``--rounds`` times,
  at ``--level`` streams; each round's ratio is engine tok/s / raw tok/s, and the verdict is on
  the median round (target >= 0.85);
* event-loop lag: the engine at ``--lag-level`` flat-out streams in one process; p99 of the
  lag monitor over the measured phase (target < 10 ms), with the raw client's figure beside
  it for scale.

Every measurement is a fresh client process (``bench.ceiling_client``), so ``getrusage`` sees
the client alone. Run: ``.venv/bin/python -m bench.per_process [--rounds 3] [--seconds 4]``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
from pathlib import Path
from time import perf_counter
from typing import Any

from bench.ceiling_client import MAX_TOKENS, Spec
from bench.engine_ceiling import Server, machine_info, run_child

TARGET_RATIO = 0.85
TARGET_LAG_P99_MS = 10.0


def _measure(kind: str, level: int, args: argparse.Namespace, server: Server) -> dict[str, Any]:
    spec = Spec(
        kind=kind,
        level=level,
        seconds=args.seconds,
        loop="uvloop",
        url=server.url,
        server_pid=server.pid,
        cprofile=args.cprofile if kind == "engine" else None,
    )
    result = run_child(spec)
    if result.get("error"):
        raise SystemExit(f"{kind} @ {level}: {result['error']}")
    return result


def _line(label: str, r: dict[str, Any]) -> str:
    lag, whole = r["lag_p99_measured_ms"], r["lag_p99_ms"]
    return (
        f"{label:<26} {r['tokens_per_s']:>9,.0f} tok/s  lag p99 {lag:>6.1f} ms (whole run "
        f"{whole:.1f})  client {r['client_cpu_pct']:.0f} %  server {r['server_cpu_pct']:.0f} %"
        f"  other {r['other_load_cores']:.2f} cores  failures {r['failures']}"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3, help="alternating rounds (default 3)")
    parser.add_argument("--level", type=int, default=64, help="streams of the ratio runs")
    parser.add_argument("--lag-level", type=int, default=256, help="streams of the lag runs")
    parser.add_argument("--seconds", type=float, default=4.0, help="measured phase of each run")
    parser.add_argument("--cprofile", help="write the engine runs' cProfile stats here")
    parser.add_argument("--json", help="also write every result and the machine here")
    args = parser.parse_args(argv)

    started = perf_counter()
    info = machine_info()
    print(
        f"{info['date']}  {info['cpu_model']}, {info['cores_usable']} usable cores, "
        f"Python {info['python']}, load {info['loadavg'][0]:.2f}"
    )
    print("packages: " + ", ".join(f"{k} {v}" for k, v in info["packages"].items()))
    server = Server("chunked")
    rounds: list[dict[str, Any]] = []
    lag: list[dict[str, Any]] = []
    try:
        print(
            f"server: bench.fast_server ({server.loop_name}) at {server.url}; {MAX_TOKENS} "
            f"tokens per response; {args.seconds:g} s per run"
        )
        for n in range(1, args.rounds + 1):
            engine = _measure("engine", args.level, args, server)
            raw = _measure("raw-sse", args.level, args, server)
            ratio = engine["tokens_per_s"] / raw["tokens_per_s"]
            rounds.append({"engine": engine, "raw": raw, "ratio": ratio})
            print(_line(f"round {n} engine @ {args.level}", engine))
            print(_line(f"round {n} raw client @ {args.level}", raw))
            print(f"round {n} ratio engine/raw: {ratio:.3f}")
        for n in range(1, args.rounds + 1):
            engine = _measure("engine", args.lag_level, args, server)
            raw = _measure("raw-sse", args.lag_level, args, server)
            lag.append({"engine": engine, "raw": raw})
            print(_line(f"lag {n} engine @ {args.lag_level}", engine))
            print(_line(f"lag {n} raw client @ {args.lag_level}", raw))
    finally:
        server.stop()

    ratio = statistics.median(r["ratio"] for r in rounds)
    lag_p99 = statistics.median(r["engine"]["lag_p99_measured_ms"] for r in lag)
    raw_lag = statistics.median(r["raw"]["lag_p99_measured_ms"] for r in lag)
    ratios = ", ".join(f"{r['ratio']:.3f}" for r in rounds)
    print(
        f"engine / raw client at {args.level} streams: median {ratio:.3f} (rounds {ratios}); "
        f"target >= {TARGET_RATIO}: {'MET' if ratio >= TARGET_RATIO else 'NOT MET'}"
    )
    print(
        f"engine lag p99 at {args.lag_level} flat-out streams: median {lag_p99:.1f} ms (raw "
        f"client {raw_lag:.1f} ms); target < {TARGET_LAG_P99_MS:g} ms: "
        f"{'MET' if lag_p99 < TARGET_LAG_P99_MS else 'NOT MET'}"
    )
    print(f"total {perf_counter() - started:.0f} s; load after {os.getloadavg()[0]:.2f}")
    if args.json:
        Path(args.json).write_text(
            json.dumps({"machine": info, "rounds": rounds, "lag": lag}, indent=2)
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
