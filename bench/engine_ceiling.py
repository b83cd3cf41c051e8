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

Run: ``.venv/bin/python -m bench.engine_ceiling [--levels 1,64,256,1024] [--seconds N]``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from time import perf_counter, perf_counter_ns
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_LEVELS = (1, 64, 256, 1024)
MAX_TOKENS = 64
TARGET_TOKENS_PER_S_AT_64 = 75_000
TARGET_LAG_P99_MS_AT_256 = 10.0
REQUESTS_PER_SECOND_CAP = 5_000
"""Request cap per run = seconds x this: above any rate reached here, so the duration cap
governs, yet every run stays bounded by a request count too."""
PACKAGES = ("aiohttp", "httpx", "httpx-aiohttp", "uvloop", "orjson", "pydantic", "yarl",
            "multidict", "propcache")


# --------------------------------------------------------------------------- child side


@dataclass
class Spec:
    """One measurement, run in its own client process."""

    kind: str  # "engine", "client" or "raw"
    level: int
    seconds: float
    loop: str  # "uvloop" or "asyncio"
    url: str
    server_pid: int
    nofile: int | None = None
    label: str = ""
    cprofile: str | None = None


class _Window:
    """CPU of this process, of the server and of the whole machine over a measured span."""

    def __init__(self, server_pid: int) -> None:
        self._server_pid = server_pid
        self._ticks = os.sysconf("SC_CLK_TCK")

    def __enter__(self) -> _Window:
        self._t0 = perf_counter()
        self._ru0 = resource.getrusage(resource.RUSAGE_SELF)
        self._server0 = _proc_cpu_s(self._server_pid, self._ticks)
        self._busy0, self._irq0 = _machine_busy_s(self._ticks)
        self._load0 = os.getloadavg()[0]
        return self

    def __exit__(self, *exc: object) -> None:
        ru = resource.getrusage(resource.RUSAGE_SELF)
        self.wall_s = perf_counter() - self._t0
        self.cpu_s = (ru.ru_utime - self._ru0.ru_utime) + (ru.ru_stime - self._ru0.ru_stime)
        self.user_s = ru.ru_utime - self._ru0.ru_utime
        self.server_cpu_s = _proc_cpu_s(self._server_pid, self._ticks) - self._server0
        busy, irq = _machine_busy_s(self._ticks)
        others = busy - self._busy0 - self.cpu_s - self.server_cpu_s
        self.other_cores = max(0.0, others) / self.wall_s
        self.irq_cores = (irq - self._irq0) / self.wall_s
        self.load = (self._load0, os.getloadavg()[0])

    def figures(self) -> dict[str, Any]:
        return {"wall_s": self.wall_s, "client_cpu_s": self.cpu_s, "client_user_s": self.user_s,
                "client_cpu_pct": 100 * self.cpu_s / self.wall_s,
                "server_cpu_pct": 100 * self.server_cpu_s / self.wall_s,
                "other_load_cores": self.other_cores, "irq_cores": self.irq_cores,
                "loadavg_1m": self.load}


def _proc_cpu_s(pid: int, ticks: int) -> float:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / ticks  # utime, stime


def _machine_busy_s(ticks: int) -> tuple[float, float]:
    """CPU seconds the machine spent in processes (user, nice, system, steal), and in
    interrupts (irq, softirq: loopback TCP work lands there, for client and server alike)."""
    v = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    return (v[0] + v[1] + v[2] + v[7]) / ticks, (v[5] + v[6]) / ticks


def _body() -> dict[str, Any]:
    words = " ".join(["the"] * 64)
    return {"model": "bench", "max_tokens": MAX_TOKENS, "stream": True,
            "stream_options": {"include_usage": True}, "temperature": 0.0,
            "messages": [{"role": "user", "content": words}]}


async def _run_engine(spec: Spec) -> dict[str, Any]:
    from engine.events import EventBus, RequestFinished, SnapshotTaken
    from engine.profile import validate_profile
    from engine.runner import Engine, RunConfig

    profile = validate_profile({
        "name": f"c{spec.level}", "concurrency": spec.level, "max_tokens": MAX_TOKENS,
        "requests": int(spec.seconds * REQUESTS_PER_SECOND_CAP), "duration_s": spec.seconds,
        "warmup_requests": spec.level}, source="bench")

    class Collector:
        def __init__(self) -> None:
            self.in_flight: list[int] = []
            self.tokens = 0
            self.first_measured_lag_sample: int | None = None

        def handle(self, event: Any) -> None:
            if isinstance(event, SnapshotTaken) and not event.warmup:
                if self.first_measured_lag_sample is None:
                    self.first_measured_lag_sample = len(engine._lag.samples_ms)
                self.in_flight.append(event.in_flight)
            elif isinstance(event, RequestFinished):
                self.tokens += event.record.completion_tokens or 0

    collector = Collector()
    with tempfile.TemporaryDirectory(prefix="llmtop-bench-") as tmp:
        config = RunConfig(url=spec.url, model="bench", profiles=[profile],
                           results_root=Path(tmp))
        engine = Engine(config, EventBus([collector]))
        with _Window(spec.server_pid) as window:
            summary = await engine.run()
    p = summary.profiles[0] if summary.profiles else None
    measured_lag = sorted(engine._lag.samples_ms[collector.first_measured_lag_sample or 0:])
    return {
        **window.figures(), "error": summary.error,
        "sustained_max": max(collector.in_flight, default=0),
        "sustained_median": statistics.median(collector.in_flight) if collector.in_flight else 0,
        "duration_s": p.duration_s if p else 0.0, "requests": p.successes if p else 0,
        "requests_per_s": p.requests_per_s if p else 0.0,
        "tokens_per_s": p.output_tokens_total / p.duration_s if p and p.duration_s else 0.0,
        "lag_p50_ms": summary.client.loop_lag_p50_ms, "lag_p99_ms": summary.client.loop_lag_p99_ms,
        "lag_max_ms": summary.client.loop_lag_max_ms,
        "lag_p99_measured_ms": _pct(measured_lag, 99),
        "tokens_all": collector.tokens,
        "cpu_s_per_1k_tokens": (window.cpu_s / (collector.tokens / 1000)
                                if collector.tokens else None),
        "failures": p.failures if p else 0, "failures_by_kind": p.failures_by_kind if p else {},
        "sink_time_s": summary.client.sink_time_s,
        "itl_p50_ms": _ms(p.itl_s.p50 if p and p.itl_s else None),
        "itl_p99_ms": _ms(p.itl_s.p99 if p and p.itl_s else None),
        "ttft_p50_ms": _ms(p.ttft_s.p50 if p and p.ttft_s else None),
        "ttft_p99_ms": _ms(p.ttft_s.p99 if p and p.ttft_s else None),
    }


def _ms(seconds: float | None) -> float | None:
    return None if seconds is None else seconds * 1000


def _pct(ordered: Any, q: float) -> float | None:
    from engine.stats import percentile

    return percentile(ordered, q) if len(ordered) else None


async def _closed_loop(spec: Spec, one: Callable[[], Any]) -> dict[str, Any]:
    """Warm-up round of ``level`` requests, then ``level`` workers until the caps; the
    figures of the measured phase (same definitions as the engine's)."""
    from engine.loop_lag import LoopLagMonitor

    lag = LoopLagMonitor()
    lag_task = asyncio.create_task(lag.run())
    state = {"in_flight": 0, "max_in_flight": 0, "ok": 0, "failed": 0, "tokens": 0, "sent": 0}
    samples: list[int] = []

    async def request() -> None:
        state["in_flight"] += 1
        state["max_in_flight"] = max(state["max_in_flight"], state["in_flight"])
        try:
            tokens = await one()
            state["ok"] += 1
            state["tokens"] += tokens
        except Exception as exc:  # noqa: BLE001 - counted, the benchmark goes on
            state["failed"] += 1
            state.setdefault("errors", {}).setdefault(type(exc).__name__, 0)
            state["errors"][type(exc).__name__] += 1
        finally:
            state["in_flight"] -= 1

    async def sampler() -> None:
        while True:
            await asyncio.sleep(0.25)
            samples.append(state["in_flight"])

    with _Window(spec.server_pid) as window:
        await asyncio.gather(*(request() for _ in range(spec.level)))
        warm_tokens = state["tokens"]
        first_lag = len(lag.samples_ms)
        state.update(ok=0, failed=0, tokens=0, max_in_flight=0)
        limit = int(spec.seconds * REQUESTS_PER_SECOND_CAP)
        start = perf_counter_ns()
        deadline = start + int(spec.seconds * 1e9)

        async def worker() -> None:
            while state["sent"] < limit and perf_counter_ns() < deadline:
                state["sent"] += 1
                await request()

        sampling = asyncio.create_task(sampler())
        await asyncio.gather(*(worker() for _ in range(spec.level)))
        duration_s = (perf_counter_ns() - start) / 1e9
        sampling.cancel()
        lag_task.cancel()
    everything = sorted(lag.samples_ms)
    measured = sorted(lag.samples_ms[first_lag:])
    tokens_all = state["tokens"] + warm_tokens
    return {
        **window.figures(), "error": None,
        "sustained_max": state["max_in_flight"],
        "sustained_median": statistics.median(samples) if samples else 0,
        "duration_s": duration_s, "requests": state["ok"],
        "requests_per_s": state["ok"] / duration_s, "tokens_per_s": state["tokens"] / duration_s,
        "lag_p50_ms": _pct(everything, 50), "lag_p99_ms": _pct(everything, 99),
        "lag_max_ms": everything[-1] if everything else None,
        "lag_p99_measured_ms": _pct(measured, 99), "tokens_all": tokens_all,
        "cpu_s_per_1k_tokens": window.cpu_s / (tokens_all / 1000) if tokens_all else None,
        "failures": state["failed"], "failures_by_kind": state.get("errors", {}),
        "sink_time_s": None,
    }


async def _run_raw(spec: Spec) -> dict[str, Any]:
    """httpx API over the aiohttp transport, bytes counted, nothing parsed."""
    import aiohttp
    import httpx
    import orjson
    from httpx_aiohttp import AiohttpTransport

    from bench.fast_server import build_events

    expected = sum(len(e) for e in build_events("chat", MAX_TOKENS, True))
    content = orjson.dumps(_body())
    headers = {"content-type": "application/json", "accept": "text/event-stream"}
    connector = aiohttp.TCPConnector(limit=spec.level, limit_per_host=spec.level)
    session = aiohttp.ClientSession(connector=connector, auto_decompress=False)
    async with httpx.AsyncClient(
            base_url=spec.url, transport=AiohttpTransport(client=session),
            timeout=httpx.Timeout(connect=10, read=300, write=300, pool=None)) as http:

        async def one() -> int:
            size = 0
            async with http.stream("POST", "/v1/chat/completions", content=content,
                                   headers=headers) as response:
                async for chunk in response.aiter_raw():
                    size += len(chunk)
            if size != expected:
                raise ValueError(f"got {size} bytes, expected {expected}")
            return MAX_TOKENS

        return await _closed_loop(spec, one)


async def _run_aiohttp(spec: Spec) -> dict[str, Any]:
    """Plain aiohttp (no httpx API on top), bytes counted, nothing parsed."""
    import aiohttp
    import orjson

    from bench.fast_server import build_events

    expected = sum(len(e) for e in build_events("chat", MAX_TOKENS, True))
    content = orjson.dumps(_body())
    headers = {"content-type": "application/json", "accept": "text/event-stream"}
    url = spec.url + "/v1/chat/completions"
    connector = aiohttp.TCPConnector(limit=spec.level, limit_per_host=spec.level)
    async with aiohttp.ClientSession(connector=connector, auto_decompress=False) as session:

        async def one() -> int:
            size = 0
            async with session.post(url, data=content, headers=headers) as response:
                async for chunk in response.content.iter_any():
                    size += len(chunk)
            if size != expected:
                raise ValueError(f"got {size} bytes, expected {expected}")
            return MAX_TOKENS

        return await _closed_loop(spec, one)


async def _run_client(spec: Spec) -> dict[str, Any]:
    """The engine's StreamingClient and Exchange (SSE split, JSON parse), no records."""
    from engine.client import RequestSpec, StreamingClient
    from engine.exchange import Exchange

    body = _body()
    request = RequestSpec("chat", {k: body[k] for k in ("model", "max_tokens", "messages")})
    async with StreamingClient(spec.url, max_connections=spec.level) as client:

        async def one() -> int:
            exchange = Exchange(perf_counter_ns())
            await client.execute(request, exchange)
            if exchange.error_kind is not None:
                raise RuntimeError(f"{exchange.error_kind}: {exchange.error_message}")
            return (exchange.usage or {}).get("completion_tokens", 0)

        return await _closed_loop(spec, one)


RUNNERS = {"engine": _run_engine, "raw": _run_raw, "client": _run_client,
           "aiohttp": _run_aiohttp}


def child_main(spec: Spec) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if spec.nofile is not None:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(spec.nofile, hard), hard))
    nofile_before = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    factory = None
    if spec.loop == "uvloop":
        import uvloop

        factory = uvloop.new_event_loop
    with asyncio.Runner(loop_factory=factory) as runner:
        if spec.cprofile:
            import cProfile

            profiler = cProfile.Profile()
            profiler.enable()
            result = runner.run(RUNNERS[spec.kind](spec))
            profiler.disable()
            profiler.dump_stats(spec.cprofile)
        else:
            result = runner.run(RUNNERS[spec.kind](spec))
    result["nofile_soft"] = (nofile_before, resource.getrlimit(resource.RLIMIT_NOFILE)[0])
    print(json.dumps(result), flush=True)


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
        "date": time.strftime("%Y-%m-%d %H:%M:%S %z"), "cpu_model": cpu,
        "cores_online": os.cpu_count(), "cores_usable": len(os.sched_getaffinity(0)),
        "python": platform.python_version(), "kernel": platform.release(),
        "packages": versions, "nofile": resource.getrlimit(resource.RLIMIT_NOFILE),
        "loadavg": os.getloadavg(), "ninja_running": _ninja_running(),
    }


def _ninja_running() -> bool:
    # -x: the process name, not the command line (which "--wait-ninja" itself would match).
    return subprocess.run(["pgrep", "-x", "ninja"], capture_output=True).returncode == 0


class Server:
    """``bench.fast_server`` in its own process."""

    def __init__(self, mode: str, itl_ms: float = 0.0) -> None:
        self._proc = subprocess.Popen(
            [sys.executable, "-m", "bench.fast_server", "--port", "0", "--mode", mode,
             "--itl-ms", str(itl_ms)],
            cwd=ROOT, stdout=subprocess.PIPE, text=True)
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
    args = [sys.executable, "-m", "bench.engine_ceiling", "--child", json.dumps(spec.__dict__)]
    try:
        done = subprocess.run(args, cwd=ROOT, capture_output=True, text=True,
                              timeout=spec.seconds * 4 + 60)
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
        return (f"{self.kind}/{self.loop}" + (f" NOFILE={self.nofile}" if self.nofile else "")
                + (" paced" if self.paced else ""))


def plan(args: argparse.Namespace) -> list[Config]:
    """Configurations in the order they run (each repeat runs them all again)."""
    levels = [int(v) for v in args.levels.split(",") if v]
    configs: list[Config] = []
    for level in levels:
        configs.append(Config("engine", "uvloop", level))
        if level == 64:
            configs.append(Config("engine", "asyncio", level))
        if args.layers:
            configs += [Config("client", "uvloop", level), Config("aiohttp", "uvloop", level)]
        if not args.no_raw:
            configs.append(Config("raw", "uvloop", level))
    if not args.no_nofile and levels and max(levels) >= 1000:
        configs.append(Config("engine", "uvloop", max(levels), nofile=1024))
    if args.paced_itl_ms:
        configs += [Config("engine", "uvloop", int(v), paced=True)
                    for v in args.paced_levels.split(",") if v]
    return configs


def _fmt(value: Any, spec: str) -> str:
    return "-" if value is None else format(value, spec)


HEADER = (f"{'config':<26}{'level':>6}{'streams':>9}{'req/s':>8}{'tok/s':>9}{'lag p50':>8}"
          f"{'p99':>7}{'p99m':>7}{'cpu/1k':>8}{'cli%':>6}{'srv%':>6}{'other':>6}{'fail':>6}")


def row(label: str, level: int, r: dict[str, Any]) -> str:
    if r.get("error") and "tokens_per_s" not in r:
        return f"{label:<26}{level:>6}  ERROR {r['error']}"
    return (f"{label:<26}{level:>6}{r['sustained_max']:>9}{r['requests_per_s']:>8.0f}"
            f"{r['tokens_per_s']:>9.0f}{_fmt(r['lag_p50_ms'], '.2f'):>8}"
            f"{_fmt(r['lag_p99_ms'], '.1f'):>7}{_fmt(r['lag_p99_measured_ms'], '.1f'):>7}"
            f"{_fmt(r['cpu_s_per_1k_tokens'], '.4f'):>8}{r['client_cpu_pct']:>6.0f}"
            f"{r['server_cpu_pct']:>6.0f}{r['other_load_cores']:>6.2f}{r['failures']:>6}"
            + (f"  {r['failures_by_kind']}" if r["failures"] else "")
            + (f"  error: {r['error']}" if r.get("error") else ""))


def _span(rs: list[dict[str, Any]], key: str, fmt: str) -> str:
    """``median [min-max]`` of one figure over repeats."""
    values = [r[key] for r in rs if r.get(key) is not None]
    if not values:
        return "-"
    return (f"{format(statistics.median(values), fmt)} "
            f"[{format(min(values), fmt)}-{format(max(values), fmt)}]")


def summarize(results: list[dict[str, Any]]) -> list[str]:
    lines = ["", "Per configuration: median of repeats [min-max]",
             f"{'config':<26}{'level':>6}{'streams':>8}  {'tok/s':<25}{'lag p99 ms':<24}"
             f"{'cpu s/1k tok':<25}{'other load, cores':<18}"]
    groups: dict[tuple[str, int], list[dict[str, Any]]] = {}
    for r in results:
        if "tokens_per_s" in r:
            groups.setdefault((r["label"], r["level"]), []).append(r)
    for (label, level), rs in groups.items():
        lines.append(f"{label:<26}{level:>6}{max(r['sustained_max'] for r in rs):>8}  "
                     f"{_span(rs, 'tokens_per_s', '.0f'):<25}{_span(rs, 'lag_p99_ms', '.1f'):<24}"
                     f"{_span(rs, 'cpu_s_per_1k_tokens', '.4f'):<25}"
                     f"{_span(rs, 'other_load_cores', '.2f'):<18}")
    return lines


def verdicts(results: list[dict[str, Any]], paced_itl_ms: float) -> list[str]:
    def pick(label: str, level: int) -> list[dict[str, Any]]:
        return [r for r in results if r.get("label") == label and r.get("level") == level
                and "tokens_per_s" in r]

    lines = [""]
    at64 = pick("engine/uvloop", 64)
    if at64:
        tps = [r["tokens_per_s"] for r in at64]
        ok = statistics.median(tps) >= TARGET_TOKENS_PER_S_AT_64
        lines.append(f"target >= {TARGET_TOKENS_PER_S_AT_64} tok/s at 64 streams: "
                     f"{'MET' if ok else 'NOT MET'} (median {statistics.median(tps):.0f}, "
                     f"runs {', '.join(f'{v:.0f}' for v in tps)})")
    at256 = pick("engine/uvloop", 256)
    if at256:
        lags = [r["lag_p99_ms"] for r in at256]
        ok = statistics.median(lags) < TARGET_LAG_P99_MS_AT_256
        lines.append(f"target lag p99 < {TARGET_LAG_P99_MS_AT_256:g} ms at 256 streams "
                     f"(server as fast as it can): {'MET' if ok else 'NOT MET'} (median "
                     f"{statistics.median(lags):.1f} ms, runs "
                     f"{', '.join(f'{v:.1f}' for v in lags)})")
    paced = [r for r in results if r.get("paced") and "tokens_per_s" in r]
    for level in sorted({r["level"] for r in paced}):
        rs = [r for r in paced if r["level"] == level]
        lines.append(
            f"paced server ({paced_itl_ms:g} ms per token) at {level} streams: lag p99 "
            f"{_span(rs, 'lag_p99_ms', '.1f')} ms, p50 {_span(rs, 'lag_p50_ms', '.2f')} ms; "
            f"measured ITL p50 {_span(rs, 'itl_p50_ms', '.1f')} ms, p99 "
            f"{_span(rs, 'itl_p99_ms', '.1f')} ms; {_span(rs, 'tokens_per_s', '.0f')} tok/s")
    for r in results:
        if r.get("nofile") and "nofile_soft" in r:
            before, after = r["nofile_soft"]
            raised = "raised it" if after > before else "did NOT raise it"
            lines.append(f"soft RLIMIT_NOFILE {before} at {r['level']} streams: the engine "
                         f"{raised} ({after}); {r['failures']} failures {r['failures_by_kind']}, "
                         f"{r['sustained_max']} streams sustained")
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
    print(f"{info['date']}  {info['cpu_model']}, {info['cores_usable']} usable cores, "
          f"Python {info['python']}, load {info['loadavg'][0]:.2f}, soft/hard NOFILE "
          f"{info['nofile'][0]}/{info['nofile'][1]}")
    print("packages: " + ", ".join(f"{k} {v}" for k, v in info["packages"].items()))
    if info["ninja_running"]:
        print("WARNING: a ninja build is running on this machine: figures will be low.")
    configs = plan(args)
    servers = {False: Server(args.server_mode)}
    try:
        if any(c.paced for c in configs):
            servers[True] = Server("tick", args.paced_itl_ms)
        fast = servers[False]
        paced = (f"; paced server: one token per stream every {args.paced_itl_ms:g} ms"
                 if True in servers else "")
        print(f"server: bench.fast_server ({fast.loop_name}, mode {args.server_mode}) at "
              f"{fast.url}; {MAX_TOKENS} tokens per response; {args.seconds:g} s per run, "
              f"{args.repeats} repeat(s){paced}")
        print("streams = max in flight; lag in ms (p99m: measured phase only); cpu/1k = client "
              "CPU s per 1000 tokens; cli%/srv% = % of one core; other = cores used by other "
              "processes")
        print(HEADER)
        results = _run_all(args, configs, servers)
    finally:
        for server in servers.values():
            server.stop()
    print("\n".join(summarize(results) + verdicts(results, args.paced_itl_ms)))
    print(f"total {perf_counter() - started:.0f} s; load after {os.getloadavg()[0]:.2f}")
    if args.json:
        Path(args.json).write_text(json.dumps({
            "machine": info, "server_mode": args.server_mode, "paced_itl_ms": args.paced_itl_ms,
            "seconds": args.seconds, "results": results}, indent=2))
    return 0


def _run_all(args: argparse.Namespace, configs: list[Config],
             servers: dict[bool, Server]) -> list[dict[str, Any]]:
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
            spec = Spec(config.kind, config.level, args.seconds, config.loop, server.url,
                        server.pid, config.nofile, cprofile=args.cprofile)
            result = run_child(spec)
            result.update(label=config.label, level=config.level, kind=config.kind,
                          loop=config.loop, nofile=config.nofile, paced=config.paced,
                          repeat=repeat)
            results.append(result)
            print(row(config.label, config.level, result), flush=True)
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--levels", default=",".join(map(str, DEFAULT_LEVELS)),
                        help="comma-separated concurrency levels (default 1,64,256,1024)")
    parser.add_argument("--seconds", type=float, default=4.0,
                        help="duration cap of each measured phase (default 4)")
    parser.add_argument("--repeats", type=int, default=2, help="runs per configuration")
    parser.add_argument("--budget", type=float, default=170.0,
                        help="stop starting new runs after this many seconds (default 170)")
    parser.add_argument("--server-mode", default="chunked", choices=("chunked", "burst", "tick"))
    parser.add_argument("--paced-itl-ms", type=float, default=20.0,
                        help="also run the engine against a paced server (one token per "
                             "stream per this many ms; 0 skips it; default 20)")
    parser.add_argument("--paced-levels", default="256",
                        help="concurrency levels of the paced runs (default 256)")
    parser.add_argument("--wait-ninja", type=float, default=0.0,
                        help="first wait up to this many seconds for a ninja build to end")
    parser.add_argument("--no-raw", action="store_true", help="skip the raw client stack")
    parser.add_argument("--layers", action="store_true",
                        help="also run StreamingClient+Exchange without the engine, and "
                             "plain aiohttp without httpx")
    parser.add_argument("--no-nofile", action="store_true",
                        help="skip the RLIMIT_NOFILE=1024 check at the highest level")
    parser.add_argument("--cprofile", help="write each client's cProfile stats to this path "
                                           "(use with one level and one repeat)")
    parser.add_argument("--json", help="also write every result and the machine info here")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        child_main(Spec(**json.loads(args.child)))
        return 0
    return parent_main(args)


if __name__ == "__main__":
    sys.exit(main())
