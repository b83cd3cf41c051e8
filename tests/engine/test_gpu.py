"""GPU telemetry against a fake NVML with two GPUs, plus the real binding on this machine."""

from __future__ import annotations

import json
import os
from types import SimpleNamespace

import pytest

from engine.telemetry.gpu import GpuSample, GpuSampler, energy_between, snapshot_lines

MIB = 1024 * 1024


class FakeNVMLError(Exception):
    pass


class FakeLibraryNotFound(FakeNVMLError):
    pass


# pynvml names its subclasses this way; the notice keys on the name.
FakeLibraryNotFound.__name__ = "NVMLError_LibraryNotFound"


class FakeNvml:
    """The subset of pynvml that GpuSampler calls; ``failing`` names functions that raise."""

    NVMLError = FakeNVMLError
    NVML_SUCCESS = 0
    NVML_TEMPERATURE_GPU = 0
    NVML_CLOCK_SM = 1
    NVML_FI_DEV_POWER_INSTANT = 186

    def __init__(
        self,
        failing: set[str] = frozenset(),
        init_error: Exception | None = None,
        instant_power: bool = True,
    ) -> None:
        self.failing = failing
        self.init_error = init_error
        self.instant_power = instant_power
        self.shutdowns = 0

    def _check(self, name: str) -> None:
        if name in self.failing:
            raise FakeNVMLError(f"{name}: Not Supported")

    def nvmlInit(self) -> None:
        if self.init_error:
            raise self.init_error

    def nvmlShutdown(self) -> None:
        self.shutdowns += 1

    def nvmlDeviceGetCount(self) -> int:
        return 2

    def nvmlDeviceGetHandleByIndex(self, index: int) -> int:
        return index

    def nvmlDeviceGetName(self, handle: int) -> str | bytes:
        self._check("name")
        return "NVIDIA H100 80GB HBM3" if handle == 0 else b"NVIDIA H200"

    def nvmlDeviceGetUUID(self, handle: int) -> str:
        return f"GPU-{handle:04d}"

    def nvmlDeviceGetUtilizationRates(self, handle: int) -> SimpleNamespace:
        return SimpleNamespace(gpu=87 + handle, memory=40)

    def nvmlDeviceGetMemoryInfo(self, handle: int) -> SimpleNamespace:
        return SimpleNamespace(used=(1024 + handle) * MIB, total=81559 * MIB, free=0)

    def nvmlDeviceGetFieldValues(self, handle: int, fields: list[int]) -> list[SimpleNamespace]:
        self._check("power")
        status = 0 if self.instant_power else 3
        value = SimpleNamespace(uiVal=412_345 + handle * 1000, dVal=0.0)
        return [SimpleNamespace(fieldId=fields[0], nvmlReturn=status, valueType=1, value=value)]

    def nvmlDeviceGetPowerUsage(self, handle: int) -> int:
        self._check("power")
        return 350_000

    def nvmlDeviceGetEnforcedPowerLimit(self, handle: int) -> int:
        return 700_000

    def nvmlDeviceGetTotalEnergyConsumption(self, handle: int) -> int:
        return 123_456_789

    def nvmlDeviceGetTemperature(self, handle: int, sensor: int) -> int:
        assert sensor == self.NVML_TEMPERATURE_GPU
        return 61

    def nvmlDeviceGetClockInfo(self, handle: int, clock: int) -> int:
        assert clock == self.NVML_CLOCK_SM
        return 1980

    def nvmlDeviceGetComputeRunningProcesses(self, handle: int) -> list[SimpleNamespace]:
        self._check("processes")
        if handle:
            return []
        return [
            SimpleNamespace(pid=os.getpid(), usedGpuMemory=2048 * MIB),
            SimpleNamespace(pid=2**22 + 7, usedGpuMemory=None),
        ]  # beyond pid_max: no name

    def nvmlDeviceGetGraphicsRunningProcesses(self, handle: int) -> list[SimpleNamespace]:
        self._check("processes")
        return [SimpleNamespace(pid=os.getpid(), usedGpuMemory=2048 * MIB)] if not handle else []


def opened(nvml: FakeNvml) -> GpuSampler:
    sampler = GpuSampler(nvml)
    assert sampler.open() is None
    return sampler


def test_values_are_converted_to_units() -> None:
    sampler = opened(FakeNvml())
    assert sampler.available and sampler.count == 2
    first, second = sampler.sample()
    assert first.index == 0 and first.name == "NVIDIA H100 80GB HBM3" and first.uuid == "GPU-0000"
    assert second.name == "NVIDIA H200"  # bytes from an old binding are decoded
    assert first.utilization_pct == 87.0
    assert first.memory_used_mib == 1024.0 and second.memory_used_mib == 1025.0
    assert first.memory_total_mib == 81559.0
    assert first.power_w == pytest.approx(412.345) and second.power_w == pytest.approx(413.345)
    assert first.power_limit_w == 700.0
    assert first.energy_mj == 123_456_789
    assert first.temperature_c == 61.0 and first.sm_clock_mhz == 1980.0


def test_averaged_power_when_the_instant_field_is_unsupported() -> None:
    (first, _) = opened(FakeNvml(instant_power=False)).sample()
    assert first.power_w == 350.0


def test_one_failing_field_gives_none_for_that_field_only() -> None:
    first, second = opened(FakeNvml(failing={"power", "name"})).sample()
    assert first.power_w is None and second.power_w is None
    assert first.name is None
    assert first.power_limit_w == 700.0 and first.memory_used_mib == 1024.0
    assert first.temperature_c == 61.0 and first.uuid == "GPU-0000"


def test_processes_are_listed_once_with_names_where_readable() -> None:
    first, second = opened(FakeNvml()).sample()
    own, unknown = first.processes
    assert own.pid == os.getpid() and own.name and own.used_memory_mib == 2048.0
    assert unknown.name is None and unknown.used_memory_mib is None
    assert second.processes == ()
    assert opened(FakeNvml(failing={"processes"})).sample()[0].processes == ()


def test_failed_init_gives_one_notice_and_no_samples() -> None:
    nvml = FakeNvml(init_error=FakeLibraryNotFound("NVML Shared Library Not Found"))
    sampler = GpuSampler(nvml)
    notice = sampler.open()
    assert notice == (
        "no NVIDIA driver found (NVML: NVML Shared Library Not Found): GPU figures are skipped"
    )
    assert not sampler.available and sampler.count == 0
    assert sampler.sample() == ()
    sampler.close()
    assert nvml.shutdowns == 0


def test_other_init_failures_still_give_a_notice() -> None:
    notice = GpuSampler(FakeNvml(init_error=FakeNVMLError("Insufficient Permissions"))).open()
    assert notice == "NVML could not start (Insufficient Permissions): GPU figures are skipped"


def test_close_shuts_nvml_down_once() -> None:
    nvml = FakeNvml()
    sampler = opened(nvml)
    sampler.close()
    sampler.close()
    assert nvml.shutdowns == 1 and sampler.sample() == ()


def test_as_dict_is_json_ready() -> None:
    first = opened(FakeNvml()).sample()[0]
    data = json.loads(json.dumps(first.as_dict()))
    assert data["power_limit_w"] == 700.0
    assert data["processes"][0] == {
        "pid": os.getpid(),
        "name": first.processes[0].name,
        "used_memory_mib": 2048.0,
    }


def sample_with_energy(energy_mj: int | None, **fields: object) -> GpuSample:
    values: dict[str, object] = dict(
        index=0,
        name="GPU",
        uuid=None,
        utilization_pct=None,
        memory_used_mib=None,
        memory_total_mib=None,
        power_w=None,
        power_limit_w=None,
        energy_mj=energy_mj,
        temperature_c=None,
        sm_clock_mhz=None,
    )
    values.update(fields)
    return GpuSample(**values)  # type: ignore[arg-type]


def test_energy_between_gives_joules() -> None:
    assert energy_between(sample_with_energy(1_000_000), sample_with_energy(1_250_500)) == 250.5
    assert energy_between(sample_with_energy(5), sample_with_energy(5)) == 0.0


def test_energy_between_handles_reset_and_missing_counters() -> None:
    assert energy_between(sample_with_energy(9_000), sample_with_energy(10)) is None
    assert energy_between(sample_with_energy(None), sample_with_energy(10)) is None
    assert energy_between(sample_with_energy(10), sample_with_energy(None)) is None


def test_snapshot_lines_table() -> None:
    samples = opened(FakeNvml()).sample()
    blank = sample_with_energy(None, index=2, name=None)
    lines = snapshot_lines([*samples, blank])
    assert lines == [
        "index  name                   utilization [%]  memory.used [MiB]  memory.total [MiB]"
        "  power.draw [W]  temperature [C]",
        "    0  NVIDIA H100 80GB HBM3               87               1024               81559"
        "           412.3               61",
        "    1  NVIDIA H200                         88               1025               81559"
        "           413.3               61",
        "    2  -                                    -                  -                   -"
        "               -                -",
    ]
    assert snapshot_lines([]) == [
        "index  name  utilization [%]  memory.used [MiB]"
        "  memory.total [MiB]  power.draw [W]  temperature [C]"
    ]


def test_real_nvml_never_raises() -> None:
    sampler = GpuSampler()
    notice = sampler.open()
    try:
        if notice is None:  # a machine with a driver
            assert sampler.available and len(sampler.sample()) == sampler.count
        else:
            assert notice.endswith(": GPU figures are skipped") and "NVML" in notice
            assert not sampler.available and sampler.sample() == ()
    finally:
        sampler.close()
