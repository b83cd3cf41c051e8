"""Where the server URL comes from, as in OpenAI's clients: ``--url``, else ``$OPENAI_BASE_URL``,
else ``$OPENAI_API_BASE``; a base URL with or without ``/v1``."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.fakeserver import FakeServer

LLMTOP = Path(sys.executable).parent / "llmtop"
DEAD = "http://127.0.0.1:9"
"""Nothing listens on the discard port: a run sent there would fail."""


def run(tmp_path: Path, *args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    argv = [LLMTOP, "run", "--requests", "2", "--max-tokens", "3", "--warmup", "0", "--no-ui"]
    return subprocess.run(
        [*argv, "--output", str(tmp_path), *args],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
        env={**os.environ, **env},
    )


def recorded_url(tmp_path: Path) -> str:
    (run_dir,) = [p for p in tmp_path.iterdir() if p.is_dir()]
    return json.loads((run_dir / "run.json").read_text())["options"]["url"]


@pytest.mark.parametrize("variable", ["OPENAI_BASE_URL", "OPENAI_API_BASE"])
def test_an_openai_base_url_variable_is_the_default_server(tmp_path, fake_server, variable):
    result = run(tmp_path, env={variable: f"{fake_server.url}/v1"})
    assert result.returncode == 0, result.stderr
    assert f"llmtop: server URL from ${variable}" in result.stderr
    assert recorded_url(tmp_path) == fake_server.url


def test_openai_base_url_comes_before_openai_api_base(tmp_path, fake_server):
    env = {"OPENAI_BASE_URL": fake_server.url, "OPENAI_API_BASE": DEAD}
    assert run(tmp_path, env=env).returncode == 0
    assert recorded_url(tmp_path) == fake_server.url


@pytest.mark.parametrize("suffix", ["", "/", "/v1", "/v1/"])
def test_url_is_a_base_with_or_without_v1_and_beats_the_variables(tmp_path, suffix):
    with FakeServer() as server:
        env = {"OPENAI_BASE_URL": DEAD, "OPENAI_API_BASE": DEAD}
        result = run(tmp_path, "--url", f"{server.url}{suffix}", env=env)
        assert result.returncode == 0, result.stderr
        assert len(server.behaviour.requests) >= 2  # the probes and the measured requests
    assert "server URL from" not in result.stderr
    assert recorded_url(tmp_path) == server.url


def test_check_takes_the_variable_too(fake_server):
    result = subprocess.run(
        [LLMTOP, "check", "--json"],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "OPENAI_BASE_URL": f"{fake_server.url}/v1/"},
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["model"] == "fake-model"
