"""Telemetry windows and the sampling task, with a fake GPU layer and the fake server."""

from __future__ import annotations

import asyncio
import json
from types import SimpleNamespace

import pytest

from engine.events import EventBus, TelemetrySampled
from engine.run.config import RunConfig
from engine.run.engine import Engine
from engine.telemetry.config import TelemetryConfig
from engine.telemetry.gpu import GpuSample, energy_between
from engine.telemetry.host import HostSample
from engine.telemetry.samples import event_from_line
from engine.telemetry.window import Window
from engine.workload.profile import validate_profile
from tests.support.fakeserver import Behaviour, FakeServer

S = 1_000_000_000


def gpu(
    index: int,
    *,
    power: float | None,
    energy_mj: int | None,
    util: float = 50.0,
    mem: float = 1000.0,
) -> GpuSample:
    return GpuSample(
        index=index,
        name="Fake GPU",
        uuid=None,
        utilization_pct=util,
        memory_used_mib=mem,
        memory_total_mib=80_000.0,
        power_w=power,
        power_limit_w=700.0,
        energy_mj=energy_mj,
        temperature_c=40.0,
        sm_clock_mhz=1900.0,
    )


def host(client_cpu_pct: float) -> HostSample:
    return HostSample(
        system_cpu_pct=30.0,
        ram_used_mib=4000.0,
        ram_total_mib=16000.0,
        client_cpu_pct=client_cpu_pct,
        client_rss_mib=None,
        server_pid=None,
        server_cpu_pct=None,
        server_rss_mib=None,
    )


def profile_stub(tokens: int, per_s: float) -> SimpleNamespace:
    return SimpleNamespace(
        output_tokens_total=tokens,
        output_tokens_per_s=per_s,
        ttft_s=SimpleNamespace(p50=0.30),
        itl_s=None,
        e2e_s=None,
    )


def test_energy_from_the_counter_and_per_token_figures():
    window = Window()
    for second, (power, energy) in enumerate([(100.0, 0), (300.0, 250_000), (200.0, 500_000)]):
        window.add_resources(
            second * S,
            (
                gpu(0, power=power, energy_mj=energy, mem=1000 + second),
                gpu(1, power=None, energy_mj=None, mem=500),
            ),
            host(client_cpu_pct=10.0 * second),
        )
    figures = window.figures(profile_stub(tokens=1000, per_s=400.0), energy_between)
    first, second = figures["gpus"]
    assert first["energy_j"] == 500.0  # the counter: 500,000 mJ
    assert second["energy_j"] == 0.0  # no counter, no power: nothing to integrate
    assert figures["energy_j"] == 500.0
    assert figures["joules_per_output_token"] == pytest.approx(0.5)
    assert figures["output_tokens_per_s_per_w"] == pytest.approx(400.0 / 200.0)
    assert figures["gpu_memory_peak_mib_sum"] == 1002 + 500
    assert first["utilization_pct_mean"] == 50.0 and first["power_w_peak"] == 300.0
    assert figures["host"]["client_cpu_pct_peak"] == 20.0
    assert figures["host"]["system_cpu_pct_mean"] == 30.0
    assert figures["host"]["server_cpu_pct_peak"] is None
    assert figures["window_s"] == 2.0


def test_energy_falls_back_to_integrated_power():
    window = Window()
    for second, power in enumerate([100.0, 300.0]):
        window.add_resources(second * S, (gpu(0, power=power, energy_mj=None),), None)
    (only,) = window.figures(None, energy_between)["gpus"]
    assert only["energy_j"] == pytest.approx(200.0)  # trapezoid: (100 + 300) / 2 W x 1 s


class FakeGpus:
    """Two GPUs whose energy counters advance 100 J per reading."""

    def __init__(self) -> None:
        self.readings = 0

    def open(self) -> None:
        return None

    def close(self) -> None:
        pass

    def sample(self) -> tuple[GpuSample, ...]:
        self.readings += 1
        return tuple(gpu(i, power=250.0, energy_mj=self.readings * 100_000) for i in (0, 1))


def test_a_run_with_telemetry_writes_samples_on_the_run_clock(tmp_path):
    profile = validate_profile(
        {"name": "t", "concurrency": 2, "requests": 8, "max_tokens": 20, "warmup_requests": 2},
        "test",
    )
    bus = EventBus()
    seen: list[TelemetrySampled] = []
    bus.subscribe(
        SimpleNamespace(
            handle=lambda e: seen.append(e) if isinstance(e, TelemetrySampled) else None
        )
    )
    with FakeServer(Behaviour(ttft_s=0.05, itl_s=0.02)) as server:
        config = RunConfig(
            url=server.url,
            model="fake-model",
            profiles=[profile],
            results_root=tmp_path,
            telemetry=TelemetryConfig(rate_hz=20, server_url=server.url),
        )
        engine = Engine(config, bus, gpu=FakeGpus())
        summary = asyncio.run(engine.run())
    lines = [
        json.loads(line) for line in (engine.run_dir / "samples.jsonl").read_text().splitlines()
    ]
    assert {line["kind"] for line in lines} == {"gpu", "host"}  # the fake server has no /metrics
    gpu_lines = [line for line in lines if line["kind"] == "gpu"]
    assert {line["index"] for line in gpu_lines} == {0, 1}
    times = [line["t_ns"] for line in lines]
    assert times == sorted(times) and times[0] > 0
    assert len(seen) == len(lines)
    # Each event holds the typed sample; its samples.jsonl line reads back as the same event
    # (what a replay or the live screen's process sees).
    assert all(isinstance(e.sample, GpuSample | HostSample) for e in seen)
    assert [event_from_line(line) for line in lines] == seen
    host_line = next(line for line in lines if line["kind"] == "host")
    assert list(host_line) == [
        "kind",
        "t_ns",
        "system_cpu_pct",
        "ram_used_mib",
        "ram_total_mib",
        "client_cpu_pct",
        "client_rss_mib",
        "server_pid",
        "server_cpu_pct",
        "server_rss_mib",
    ]
    window = summary.profiles[0].telemetry
    assert window is not None and len(window["gpus"]) == 2
    assert window["energy_j"] > 0
    tokens = summary.profiles[0].output_tokens_total
    assert window["joules_per_output_token"] == pytest.approx(window["energy_j"] / tokens)
    assert summary.telemetry["window_s"] >= window["window_s"]


class OllamaLike(FakeServer):
    """The fake server with Ollama's /api/ps (documented shape: models with size_vram)."""

    def add_routes(self, app) -> None:
        from aiohttp import web

        async def ps(_request: web.Request) -> web.Response:
            return web.json_response(
                {"models": [{"name": "qwen3:0.6b", "size": 600 * 2**20, "size_vram": 512 * 2**20}]}
            )

        app.router.add_get("/api/ps", ps)


def test_ollama_loaded_models_and_vram_are_sampled(tmp_path):
    profile = validate_profile(
        {"name": "t", "concurrency": 1, "requests": 4, "max_tokens": 5}, "test"
    )
    bus = EventBus()
    with OllamaLike(Behaviour(itl_s=0.1)) as server:
        config = RunConfig(
            url=server.url,
            model="fake-model",
            profiles=[profile],
            results_root=tmp_path,
            telemetry=TelemetryConfig(rate_hz=10, server_url=server.url, ollama=True),
        )
        engine = Engine(config, bus, gpu=FakeGpus())
        summary = asyncio.run(engine.run())
    window = summary.profiles[0].telemetry
    assert window["server_loaded_models"] == ["qwen3:0.6b"]
    assert window["server_vram_mib_peak"] == 512
    lines = [
        json.loads(line) for line in (engine.run_dir / "samples.jsonl").read_text().splitlines()
    ]
    ps = next(line for line in lines if line["kind"] == "server_ps")
    assert ps == {
        "kind": "server_ps",
        "t_ns": ps["t_ns"],
        "models": [{"name": "qwen3:0.6b", "size_mib": 600.0, "vram_mib": 512.0}],
        "vram_mib_total": 512.0,
    }


def test_a_samples_line_reads_back_as_its_typed_sample_or_not_at_all():
    from engine.telemetry.gpu import GpuProcess
    from engine.telemetry.samples import parse_sample

    sample = gpu(0, power=250.0, energy_mj=7)
    sample = GpuSample(**{**sample.as_dict(), "processes": (GpuProcess(42, "llama", 512.0),)})
    line = json.loads(json.dumps({"kind": "gpu", "t_ns": 5, **sample.as_dict()}))
    event = event_from_line(line)
    assert event is not None and event.sample == sample and event.t_ns == 5
    assert event.sample.processes[0].name == "llama"
    # Another version's kind, a damaged line, a line without its clock: skipped, not a crash.
    assert parse_sample("gpu_v2", line) is None
    assert parse_sample("gpu", {"index": 0}) is None
    assert parse_sample("gpu", {**line, "processes": "x"}) is None
    assert event_from_line({k: v for k, v in line.items() if k != "t_ns"}) is None
