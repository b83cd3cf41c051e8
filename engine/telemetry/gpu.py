"""GPU telemetry through NVML: one immutable snapshot per GPU per tick.

Each field is queried on its own, as nvitop's ``nvmlQuery(..., default=NA)`` does: a GPU or
driver that does not support one query (power on many consumer boards, processes inside a
container) gives ``None`` for that field and every other field still comes back. NVML calls
block for microseconds to milliseconds, so ``GpuSampler.sample`` is meant to run through
``asyncio.to_thread``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

MIB = 1024 * 1024
NO_GPU = "GPU figures are skipped"
"""How every notice saying there is no GPU to sample ends (the UI keys its GPU pane on it)."""
# Members of NVML's value union, in the order of its nvmlValueType_t codes.
_VALUE_MEMBERS = ("dVal", "uiVal", "ulVal", "ullVal", "sllVal", "siVal", "usVal")
# Errors from nvmlInit that mean "no usable driver here" rather than "something broke".
_NO_DRIVER_ERRORS = ("NVMLError_LibraryNotFound", "NVMLError_DriverNotLoaded")


@dataclass(frozen=True, slots=True)
class GpuProcess:
    """A process holding a context on a GPU.

    Attributes:
        pid: Process id as NVML reports it (the host's pid namespace).
        name: Process name from psutil; ``None`` when it cannot be read (other container).
        used_memory_mib: GPU memory the process holds; ``None`` where NVML cannot tell.

    """

    pid: int
    name: str | None
    used_memory_mib: float | None


@dataclass(frozen=True, slots=True)
class GpuSample:
    """One GPU at one instant; every figure is ``None`` when NVML could not give it.

    Attributes:
        index: NVML device index.
        name: Product name, e.g. ``NVIDIA H100 80GB HBM3``.
        uuid: ``GPU-...`` identifier, stable across index reordering.
        utilization_pct: Percent of the last sample period a kernel was running.
        memory_used_mib: Device memory in use.
        memory_total_mib: Device memory installed.
        power_w: Instantaneous board power where supported, else NVML's averaged reading.
        power_limit_w: Enforced power limit.
        energy_mj: Energy counter in millijoules since the driver was loaded.
        temperature_c: Core temperature in degrees Celsius.
        sm_clock_mhz: Current SM clock.
        processes: Compute and graphics processes on the GPU (empty if unknown).

    """

    index: int
    name: str | None
    uuid: str | None
    utilization_pct: float | None
    memory_used_mib: float | None
    memory_total_mib: float | None
    power_w: float | None
    power_limit_w: float | None
    energy_mj: int | None
    temperature_c: float | None
    sm_clock_mhz: float | None
    processes: tuple[GpuProcess, ...] = ()

    def as_dict(self) -> dict[str, Any]:
        """The sample as plain JSON-ready types (processes as a list of dicts)."""
        return dataclasses.asdict(self)


class GpuSampler:
    """Reads every GPU NVML sees; without a driver it stays unavailable and samples nothing.

    Args:
        nvml: The NVML binding; the real ``pynvml`` module unless a test injects a fake with
            the same function names, constants and ``NVMLError`` class.

    """

    def __init__(self, nvml: Any = None) -> None:
        if nvml is None:
            import pynvml

            nvml = pynvml
        self._nvml = nvml
        self._handles: list[tuple[int, object]] = []
        """Device index and NVML's opaque handle for it."""
        self._initialised = False

    @property
    def available(self) -> bool:
        """Whether NVML started and sees at least one GPU."""
        return bool(self._handles)

    @property
    def count(self) -> int:
        """Number of GPUs that will be sampled."""
        return len(self._handles)

    def open(self) -> str | None:
        """Start NVML and look up every device handle once.

        Returns:
            ``None`` on success, otherwise one sentence saying why GPU figures are skipped.
            Never raises.

        """
        try:
            self._nvml.nvmlInit()
        except Exception as error:  # any failure here only means "no GPU figures", never a crash
            return _init_notice(error)
        self._initialised = True
        for index in range(self._query("nvmlDeviceGetCount") or 0):
            handle = self._query("nvmlDeviceGetHandleByIndex", index)
            if handle is not None:
                self._handles.append((index, handle))
        if not self._handles:
            self.close()
            return f"NVML sees no usable GPU: {NO_GPU}"
        return None

    def close(self) -> None:
        """Shut NVML down; safe to call twice or after a failed ``open``."""
        self._handles = []
        if self._initialised:
            self._initialised = False
            self._query("nvmlShutdown")

    def sample(self) -> tuple[GpuSample, ...]:
        """One snapshot of every GPU; ``()`` when unavailable.

        Blocks on NVML: call it through ``asyncio.to_thread`` from the event loop.
        """
        return tuple(self._sample_one(index, handle) for index, handle in self._handles)

    def _sample_one(self, index: int, handle: object) -> GpuSample:
        nvml = self._nvml
        memory = self._query("nvmlDeviceGetMemoryInfo", handle)
        utilization = self._query("nvmlDeviceGetUtilizationRates", handle)
        return GpuSample(
            index=index,
            name=_text(self._query("nvmlDeviceGetName", handle)),
            uuid=_text(self._query("nvmlDeviceGetUUID", handle)),
            utilization_pct=_scaled(getattr(utilization, "gpu", None), 1),
            memory_used_mib=_scaled(getattr(memory, "used", None), MIB),
            memory_total_mib=_scaled(getattr(memory, "total", None), MIB),
            power_w=self._power_w(handle),
            power_limit_w=_scaled(self._query("nvmlDeviceGetEnforcedPowerLimit", handle), 1000),
            energy_mj=self._query("nvmlDeviceGetTotalEnergyConsumption", handle),
            temperature_c=_scaled(
                self._query("nvmlDeviceGetTemperature", handle, nvml.NVML_TEMPERATURE_GPU), 1
            ),
            sm_clock_mhz=_scaled(
                self._query("nvmlDeviceGetClockInfo", handle, nvml.NVML_CLOCK_SM), 1
            ),
            processes=self._processes(handle),
        )

    def _query(self, function: str, *args: object) -> Any:
        """Call one NVML function; ``None`` if it fails or this binding lacks it (the binding is
        untyped: what comes back is whatever NVML's ctypes wrapper returns).
        """
        call: Callable[..., Any] | None = getattr(self._nvml, function, None)
        if call is None:
            return None
        try:
            return call(*args)
        except self._nvml.NVMLError:
            return None

    def _power_w(self, handle: object) -> float | None:
        # nvmlDeviceGetPowerUsage is a one-second average on recent GPUs, which hides the
        # swings between prefill and decode; the instant field (driver 530+) does not.
        field = getattr(self._nvml, "NVML_FI_DEV_POWER_INSTANT", None)
        values = self._query("nvmlDeviceGetFieldValues", handle, [field]) if field else None
        instant_mw = _field_number(values[0]) if values else None
        if instant_mw is not None:
            return instant_mw / 1000
        return _scaled(self._query("nvmlDeviceGetPowerUsage", handle), 1000)

    def _processes(self, handle: object) -> tuple[GpuProcess, ...]:
        found: dict[int, GpuProcess] = {}
        for function in (
            "nvmlDeviceGetComputeRunningProcesses",
            "nvmlDeviceGetGraphicsRunningProcesses",
        ):
            for info in self._query(function, handle) or ():
                if info.pid not in found:
                    found[info.pid] = GpuProcess(
                        pid=int(info.pid),
                        name=_process_name(info.pid),
                        used_memory_mib=_scaled(info.usedGpuMemory, MIB),
                    )
        return tuple(found.values())


def energy_between(first: GpuSample, last: GpuSample) -> float | None:
    """Joules one GPU used between two of its samples: (last.energy_mj - first.energy_mj) / 1000.

    Returns:
        ``None`` when either counter is missing or the counter went backwards (driver reload).

    """
    return energy_j(first.energy_mj, last.energy_mj)


def energy_j(first_mj: float | None, last_mj: float | None) -> float | None:
    """Joules between two readings of NVML's total-energy counter (millijoules); ``None``
    when either is missing or the counter went backwards (driver reload).
    """
    if first_mj is None or last_mj is None or last_mj < first_mj:
        return None
    return (last_mj - first_mj) / 1000


_COLUMNS = (
    "index",
    "name",
    "utilization [%]",
    "memory.used [MiB]",
    "memory.total [MiB]",
    "power.draw [W]",
    "temperature [C]",
)


def snapshot_lines(samples: Iterable[GpuSample]) -> list[str]:
    """A plain-text table of the GPUs, one line per GPU after a header; ``-`` marks no value."""
    rows = [_COLUMNS] + [
        (
            str(s.index),
            s.name or "-",
            _number(s.utilization_pct, 0),
            _number(s.memory_used_mib, 0),
            _number(s.memory_total_mib, 0),
            _number(s.power_w, 1),
            _number(s.temperature_c, 0),
        )
        for s in samples
    ]
    widths = [max(len(row[column]) for row in rows) for column in range(len(_COLUMNS))]
    return [
        "  ".join(
            cell.ljust(width) if column == 1 else cell.rjust(width)
            for column, (cell, width) in enumerate(zip(row, widths))
        ).rstrip()
        for row in rows
    ]


def _init_notice(error: BaseException) -> str:
    reason = str(error) or type(error).__name__
    if type(error).__name__ in _NO_DRIVER_ERRORS or isinstance(error, OSError):
        return f"no NVIDIA driver found (NVML: {reason}): {NO_GPU}"
    return f"NVML could not start ({reason}): {NO_GPU}"


def _field_number(field: Any) -> float | None:
    if field.nvmlReturn != 0 or not 0 <= field.valueType < len(_VALUE_MEMBERS):  # 0: success
        return None
    return float(getattr(field.value, _VALUE_MEMBERS[field.valueType]))


def _scaled(value: float | None, divisor: float) -> float | None:
    return None if value is None else value / divisor


def _text(value: object) -> str | None:
    if isinstance(value, bytes):
        return value.decode(errors="replace")
    return value if isinstance(value, str) else None


def _number(value: float | None, decimals: int) -> str:
    return "-" if value is None else f"{value:.{decimals}f}"


def _process_name(pid: int) -> str | None:
    try:
        import psutil
    except ImportError:
        return None
    try:
        return psutil.Process(pid).name()
    except psutil.Error:
        return None
