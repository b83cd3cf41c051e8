"""What a bug report needs (`llmtop --version`, `llmtop doctor`), the start-up check that
`engine` and `tui` are llmtop's own, and shell completion."""

from __future__ import annotations

import importlib.metadata
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from engine.errors import ExitCode
from tests.support.paths import ROOT, checkout_commit
from tui import entry
from tui.commands import about
from tui.entry import CONFLICT_EXIT, INTERRUPTED_EXIT, package_conflict

BIN = Path(sys.executable).parent
LLMTOP = BIN / "llmtop"
"""The console script as installed (tui.entry:main), not `python -m tui`: that puts the
working folder first on the path."""


def llmtop(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [LLMTOP, *args],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=BIN,
        env={**os.environ, **(env or {})},
    )


def test_version_names_the_commit_python_and_the_libraries():
    result = llmtop("--version")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == f"llmtop {importlib.metadata.version('llmtop')} (commit {checkout_commit()})"
    assert lines[1].startswith(f"Python {sys.version.split()[0]} ")
    for name in ("textual", "httpx", "aiohttp", "nvidia-ml-py"):
        assert f"{name} {importlib.metadata.version(name)}" in lines


def test_doctor_says_what_a_bug_report_needs(tmp_path):
    result = llmtop(
        "doctor",
        env={
            "LLMTOP_CACHE_DIR": str(tmp_path),
            "OPENAI_API_KEY": "sk-doctor-secret",
            "OPENAI_BASE_URL": "http://user:hunter2@gpu-box:8000/v1",
        },
    )
    assert result.returncode == 0, result.stderr
    report = dict(line.split(":", 1) for line in result.stdout.splitlines() if ": " in line)
    report = {label: value.strip() for label, value in report.items()}
    assert report["install"] == f"editable, from file://{ROOT}"
    assert report["NVML"]  # the reason when there is no driver, the GPUs when there is
    assert "terminals: none" in report["terminal"]  # captured: no terminal here
    assert report["local server"].startswith(f"not built in {tmp_path}")
    assert report["OPENAI_BASE_URL"] == "http://gpu-box:8000/v1"
    assert report["OPENAI_API_KEY"] == "set (not shown)"
    assert "hunter2" not in result.stdout and "sk-doctor-secret" not in result.stdout


def test_doctor_names_a_built_local_server(tmp_path, monkeypatch):
    for name in ("llama-server", "model.gguf"):
        (tmp_path / name).write_text("x")
    manifest = {"binary": str(tmp_path / "llama-server"), "model": str(tmp_path / "model.gguf")}
    (tmp_path / "local-server.json").write_text(json.dumps(manifest))
    monkeypatch.setenv("LLMTOP_CACHE_DIR", str(tmp_path))
    assert dict(about.doctor_lines())["local server"].startswith(
        f"built: {tmp_path / 'llama-server'}, model {tmp_path / 'model.gguf'}"
    )
    (tmp_path / "model.gguf").unlink()
    assert "names files that are gone" in dict(about.doctor_lines())["local server"]


def test_engine_and_tui_here_are_llmtops_own():
    assert package_conflict() is None
    assert CONFLICT_EXIT == ExitCode.FAILED and INTERRUPTED_EXIT == ExitCode.INTERRUPTED


def test_ctrl_c_while_llmtop_loads_is_one_line(monkeypatch, capsys):
    def interrupted() -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(entry, "package_conflict", interrupted)
    assert entry.main() == ExitCode.INTERRUPTED
    assert capsys.readouterr().err == "llmtop: interrupted\n"


def test_a_foreign_engine_first_on_the_path_stops_llmtop_with_one_line(tmp_path):
    (tmp_path / "engine").mkdir()
    (tmp_path / "engine" / "__init__.py").write_text("")
    result = llmtop("--version", env={"PYTHONPATH": str(tmp_path)})
    assert result.returncode == ExitCode.FAILED
    message = result.stderr.strip()
    assert "\n" not in message and "Traceback" not in message
    assert f"the package 'engine' imports from {tmp_path / 'engine'}" in message
    assert "pipx install" in message and "uv tool install" in message


@pytest.mark.parametrize("metadata", ["top_level.txt", "RECORD"])
def test_another_distribution_installing_engine_stops_llmtop(tmp_path, metadata):
    info = tmp_path / "game_engine-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: game-engine\nVersion: 1.0\n")
    listing = "engine\n" if metadata == "top_level.txt" else "engine/__init__.py,sha256=x,0\n"
    (info / metadata).write_text(listing)
    result = llmtop("profiles", env={"PYTHONPATH": str(tmp_path)})
    assert result.returncode == ExitCode.FAILED
    assert "installed llmtop's packages too: 'engine' by game-engine;" in result.stderr


def test_completion_scripts_for_each_shell():
    for shell in ("bash", "zsh", "fish"):
        result = llmtop("completion", shell)
        assert result.returncode == 0, result.stderr
        assert "llmtop" in result.stdout and "_ARGCOMPLETE" in result.stdout


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("llmtop pro", {"profiles"}),
        ("llmtop do", {"doctor"}),
        ("llmtop run --conc", {"--concurrency"}),
        ("llmtop completion ", {"bash", "zsh", "fish"}),
    ],
)
def test_bash_completes_commands_and_options(line, expected):
    # What bash does on Tab after `eval "$(llmtop completion bash)"`, with the real script.
    script = (
        'eval "$(llmtop completion bash)"\n'
        f'COMP_LINE="{line}"; COMP_POINT=${{#COMP_LINE}}\n'
        '_python_argcomplete llmtop\nprintf "%s\\n" "${COMPREPLY[@]}"\n'
    )
    result = subprocess.run(
        ["bash", "--norc", "-c", script],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=BIN,
        env={**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}"},
    )
    assert expected <= {word.strip() for word in result.stdout.splitlines()}, result.stderr
