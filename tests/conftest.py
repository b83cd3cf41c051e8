"""Shared fixtures: a fake OpenAI server per test and a helper that runs the engine against it."""

from __future__ import annotations

import asyncio
import gc
import json
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from engine.events import EventBus
from engine.metrics.summary import RunSummary
from engine.results.layout import REQUESTS_FILE
from engine.run.config import RunConfig
from engine.run.engine import Engine
from engine.workload.profile import Profile
from tests.support.fakeserver import Behaviour, FakeServer

pytest_plugins = ["tests.support.real_server", "tests.support.real_vllm"]
"""The real-server fixtures, for every test that asks for ``real_server`` or ``real_vllm``."""

MODEL = "fake-model"


@dataclass
class RunResult:
    """What a test inspects after a run: the summary, the records on disk, the engine."""

    summary: RunSummary
    engine: Engine
    run_dir: Path
    wall_s: float
    records: list[dict[str, Any]] = field(default_factory=list)

    @property
    def profile(self) -> Any:
        """The first profile's summary."""
        return self.summary.profiles[0]


RunEngine = Callable[..., RunResult]


@pytest.fixture
def fake_server() -> Iterator[FakeServer]:
    """A fake server with default behaviour; tests set ``fake_server.behaviour`` fields."""
    with FakeServer(Behaviour()) as server:
        yield server


@pytest.fixture
def run_engine(tmp_path: Path) -> RunEngine:
    """Run the engine synchronously: ``run_engine(url, profile_or_profiles, **RunConfig fields)``.

    ``bus`` passes an ``EventBus``; ``during`` is an async callable given the engine and run
    beside it (for interrupts). The run is bounded by ``limit_s`` (default 30 s). ``uvloop``
    runs it on uvloop, as ``llmtop run`` does (the default loop otherwise).
    """

    def run(
        url: str,
        profiles: Profile | list[Profile],
        *,
        bus: EventBus | None = None,
        during: Callable[[Engine], Awaitable[None]] | None = None,
        limit_s: float = 30.0,
        uvloop: bool = False,
        **config: Any,
    ) -> RunResult:
        cfg = RunConfig(
            url=url,
            model=MODEL,
            profiles=profiles if isinstance(profiles, list) else [profiles],
            results_root=tmp_path,
            **config,
        )
        engine = Engine(cfg, bus=bus)

        async def main() -> RunSummary:
            side = asyncio.create_task(during(engine)) if during else None
            try:
                return await asyncio.wait_for(engine.run(), limit_s)
            finally:
                if side is not None:
                    side.cancel()

        # Objects left by earlier tests are moved out of the collector's reach for the run: a
        # full collection over a long session's heap stalls both loops for ~40 ms, a test
        # artefact that a fresh llmtop process does not have.
        gc.collect()
        gc.freeze()
        started = time.perf_counter()
        try:
            if uvloop:  # as llmtop run drives the engine
                import uvloop as uv

                summary = uv.run(main())
            else:
                summary = asyncio.run(main())
        finally:
            wall = time.perf_counter() - started
            gc.unfreeze()
        lines = (engine.run_dir / REQUESTS_FILE).read_text().splitlines()
        return RunResult(summary, engine, engine.run_dir, wall, [json.loads(x) for x in lines])

    return run


@pytest.fixture(autouse=True)
def _no_base_url_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tests that mean the embedded server leave out ``--url``: an ``$OPENAI_BASE_URL`` set
    for other tools must not send them (and their load) elsewhere."""
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    monkeypatch.delenv("OPENAI_API_BASE", raising=False)
