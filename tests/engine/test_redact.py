"""The redaction rule (engine/redact.py): what is blanked, and what is left alone."""

from __future__ import annotations

import pytest

from engine import redact as redact_module
from engine.redact import REDACTED, redact, redact_argv, remember, secrets_in


@pytest.fixture(autouse=True)
def _forget() -> None:
    redact_module._known = ()


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("vllm serve M --api-key sk-abc123 --port 8000", "vllm serve M --api-key *** --port 8000"),
        ("llama-server --api-key=sk-abc123", "llama-server --api-key=***"),
        ("OPENAI_API_KEY=sk-abc123 vllm serve M", "OPENAI_API_KEY=*** vllm serve M"),
        ("env HF_TOKEN='hf_x y' cmd", "env HF_TOKEN=*** cmd"),
        ("--hf-token hf_abc", "--hf-token ***"),
        ("Authorization: Bearer sk-abc.def", "Authorization: Bearer ***"),
        ("cannot reach http://bob:pa55@host:8000/v1", "cannot reach http://bob:***@host:8000/v1"),
        ("args: api_key=sk-abc, port=8000", "args: api_key=***, port=8000"),
    ],
)
def test_patterns_blank_secret_values(text, expected):
    assert redact(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "--max-num-batched-tokens 8192 --max-tokens 16",
        "max_tokens=128 monkey=3 keyboard=us",
        "--api-key-file /etc/key.txt --ssl-keyfile k.pem",
        "a basic configuration; http://host:8000/v1",
    ],
)
def test_ordinary_text_is_left_alone(text):
    assert redact(text) == text


def test_remembered_values_are_blanked_anywhere_longest_first():
    remember("sk-abc", "sk-abcdef", None, "", "x")
    assert redact('{"error": "invalid key sk-abcdef (not sk-abc)"}') == (
        '{"error": "invalid key *** (not ***)"}'
    )
    assert redact("x marks the spot") == "x marks the spot"  # too short to replace anywhere


def test_argv_word_after_a_bare_secret_flag_is_blanked():
    argv = ["vllm", "serve", "M", "--api-key", "s3cr3t", "--port", "8000", "TOKEN=t0k"]
    assert redact_argv(argv) == [
        "vllm",
        "serve",
        "M",
        "--api-key",
        REDACTED,
        "--port",
        "8000",
        f"TOKEN={REDACTED}",
    ]
    assert redact_argv(["cmd", "--api-key", "--port", "1"]) == ["cmd", "--api-key", "--port", "1"]


def test_secrets_in_a_command_are_found_for_remembering():
    argv = ["sh", "-c", "API_KEY=k1k1 srv --api-key k2k2 --token=k3k3", "--api-key", "k4k4"]
    assert sorted(secrets_in(argv)) == ["k1k1", "k2k2", "k3k3", "k4k4"]
