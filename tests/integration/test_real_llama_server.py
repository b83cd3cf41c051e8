"""llmtop against the real llama.cpp llama-server with Gemma 3 270M on 127.0.0.1.

llama-server reports its own per-request timings (prompt_ms, predicted_ms,
predicted_per_second) in the last stream chunk. At concurrency 1 the client and the server
time the same work, so llmtop's figures must agree with them within the bounds stated below.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from engine.http.detect import detect
from engine.run.config import RunConfig
from engine.run.engine import Engine
from engine.workload.profile import validate_profile
from tests.support.paths import ROOT
from tests.support.real_server import MODEL

pytestmark = pytest.mark.real_server


def run_profile(url: str, tmp_path: Path, **fields: object) -> tuple[object, list[dict]]:
    profile = validate_profile({"name": "t", **fields}, "test")
    config = RunConfig(
        url=url, model=MODEL, profiles=[profile], results_root=tmp_path, server_kind="llama.cpp"
    )
    summary = asyncio.run(Engine(config).run())
    lines = (tmp_path / summary.run_id / "requests.jsonl").read_text().splitlines()
    return summary, [json.loads(line) for line in lines]


def test_detects_llama_cpp(real_server):
    info = asyncio.run(detect(real_server.url))
    assert info.kind == "llama.cpp"
    assert info.models == [MODEL]


@pytest.mark.parametrize("endpoint", ["chat", "completions"])
def test_timings_agree_with_llama_server(real_server, tmp_path, endpoint):
    summary, records = run_profile(
        real_server.url,
        tmp_path,
        endpoint=endpoint,
        concurrency=1,
        requests=4,
        warmup_requests=1,
        input_tokens=100,
        max_tokens=32,
        exact_output=True,
    )
    measured = [r for r in records if not r["warmup"]]
    assert len(measured) == 4 and all(r["ok"] for r in records)
    for r in measured:
        timings = r["server_timings"]
        # Token counts: usage, timings and streamed chunks are three independent sources; with
        # ignore_eos the server must produce exactly max_tokens, one chunk per token.
        assert r["completion_tokens"] == timings["predicted_n"] == 32
        assert r["completion_tokens_by_source"] == {"usage": 32, "timings": 32, "chunks": 32}
        assert r["exact_output_honoured"] is True and not r["token_count_mismatch"]
        # The prompt is ~100 words; the tokenizer and chat template move it by a few tokens.
        assert 95 <= r["prompt_tokens"] <= 140
        # Decode speed: the server's predicted_per_second covers first-to-last token, as does
        # the client's (tokens-1)/(last-first). Both time the same interval on the same box;
        # measured agreement is within 1 %. 5 % leaves room for scheduling noise on 2 shared
        # cores without hiding a real error (e.g. counting chunks wrongly shifts it by 1/32=3 %
        # only if combined with a timing error, so we also check counts exactly above).
        client_tps = (r["completion_tokens"] - 1) / (
            (r["last_token_ns"] - r["first_token_ns"]) / 1e9
        )
        assert client_tps == pytest.approx(timings["predicted_per_second"], rel=0.05)
        # TTFT = prompt processing + first token + HTTP and loopback overhead. The client
        # cannot see the first token before the server has processed the prompt, and the
        # overhead measured here is 3-12 ms; 60 ms allows for a loaded machine.
        prompt_s = timings["prompt_ms"] / 1000
        assert prompt_s <= r["ttft_s"] <= prompt_s + 0.060
        server_total_s = (timings["prompt_ms"] + timings["predicted_ms"]) / 1000
        assert server_total_s <= r["e2e_s"] <= server_total_s + 0.080
        assert r["tpot_s"] == pytest.approx((r["e2e_s"] - r["ttft_s"]) / 31)
    profile = summary.profiles[0]
    assert profile.output_tokens_total == 4 * 32
    assert profile.output_tokens_per_s == pytest.approx(128 / profile.duration_s)


def test_no_request_lost_to_closed_keepalive_connections(real_server, tmp_path):
    # llama-server closes the connection after every stream while advertising keep-alive.
    summary, records = run_profile(
        real_server.url, tmp_path, concurrency=4, requests=24, input_tokens=16, max_tokens=8
    )
    assert [r["error_message"] for r in records if not r["ok"]] == []
    assert summary.profiles[0].successes == 24
    assert all(r["client_queue_wait_s"] < 0.005 for r in records)


def test_embedded_default_server_runs_and_is_stopped(tmp_path):
    # The README's main command without --url: llmtop starts llama-server itself.
    import os
    import subprocess
    import sys

    root = ROOT
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "tui",
            "run",
            "--no-ui",
            "--requests",
            "4",
            "--concurrency",
            "2",
            "--max-tokens",
            "8",
            "--warmup",
            "0",
            "--output",
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=root,
    )
    assert result.returncode == 0, result.stderr
    (run_dir,) = list(tmp_path.iterdir())
    run = json.loads((run_dir / "run.json").read_text())
    assert run["server_kind"] == "llama.cpp" and run["model"] == MODEL
    assert run["server"]["features"]["stream_usage"] is True  # probed before the run
    pid = run["server_process"]["pid"]
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)
    assert "starting server:" in result.stderr
    assert (run_dir / "server.log").stat().st_size > 0
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["profiles"][0]["successes"] == 4


@pytest.mark.parametrize("endpoint", ["chat", "completions"])
def test_prompts_have_the_requested_length_in_the_servers_tokens(real_server, tmp_path, endpoint):
    # llmtop keeps the words llama.cpp's /tokenize says are one token, and learns the chat
    # template's fixed overhead from the warm-up response: measured prompts then hit the
    # requested length exactly (the issue asks for 2 % or 2 tokens).
    summary, records = run_profile(
        real_server.url,
        tmp_path,
        endpoint=endpoint,
        concurrency=1,
        requests=4,
        warmup_requests=1,
        input_tokens=[80, 300],
        max_tokens=2,
    )
    measured = [r for r in records if not r["warmup"]]
    for r in measured:
        assert abs(r["prompt_tokens"] - r["requested_input_tokens"]) <= max(
            2, 0.02 * r["requested_input_tokens"]
        ), r
    error = summary.profiles[0].input_length_error_pct
    assert error is not None and abs(error.max) <= 2.0
