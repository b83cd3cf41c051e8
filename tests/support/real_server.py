"""The real llama.cpp server for integration tests (built by `llmtop setup-local`).

Tests that use it fail, rather than skip, when it is missing: CI builds it first
(scripts/bootstrap), and a silently skipped real-server test would prove nothing.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from engine.servers.llamacpp_build import read_manifest
from engine.servers.process import ServerProcess, llama_server

MODEL = "gemma-3-270m"


def start_llama_server(log_dir: Path, parallel: int = 4) -> ServerProcess:
    if read_manifest() is None:
        pytest.fail("llama-server is not built: run `llmtop setup-local` (scripts/bootstrap does)")
    server = llama_server(log_dir / "server.log", parallel=parallel, ctx_size=4096)
    server.start(ready_timeout_s=60)
    return server


@pytest.fixture(scope="module")
def real_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    server = start_llama_server(tmp_path_factory.mktemp("llama"))
    try:
        yield server
    finally:
        server.stop()
