"""One measurement of bench.engine_ceiling, run in a fresh client process.

``python -m bench.ceiling_client SPEC_JSON`` runs one ``Spec`` (the real ``Engine``, the bare
client stack, the engine's ``StreamingClient`` alone, or plain aiohttp) against an already
running ``bench.fast_server`` and prints one JSON line of results. A process per measurement
keeps ``getrusage`` to the client alone and starts every level clean.
"""

from __future__ import annotations

import asyncio
import json
import os
import resource
import statistics
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from time import perf_counter, perf_counter_ns
from typing import Any

MAX_TOKENS = 64
REQUESTS_PER_SECOND_CAP = 5_000
"""Request cap per run = seconds x this: above any rate reached here, so the duration cap
governs, yet every run stays bounded by a request count too."""


@dataclass
class Spec:
    """One measurement, run in its own client process."""

    kind: str  # "engine", "engine-ui", "client", "aiohttp", "raw" or "raw-sse"
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

    def __init__(self, server_pid: int, children: bool = False) -> None:
        self._server_pid = server_pid
        self._children = children
        self._ticks = os.sysconf("SC_CLK_TCK")

    def __enter__(self) -> _Window:
        self._t0 = perf_counter()
        self._ru0 = self._rusage()
        self._server0 = _proc_cpu_s(self._server_pid, self._ticks)
        self._busy0, self._irq0 = _machine_busy_s(self._ticks)
        self._load0 = os.getloadavg()[0]
        return self

    def __exit__(self, *exc: object) -> None:
        ru = self._rusage()
        self.wall_s = perf_counter() - self._t0
        self.cpu_s = (ru.ru_utime - self._ru0.ru_utime) + (ru.ru_stime - self._ru0.ru_stime)
        self.user_s = ru.ru_utime - self._ru0.ru_utime
        self.server_cpu_s = _proc_cpu_s(self._server_pid, self._ticks) - self._server0
        busy, irq = _machine_busy_s(self._ticks)
        others = busy - self._busy0 - self.cpu_s - self.server_cpu_s
        self.other_cores = max(0.0, others) / self.wall_s
        self.irq_cores = (irq - self._irq0) / self.wall_s
        self.load = (self._load0, os.getloadavg()[0])

    def _rusage(self) -> Any:
        """This process's CPU, plus its finished children's (the engine process) if asked."""
        ru = resource.getrusage(resource.RUSAGE_SELF)
        if not self._children:
            return ru
        kids = resource.getrusage(resource.RUSAGE_CHILDREN)
        return type(
            "RU",
            (),
            {"ru_utime": ru.ru_utime + kids.ru_utime, "ru_stime": ru.ru_stime + kids.ru_stime},
        )()

    def figures(self) -> dict[str, Any]:
        return {
            "wall_s": self.wall_s,
            "client_cpu_s": self.cpu_s,
            "client_user_s": self.user_s,
            "client_cpu_pct": 100 * self.cpu_s / self.wall_s,
            "server_cpu_pct": 100 * self.server_cpu_s / self.wall_s,
            "other_load_cores": self.other_cores,
            "irq_cores": self.irq_cores,
            "loadavg_1m": self.load,
        }


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
    return {
        "model": "bench",
        "max_tokens": MAX_TOKENS,
        "stream": True,
        "stream_options": {"include_usage": True},
        "temperature": 0.0,
        "messages": [{"role": "user", "content": words}],
    }


def _engine_setup(spec: Spec, results_root: Path) -> tuple[Any, Any]:
    """The real ``Engine`` for a closed loop at ``spec.level``, and a collector of its events."""
    from engine.events import EventBus, RequestFinished, SnapshotTaken
    from engine.run.config import RunConfig
    from engine.run.engine import Engine
    from engine.workload.profile import validate_profile

    profile = validate_profile(
        {
            "name": f"c{spec.level}",
            "concurrency": spec.level,
            "max_tokens": MAX_TOKENS,
            "requests": int(spec.seconds * REQUESTS_PER_SECOND_CAP),
            "duration_s": spec.seconds,
            "warmup_requests": spec.level,
        },
        source="bench",
    )

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
    config = RunConfig(url=spec.url, model="bench", profiles=[profile], results_root=results_root)
    engine = Engine(config, EventBus([collector]))
    return engine, collector


async def _run_engine(spec: Spec) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="llmtop-bench-") as tmp:
        engine, collector = _engine_setup(spec, Path(tmp))
        with _Window(spec.server_pid) as window:
            summary = await engine.run()
    return _engine_figures(engine, collector, summary, window)


UI_SIZE = (160, 48)
"""Terminal the live screen is drawn on in the ``engine-ui`` measurement."""


async def _run_engine_ui(spec: Spec) -> dict[str, Any]:
    """As ``llmtop run`` with its live screen: the engine in a child process, the Textual
    app drawing (headless, at ``UI_SIZE``) in this one. The engine's figures come from the
    summary and records it wrote; CPU covers both processes (children's rusage added).
    """
    from engine.results.layout import new_run_id
    from tui.live.engine_process import EngineJob
    from tui.live.session import start_live

    with tempfile.TemporaryDirectory(prefix="llmtop-bench-") as tmp:
        engine, _ = _engine_setup(spec, Path(tmp))
        job = EngineJob(engine.config, new_run_id())
        with _Window(spec.server_pid, children=True) as window:
            # The screen's process alone (the app, its reader thread): what the UI costs.
            ui0, t0 = resource.getrusage(resource.RUSAGE_SELF), perf_counter()
            live = start_live(job)
            async with live.app.run_test(headless=True, size=UI_SIZE) as pilot:
                while live.engine.running:
                    await pilot.pause(0.1)
                repaints = live.app.repaints
            ui1, ui_wall_s = resource.getrusage(resource.RUSAGE_SELF), perf_counter() - t0
            summary = live.finish()
        records = [
            json.loads(line) for line in (job.run_dir / "requests.jsonl").read_text().splitlines()
        ]
    measured = [r for r in records if not r["warmup"]]
    return {
        **_summary_figures(
            summary,
            window,
            sustained_max=_max_in_flight(measured),
            sustained_median=None,
            lag_p99_measured_ms=None,
            tokens=sum(r["completion_tokens"] or 0 for r in records),
        ),
        "ui_repaints": repaints,
        "ui_repaints_per_s": repaints / ui_wall_s,
        "ui_cpu_pct": 100
        * ((ui1.ru_utime - ui0.ru_utime) + (ui1.ru_stime - ui0.ru_stime))
        / ui_wall_s,
    }


def _max_in_flight(records: list[dict[str, Any]]) -> int:
    """Most requests in flight at once, from their send and end times."""
    edges = sorted(
        [(r["sent_ns"] or r["scheduled_ns"], 1) for r in records]
        + [(r["end_ns"], -1) for r in records]
    )
    level = peak = 0
    for _, step in edges:
        level += step
        peak = max(peak, level)
    return peak


def _engine_figures(engine: Any, collector: Any, summary: Any, window: _Window) -> dict[str, Any]:
    """Figures of an in-process engine run: streams and measured-phase lag from its events."""
    measured_lag = sorted(engine._lag.samples_ms[collector.first_measured_lag_sample or 0 :])
    return _summary_figures(
        summary,
        window,
        sustained_max=max(collector.in_flight, default=0),
        sustained_median=statistics.median(collector.in_flight) if collector.in_flight else 0,
        lag_p99_measured_ms=_pct(measured_lag, 99),
        tokens=collector.tokens,
    )


def _summary_figures(
    summary: Any,
    window: _Window,
    *,
    sustained_max: int,
    sustained_median: float | None,
    lag_p99_measured_ms: float | None,
    tokens: int,
) -> dict[str, Any]:
    """One result line: the run's summary and CPU window, plus what each runner measured."""
    p = summary.profiles[0] if summary.profiles else None
    return {
        **window.figures(),
        "error": summary.error,
        "sustained_max": sustained_max,
        "sustained_median": sustained_median,
        "duration_s": p.duration_s if p else 0.0,
        "requests": p.successes if p else 0,
        "requests_per_s": p.requests_per_s if p else 0.0,
        "tokens_per_s": p.output_tokens_total / p.duration_s if p and p.duration_s else 0.0,
        "lag_p50_ms": summary.client.loop_lag_p50_ms,
        "lag_p99_ms": summary.client.loop_lag_p99_ms,
        "lag_max_ms": summary.client.loop_lag_max_ms,
        "lag_p99_measured_ms": lag_p99_measured_ms,
        "tokens_all": tokens,
        "cpu_s_per_1k_tokens": window.cpu_s / (tokens / 1000) if tokens else None,
        "failures": p.failures if p else 0,
        "failures_by_kind": p.failures_by_kind if p else {},
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
    from engine.run.loop_lag import LoopLagMonitor

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
        **window.figures(),
        "error": None,
        "sustained_max": state["max_in_flight"],
        "sustained_median": statistics.median(samples) if samples else 0,
        "duration_s": duration_s,
        "requests": state["ok"],
        "requests_per_s": state["ok"] / duration_s,
        "tokens_per_s": state["tokens"] / duration_s,
        "lag_p50_ms": _pct(everything, 50),
        "lag_p99_ms": _pct(everything, 99),
        "lag_max_ms": everything[-1] if everything else None,
        "lag_p99_measured_ms": _pct(measured, 99),
        "tokens_all": tokens_all,
        "cpu_s_per_1k_tokens": window.cpu_s / (tokens_all / 1000) if tokens_all else None,
        "failures": state["failed"],
        "failures_by_kind": state.get("errors", {}),
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
        base_url=spec.url,
        transport=AiohttpTransport(client=session),
        timeout=httpx.Timeout(connect=10, read=300, write=300, pool=None),
    ) as http:

        async def one() -> int:
            size = 0
            async with http.stream(
                "POST", "/v1/chat/completions", content=content, headers=headers
            ) as response:
                async for chunk in response.aiter_raw():
                    size += len(chunk)
            if size != expected:
                raise ValueError(f"got {size} bytes, expected {expected}")
            return MAX_TOKENS

        return await _closed_loop(spec, one)


async def _plain_aiohttp(spec: Spec, read: Callable[[Any], Any]) -> dict[str, Any]:
    """A closed loop of plain aiohttp requests (no httpx API, no engine); ``read(response)``
    reads one answer and returns its token count, raising when the answer is not whole.
    """
    import aiohttp
    import orjson

    content = orjson.dumps(_body())
    headers = {"content-type": "application/json", "accept": "text/event-stream"}
    url = spec.url + "/v1/chat/completions"
    connector = aiohttp.TCPConnector(limit=spec.level, limit_per_host=spec.level)
    async with aiohttp.ClientSession(connector=connector, auto_decompress=False) as session:

        async def one() -> int:
            async with session.post(url, data=content, headers=headers) as response:
                tokens: int = await read(response)
            return tokens

        return await _closed_loop(spec, one)


async def _run_aiohttp(spec: Spec) -> dict[str, Any]:
    """Plain aiohttp (no httpx API on top), bytes counted, nothing parsed."""
    from bench.fast_server import build_events

    expected = sum(len(e) for e in build_events("chat", MAX_TOKENS, True))

    async def read(response: Any) -> int:
        size = 0
        async for chunk in response.content.iter_any():
            size += len(chunk)
        if size != expected:
            raise ValueError(f"got {size} bytes, expected {expected}")
        return MAX_TOKENS

    return await _plain_aiohttp(spec, read)


async def _run_raw_sse(spec: Spec) -> dict[str, Any]:
    """The raw client of ../shared/MEASURED.md and issue 15: plain aiohttp (uvloop when the spec
    says so), its own SSE split, ``orjson`` per event, a timestamp per content token. What a
    hand-written benchmark script does, and the reference llmtop's one process is held to.
    """
    import orjson

    async def read(response: Any) -> int:
        stamps: list[int] = []
        usage = None
        buffer = b""
        async for chunk in response.content.iter_any():
            now = perf_counter_ns()
            buffer += chunk
            *events, buffer = buffer.split(b"\n\n")
            for event in events:
                if not event.startswith(b"data: ") or event == b"data: [DONE]":
                    continue
                data = orjson.loads(event[6:])
                if data.get("usage"):
                    usage = data["usage"]
                for choice in data.get("choices") or ():
                    if (choice.get("delta") or {}).get("content"):
                        stamps.append(now)
        tokens = (usage or {}).get("completion_tokens", 0)
        if len(stamps) != MAX_TOKENS or tokens != MAX_TOKENS:
            raise ValueError(f"got {len(stamps)} token events, usage {tokens}")
        return int(tokens)

    return await _plain_aiohttp(spec, read)


async def _run_client(spec: Spec) -> dict[str, Any]:
    """The engine's StreamingClient and Exchange (SSE split, JSON parse), no records."""
    from engine.http.client import RequestSpec, StreamingClient
    from engine.http.exchange import Exchange

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


RUNNERS = {
    "engine": _run_engine,
    "engine-ui": _run_engine_ui,
    "raw": _run_raw,
    "client": _run_client,
    "aiohttp": _run_aiohttp,
    "raw-sse": _run_raw_sse,
}


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


if __name__ == "__main__":
    child_main(Spec(**json.loads(sys.argv[1])))
