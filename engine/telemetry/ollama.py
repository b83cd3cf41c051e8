"""Ollama's ``/api/ps``: the models it holds loaded and the memory they take.

Ollama exports no Prometheus ``/metrics``; ``/api/ps`` is how its VRAM use is seen. Each reading
is a ``server_ps`` line in ``samples.jsonl``.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

MIB = 1024 * 1024


@dataclass(frozen=True, slots=True)
class LoadedModel:
    """One model Ollama holds in memory."""

    name: str | None
    """Model name as Ollama reports it (``None`` if it gave none)."""
    size_mib: float
    """Memory the model takes, in RAM and VRAM together."""
    vram_mib: float
    """Part of ``size_mib`` held in GPU memory."""


@dataclass(frozen=True, slots=True)
class LoadedModels:
    """One reading of ``/api/ps``."""

    models: tuple[LoadedModel, ...]
    """Every loaded model, in Ollama's order."""
    vram_mib_total: float
    """VRAM all of them hold."""

    def as_dict(self) -> dict[str, Any]:
        """The reading as plain JSON-ready types (models as a list of dicts)."""
        return dataclasses.asdict(self)


def loaded_models(models: list[Any]) -> LoadedModels:
    """Read the ``models`` list of an ``/api/ps`` answer; entries that are not objects are
    skipped, and a size that is not a number counts as 0.
    """
    loaded = tuple(
        LoadedModel(
            name=m.get("name") if isinstance(m.get("name"), str) else None,
            size_mib=_mib(m.get("size")),
            vram_mib=_mib(m.get("size_vram")),
        )
        for m in models
        if isinstance(m, dict)
    )
    return LoadedModels(loaded, sum(m.vram_mib for m in loaded))


def _mib(value: object) -> float:
    return value / MIB if isinstance(value, int | float) else 0.0
