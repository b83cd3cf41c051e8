"""Server commands llmtop starts itself: placeholders, parameter grids, ports.

``--server-cmd`` takes a command line. ``{port}`` in it becomes a free port on 127.0.0.1, and a
``{a,b,...}`` group becomes one configuration per value; several groups give their product:

    vllm serve M --port {port} --tensor-parallel-size {8,4} --pipeline-parallel-size {1,2}

expands to four commands, of which those whose tensor x pipeline parallelism does not equal the
number of GPUs are dropped (8x1 and 4x2 stay on an 8-GPU box), so only valid layouts are run.
"""

from __future__ import annotations

import itertools
import re
import shlex
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from engine.errors import InputError
from engine.redact import redact
from engine.servers.process import free_port

GROUP = re.compile(r"\{([^{}]*,[^{}]*)\}")
PORT_PLACEHOLDER = "{port}"
TP_FLAGS = ("--tensor-parallel-size", "-tp", "--tp", "--tp-size")
PP_FLAGS = ("--pipeline-parallel-size", "-pp", "--pp", "--pp-size")
PORT_FLAGS = ("--port", "--server-port")
DEFAULT_PORTS = {
    "vllm": 8000,
    "sglang": 30000,
    "lmdeploy": 23333,
    "llama-server": 8080,
    "ollama": 11434,
}
"""Default port by program name, for commands that do not say their port."""


class ServerCommandError(InputError):
    """A server command that cannot be run as given; the message says why."""


@dataclass(frozen=True)
class ServerConfig:
    """One server configuration to start and measure."""

    argv: list[str]
    """The command, already split (no shell)."""
    url: str
    """Where it will serve."""
    label: str
    """Short name in tables: the grid values, or the command's position."""
    params: dict[str, str] = field(default_factory=dict)
    """The grid values this configuration took."""
    command_line: str = ""
    """The command as given, its placeholders filled: what ``--server-shell`` hands to
    ``/bin/sh`` (pipes, redirections and ``&&`` intact)."""


def expand(commands: list[str], url: str | None, gpus: int | None) -> list[ServerConfig]:
    """Every configuration the ``--server-cmd`` values describe, in order."""
    configs: list[ServerConfig] = []
    for number, command in enumerate(commands, 1):
        configs.extend(_expand_one(command, number, url, gpus, several=len(commands) > 1))
    if not configs:
        raise ServerCommandError(
            f"no valid configuration: tensor x pipeline parallelism must "
            f"equal the number of GPUs ({gpus})"
        )
    return configs


def _literal(text: str) -> Callable[[re.Match[str]], str]:
    """A ``re.sub`` replacement that inserts ``text`` as it is (no backslash escapes)."""
    return lambda _match: text


def _expand_one(
    command: str, number: int, url: str | None, gpus: int | None, several: bool
) -> list[ServerConfig]:
    groups = GROUP.findall(command)
    out = []
    for values in itertools.product(*(g.split(",") for g in groups)):
        text = command
        for value in values:
            text = GROUP.sub(_literal(value.strip()), text, count=1)
        port = free_port() if PORT_PLACEHOLDER in text else None
        text = text.replace(PORT_PLACEHOLDER, str(port)) if port else text
        try:
            argv = shlex.split(text)
        except ValueError as exc:
            raise ServerCommandError(f"cannot parse server command {command!r}: {exc}") from None
        if not argv:
            raise ServerCommandError("empty server command")
        params = _params(argv, groups, values)
        if not _valid_layout(argv, gpus):
            continue
        label = redact(" ".join(f"{k}={v}" for k, v in params.items())) or (
            f"cmd{number}" if several else Path(argv[0]).name
        )
        out.append(ServerConfig(argv, url or _url_of(argv, port, command), label, params, text))
    return out


def _params(argv: list[str], groups: list[str], values: tuple[str, ...]) -> dict[str, str]:
    """Name each grid value by the flag before it (``tensor-parallel-size=8``)."""
    params = {}
    for value in values:
        value = value.strip()
        for i, arg in enumerate(argv):
            name, _, inline = arg.partition("=")
            if inline == value and name.startswith("-"):
                params[name.lstrip("-")] = value
                break
            if arg == value and i and argv[i - 1].startswith("-"):
                params[argv[i - 1].lstrip("-")] = value
                break
        else:
            params[f"value{len(params) + 1}"] = value
    return params


def _flag(argv: list[str], names: tuple[str, ...]) -> str | None:
    for i, arg in enumerate(argv):
        name, eq, inline = arg.partition("=")
        if name in names:
            return inline if eq else (argv[i + 1] if i + 1 < len(argv) else None)
    return None


def _valid_layout(argv: list[str], gpus: int | None) -> bool:
    tp, pp = _flag(argv, TP_FLAGS), _flag(argv, PP_FLAGS)
    if gpus is None or tp is None:
        return True
    try:
        return int(tp) * int(pp or 1) == gpus
    except ValueError:
        return True


def _url_of(argv: list[str], port: int | None, command: str) -> str:
    if port is None:
        given = _flag(argv, PORT_FLAGS)
        if given is not None and given.isdigit():
            port = int(given)
    if port is None:
        port = next(
            (
                p
                for name, p in DEFAULT_PORTS.items()
                if name in Path(argv[0]).name or name in argv[:3]
            ),
            None,
        )
    if port is None:
        raise ServerCommandError(
            f"cannot tell which port {command!r} serves on: put {{port}} "
            f"where the port goes, or pass --url"
        )
    return f"http://127.0.0.1:{port}"


def gpu_count() -> int | None:
    """GPUs NVML sees, or ``None`` without a driver."""
    try:
        import pynvml

        pynvml.nvmlInit()
        try:
            return int(pynvml.nvmlDeviceGetCount())
        finally:
            pynvml.nvmlShutdown()
    except Exception:  # noqa: BLE001 - no driver, no library, no GPU: all mean "unknown"
        return None
