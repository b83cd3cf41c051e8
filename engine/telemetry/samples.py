"""The typed telemetry readings, their kinds, and the way back from a ``samples.jsonl`` line.

The sampler publishes each reading as a ``TelemetrySampled`` event holding the typed sample
and writes it as one JSON line; a replay or a screen in another process reads the line back
with ``parse_sample`` and gets the same typed object, so every consumer reads attributes,
never dictionary keys.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from enum import StrEnum
from typing import Any

from engine.events import TelemetrySampled
from engine.telemetry.gpu import GpuProcess, GpuSample
from engine.telemetry.host import HostSample
from engine.telemetry.ollama import LoadedModel, LoadedModels
from engine.telemetry.server_metrics import ServerMetricsSample


class SampleKind(StrEnum):
    """What a ``samples.jsonl`` line (and its ``TelemetrySampled`` event) holds."""

    GPU = "gpu"
    """A ``GpuSample``: one GPU."""
    HOST = "host"
    """A ``HostSample``: the machine, llmtop and a local server's processes."""
    SERVER_METRICS = "server_metrics"
    """A ``ServerMetricsSample``: one scrape of the server's ``/metrics``."""
    SERVER_PS = "server_ps"
    """A ``LoadedModels``: one reading of Ollama's ``/api/ps``."""


Sample = GpuSample | HostSample | ServerMetricsSample | LoadedModels
"""Any one telemetry reading."""

_TYPES: dict[SampleKind, type[Sample]] = {
    SampleKind.GPU: GpuSample,
    SampleKind.HOST: HostSample,
    SampleKind.SERVER_METRICS: ServerMetricsSample,
    SampleKind.SERVER_PS: LoadedModels,
}
_NESTED: dict[tuple[type[Sample], str], type[Any]] = {
    (GpuSample, "processes"): GpuProcess,
    (LoadedModels, "models"): LoadedModel,
}
"""Fields that hold a tuple of records, and the record type of their items."""


def parse_sample(kind: object, data: Mapping[str, Any]) -> Sample | None:
    """A ``samples.jsonl`` line (without ``kind`` and ``t_ns``) as its typed sample.

    ``None`` for a kind this llmtop does not know or a line that does not fit its type (a
    damaged file, another version's line): readers skip it, as they skip a bad record.
    Fields the type does not have are ignored; missing ones take their defaults.
    """
    try:
        cls = _TYPES[SampleKind(str(kind))]
    except ValueError:
        return None
    values: dict[str, Any] = {}
    for field in dataclasses.fields(cls):
        if field.name not in data:
            continue
        value = data[field.name]
        item_type = _NESTED.get((cls, field.name))
        if item_type is not None:
            if not isinstance(value, list | tuple):
                return None
            try:
                value = tuple(item_type(**item) for item in value)
            except TypeError:
                return None
        values[field.name] = value
    try:
        return cls(**values)
    except TypeError:
        return None


def event_from_line(line: Mapping[str, Any]) -> TelemetrySampled | None:
    """A whole ``samples.jsonl`` line (``kind``, ``t_ns`` and the sample's fields) as the
    event the run published for it; ``None`` for a line that is not a known sample.
    """
    kind, t_ns = line.get("kind"), line.get("t_ns")
    if not isinstance(t_ns, int):
        return None
    sample = parse_sample(kind, line)
    if sample is None:
        return None
    return TelemetrySampled(SampleKind(str(kind)), t_ns, sample)
