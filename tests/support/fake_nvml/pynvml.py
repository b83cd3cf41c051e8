"""A stand-in for ``pynvml`` with eight busy H100s, to see the live screen on an 8-GPU box
without one: ``PYTHONPATH=tests/support/fake_nvml llmtop run --url ...`` (the engine's child
process inherits the path and imports this instead of the real binding).

The GPUs' figures move with the clock (a slow wave per GPU), not with the load llmtop sends:
they show the screen, they measure nothing. ``LLMTOP_FAKE_GPUS`` sets how many (default 8).
"""

from __future__ import annotations

import math
import os
import time
from types import SimpleNamespace

NVML_TEMPERATURE_GPU = 0
NVML_CLOCK_SM = 1
_MIB = 1024 * 1024
_STARTED = time.monotonic()


class NVMLError(Exception):
    """pynvml's error base (nothing here raises it)."""


def _load(handle: int) -> float:
    """0..1: each GPU's own slow wave, a little apart from its neighbours."""
    t = time.monotonic() - _STARTED
    return 0.55 + 0.4 * math.sin(t / 20 + handle * 0.7)


def nvmlInit() -> None:  # noqa: N802 - pynvml's names
    pass


def nvmlShutdown() -> None:  # noqa: N802
    pass


def nvmlDeviceGetCount() -> int:  # noqa: N802
    return int(os.environ.get("LLMTOP_FAKE_GPUS", "8"))


def nvmlDeviceGetHandleByIndex(index: int) -> int:  # noqa: N802
    return index


def nvmlDeviceGetName(handle: int) -> str:  # noqa: N802
    return "NVIDIA H100 80GB HBM3 (fake)"


def nvmlDeviceGetUUID(handle: int) -> str:  # noqa: N802
    return f"GPU-fake-{handle:04d}"


def nvmlDeviceGetUtilizationRates(handle: int) -> SimpleNamespace:  # noqa: N802
    return SimpleNamespace(gpu=round(100 * _load(handle)), memory=40)


def nvmlDeviceGetMemoryInfo(handle: int) -> SimpleNamespace:  # noqa: N802
    total = 81_559 * _MIB
    return SimpleNamespace(total=total, used=int(total * (0.86 + 0.02 * handle / 8)))


def nvmlDeviceGetPowerUsage(handle: int) -> int:  # noqa: N802
    return int(1000 * (90 + 560 * _load(handle)))  # milliwatts


def nvmlDeviceGetEnforcedPowerLimit(handle: int) -> int:  # noqa: N802
    return 700_000


def nvmlDeviceGetTotalEnergyConsumption(handle: int) -> int:  # noqa: N802
    return int((time.monotonic() - _STARTED) * 400_000)  # millijoules, ~400 W


def nvmlDeviceGetTemperature(handle: int, sensor: int) -> int:  # noqa: N802
    return round(38 + 35 * _load(handle))


def nvmlDeviceGetClockInfo(handle: int, clock: int) -> int:  # noqa: N802
    return 1980
