"""Secrets never reach the disk or the console (issue 13 E): a key in a server command, a key
the server echoes into its log and its error bodies, and the password of ``--url``. Each
test greps every file of the run folder (the HTML report and the CSV written into it), and
the console output, for the secret.
"""

from __future__ import annotations

import base64
import json
import sys
from pathlib import Path

import pytest

from tests.tui.test_cli import llmtop, only_run_dir

KEY = "sk-llmtop-test-5f0c2a9e1b7d"
SERVER_KEY = "sk-llmtop-server-93b0e47a"
"""A server key that is not the one llmtop sends: the server then logs llmtop's as wrong."""
FAKE = f"{sys.executable} -m tests.support.fake_server_cmd --port {{port}}"
SHORT_RUN = ("--requests", "6", "--concurrency", "2", "--max-tokens", "4", "--warmup", "0")


def files_holding(secret: str, run_dir: Path) -> list[str]:
    """Report and CSV the run folder into itself, then name every file that holds ``secret``."""
    exported = llmtop("report", str(run_dir), "--csv", str(run_dir / "csv"))
    assert exported.returncode == 0, exported.stderr
    assert (run_dir / "report.html").is_file() and (run_dir / "csv" / "requests.csv").is_file()
    return [
        str(path.relative_to(run_dir))
        for path in sorted(run_dir.rglob("*"))
        if path.is_file() and secret.encode() in path.read_bytes()
    ]


@pytest.mark.parametrize(
    ("command", "shell"),
    [
        (f"env VLLM_API_KEY={KEY} {FAKE} --api-key {KEY}", False),
        (f"HF_TOKEN={SERVER_KEY} exec {FAKE} --api-key={SERVER_KEY}", True),
    ],
    ids=["flag-and-env", "shell-assignment-other-key"],
)
def test_a_key_in_the_server_command_and_echoed_by_the_server_is_nowhere(tmp_path, command, shell):
    args = ["run", "--no-ui", "--server-cmd", command, "--api-key", KEY, *SHORT_RUN]
    result = llmtop(*args, *(["--server-shell"] if shell else []), "--output", str(tmp_path))
    assert result.returncode == 0, result.stderr
    run_dir = only_run_dir(tmp_path)
    # The server did echo the key: into its log, and into the 401s it sent.
    assert "Authorization: Bearer ***" in (run_dir / "server.log").read_text()
    records = [json.loads(line) for line in (run_dir / "requests.jsonl").read_text().splitlines()]
    assert "HTTP 401: invalid api key: ***" in {r["error_message"] for r in records}
    for key in (KEY, SERVER_KEY):
        assert files_holding(key, run_dir) == []
        assert key not in result.stdout + result.stderr
    assert "--api-key" in result.stderr  # the command is shown, only its key blanked


def test_the_password_of_url_is_sent_as_basic_auth_and_stored_nowhere(fake_server, tmp_path):
    password = "pw-llmtop-test-8d31c4"
    url = fake_server.url.replace("http://", f"http://alice:{password}@")
    result = llmtop("run", "--no-ui", "--url", url, *SHORT_RUN, "--output", str(tmp_path))
    assert result.returncode == 0, result.stderr
    basic = base64.b64encode(f"alice:{password}".encode()).decode()
    assert {h.get("Authorization") for h in fake_server.behaviour.headers} == {f"Basic {basic}"}
    run_dir = only_run_dir(tmp_path)
    assert json.loads((run_dir / "run.json").read_text())["url"] == fake_server.url
    for secret in (password, basic):
        assert files_holding(secret, run_dir) == []
        assert secret not in result.stdout + result.stderr


def test_url_credentials_and_an_api_key_together_are_refused(fake_server, tmp_path):
    url = fake_server.url.replace("http://", "http://alice:pw-1234@")
    result = llmtop("run", "--no-ui", "--url", url, "--api-key", KEY, "--output", str(tmp_path))
    assert result.returncode == 2
    assert "--url" in result.stderr and "--api-key" in result.stderr
    assert "pw-1234" not in result.stderr and KEY not in result.stderr
    assert not fake_server.behaviour.requests
