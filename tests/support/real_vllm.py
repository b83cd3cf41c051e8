"""The real vLLM server for the ``real_vllm`` tests (set up by ``scripts/setup-vllm``).

One server per test module (today one module uses it, so one per session): vLLM takes ~35-40 s
to start on an idle box here even with ``--enforce-eager`` (without it, ~95 s: it recompiles
on every start), 50-90 s on a busy one. Not session-scoped: it holds 5.5 GB of RAM, which
the rest of the suite on this shared 24 GB machine should get back as soon as its tests end.

Its tests skip, saying how to set it up, when the set-up has not been done; ``.ci/run`` does
it and sets ``LLMTOP_REQUIRE_VLLM=1``, which turns that skip into a failure, since a silently
skipped real-server test would prove nothing.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from engine.servers.process import ServerProcess, free_port
from tests.support import vllm_setup

MODEL = "gemma3-270m"
"""The name the server serves the model under (``--served-model-name``)."""
MAX_NUM_SEQS = 4
"""Requests vLLM runs at once: more than this in flight makes ``num_requests_waiting`` > 0."""
READY_TIMEOUT_S = 300.0
"""Start-up is 35-40 s on an idle 2-core box; four other engineers share it."""
ENV = {
    # Offline: the model is a local folder, and these machines reach no model hub.
    "HF_HUB_OFFLINE": "1",
    "TRANSFORMERS_OFFLINE": "1",
    "VLLM_NO_USAGE_STATS": "1",
    # GiB of RAM for the KV cache: 1 GiB holds far more than the tests' few short requests.
    "VLLM_CPU_KVCACHE_SPACE": "1",
}


def vllm_server(manifest: dict[str, str], log_path: Path) -> ServerProcess:
    """vLLM's OpenAI server on a free port of 127.0.0.1, not yet started."""
    port = free_port()
    # `env` execs the server, so the PID and process group stay the server's own.
    argv = [
        "env",
        *(f"{name}={value}" for name, value in ENV.items()),
        manifest["python"],
        "-m",
        "vllm.entrypoints.openai.api_server",
        "--model",
        manifest["model"],
        "--served-model-name",
        MODEL,
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--dtype",
        "bfloat16",
        "--max-model-len",
        "2048",
        "--max-num-seqs",
        str(MAX_NUM_SEQS),
        # Starts in ~35 s instead of ~95 s, at ~16 instead of ~19 tok/s.
        "--enforce-eager",
        # usage.prompt_tokens_details.cached_tokens: prefix-cache hits per request.
        "--enable-prompt-tokens-details",
    ]
    return ServerProcess(argv, f"http://127.0.0.1:{port}", log_path)


def stop_all(server: ServerProcess) -> None:
    """Stop the server and every process it started (vLLM runs ~4), then check none is left."""
    family = []
    if server.pid is not None:
        try:
            family = [psutil.Process(server.pid), *psutil.Process(server.pid).children(True)]
        except psutil.NoSuchProcess:
            family = []
    server.stop(grace_s=20)
    _gone, alive = psutil.wait_procs(family, timeout=10)
    for process in alive:
        process.kill()


@pytest.fixture(scope="module")
def real_vllm(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """The running vLLM server; its log is ``server.log`` in a session temp folder."""
    manifest = vllm_setup.read_manifest()
    if manifest is None:
        reason = "vLLM is not set up: run scripts/setup-vllm (3-5 minutes, once)"
        if os.environ.get("LLMTOP_REQUIRE_VLLM"):
            pytest.fail(reason)
        pytest.skip(reason)
    server = vllm_server(manifest, tmp_path_factory.mktemp("vllm") / "server.log")
    try:
        server.start(ready_timeout_s=READY_TIMEOUT_S)
        yield server
    finally:
        stop_all(server)
