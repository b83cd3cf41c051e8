"""Prompts from users' files (JSONL, ShareGPT) and shared prefixes."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from engine.workload.profile import ProfileError, validate_profile
from engine.workload.prompt_files import PromptFileError, load_prompts
from engine.workload.prompts import PromptFactory
from tests.support.paths import ROOT


def write_jsonl(path: Path, entries: list) -> Path:
    path.write_text("\n".join(json.dumps(e) for e in entries) + "\n")
    return path


def test_jsonl_prompts_and_chat_messages(tmp_path):
    path = write_jsonl(
        tmp_path / "p.jsonl",
        [
            {"prompt": "What is KV cache?"},
            {
                "messages": [
                    {"role": "system", "content": "Be brief."},
                    {"role": "user", "content": "Explain TTFT."},
                ]
            },
            {"text": "plain text"},
        ],
    )
    prompts = load_prompts(path)
    assert [p.messages[-1]["content"] for p in prompts] == [
        "What is KV cache?",
        "Explain TTFT.",
        "plain text",
    ]
    assert prompts[1].messages[0] == {"role": "system", "content": "Be brief."}


def test_sharegpt_takes_the_first_human_turn(tmp_path):
    path = tmp_path / "share.json"
    path.write_text(
        json.dumps(
            [
                {
                    "conversations": [
                        {"from": "human", "value": "Hi there"},
                        {"from": "gpt", "value": "Hello"},
                    ]
                },
                {"conversations": [{"from": "gpt", "value": "no human turn"}]},
            ]
        )
    )
    assert [p.text for p in load_prompts(path)] == ["Hi there"]


def test_a_bad_line_is_named(tmp_path):
    path = write_jsonl(tmp_path / "p.jsonl", [{"prompt": "ok"}])
    with path.open("a") as f:
        f.write('{"question": "wrong key"}\n')
    with pytest.raises(PromptFileError, match=r"p.jsonl:2: expected"):
        load_prompts(path)


def test_profile_with_a_prompt_file_sends_its_messages(tmp_path):
    path = write_jsonl(tmp_path / "p.jsonl", [{"messages": [{"role": "user", "content": "A?"}]}])
    profile = validate_profile(
        {
            "name": "f",
            "concurrency": 1,
            "requests": 3,
            "prompt_file": str(path),
            "prompt_suffix": " /no_think",
        },
        "t",
    )
    factory = PromptFactory(profile)
    body = factory.body(factory.plan(0), "m")
    assert body["messages"] == [{"role": "user", "content": "A? /no_think"}]
    assert factory.plan(0).input_tokens is None and profile.input_label == "file"


def test_prompt_sources_are_exclusive():
    with pytest.raises(ProfileError, match="not input_tokens and prompt_file"):
        validate_profile(
            {
                "name": "x",
                "concurrency": 1,
                "requests": 1,
                "input_tokens": 9,
                "prompt_file": "p.jsonl",
            },
            "t",
        )


def test_shared_prefix_is_common_and_the_rest_differs():
    profile = validate_profile(
        {
            "name": "s",
            "concurrency": 1,
            "requests": 2,
            "input_tokens": 40,
            "shared_prefix_tokens": 30,
        },
        "t",
    )
    factory = PromptFactory(profile)
    first, second = (factory.plan(i).text.split() for i in (0, 1))
    assert len(first) == len(second) == 40
    assert first[:30] == second[:30] and first[30:] != second[30:]


def test_cli_refuses_a_bad_prompt_file_with_exit_2(tmp_path):
    path = tmp_path / "p.jsonl"
    path.write_text("not json\n")
    profile = tmp_path / "mine.toml"
    profile.write_text(f'concurrency = 1\nrequests = 1\nprompt_file = "{path}"\n')
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "tui",
            "run",
            "--url",
            "http://127.0.0.1:9",
            "--profile",
            str(profile),
        ],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=30,
    )
    assert result.returncode == 2
    assert f"{path}:1: not JSON" in result.stderr and "Traceback" not in result.stderr
