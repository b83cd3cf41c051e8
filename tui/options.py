"""What a person asked ``llmtop run`` for, as one typed, frozen object.

The command line (tui/cli.py) parses its arguments once into ``RunOptions``; nothing below
it sees the parser. ``run.json`` records ``RunOptions.record()`` under ``options`` with
``OPTIONS_SCHEMA``: these documented field names are the on-disk format, not the parser's
names for its flags (run folders written before schema 1 kept ``arguments`` instead, and
still load).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr

from engine.redact import redact
from engine.telemetry.config import DEFAULT_SAMPLE_HZ
from tui.web.server import DEFAULT_HOST, DEFAULT_PORT

OPTIONS_SCHEMA = 1
"""Version of the ``options`` object in ``run.json``; raised when a field changes meaning."""
DEFAULT_PROFILE = "quick"
"""The profile run when neither ``--profile`` nor ``--suite`` is given."""
URL_VARIABLES = ("OPENAI_BASE_URL", "OPENAI_API_BASE")
"""Where the OpenAI clients take a base URL from, in their order: llmtop's default ``--url``."""


class RunOptions(BaseModel):
    """Everything ``llmtop run`` was asked to do, validated at the command line."""

    model_config = ConfigDict(frozen=True)

    url: str | None = None
    """Server base URL, normalised (no ``/v1``, no credentials); ``None``: the embedded
    llama-server, or the one ``server_commands`` start."""
    model: str | None = None
    """Model to request; ``None``: the first the server lists."""
    api_key: SecretStr | None = Field(default=None, exclude=True)
    """Bearer token (``--api-key`` or ``$OPENAI_API_KEY``); never recorded."""
    basic_auth: SecretStr | None = Field(default=None, exclude=True)
    """``user:password`` that ``--url`` carried, sent as HTTP Basic auth instead of the API
    key; never recorded (``url`` has them removed)."""
    probe: bool = True
    """Probe the server's request features and prompt-token counts before measuring."""
    local_parallel: int = 4
    """Embedded server only: llama-server ``--parallel`` slots."""
    server_commands: tuple[str, ...] = ()
    """``--server-cmd`` templates: servers llmtop starts, one configuration each."""
    server_shell: bool = False
    """Run the server commands through ``/bin/sh``."""
    server_ready_timeout_s: float = 600.0
    """Give up on a server that is not ready after this long."""
    server_grace_s: float = 10.0
    """Between SIGTERM and SIGKILL when stopping a server llmtop started."""
    gpus: int | None = None
    """GPUs for layout checks of server commands; ``None``: what NVML reports."""
    profiles: tuple[str, ...] = ()
    """``--profile`` entries: built-in names or TOML files, in order."""
    suites: tuple[str, ...] = ()
    """``--suite`` entries: built-in names or TOML files, run before the profiles."""
    overrides: dict[str, Any] = Field(default_factory=dict)
    """Profile fields set on the command line (profile field names, e.g. ``rate_rps``),
    applied to every profile; with no profile given they describe an ad-hoc one."""
    pause_between_s: float | None = None
    """Pause between profiles; ``None``: the suites' largest ``pause_between_s``, else 0."""
    slo_ttft_s: float | None = None
    """TTFT objective for goodput."""
    slo_tpot_s: float = 0.1
    """TPOT objective for goodput (100 ms = 10 tok/s per user)."""
    stall_timeout_s: float = 300.0
    """Fail a request after this long without a byte."""
    connect_timeout_s: float = 10.0
    """Fail a request that cannot connect within this long."""
    outage_grace_s: float = 15.0
    """After connection failures in a row, how long the server may stay silent before the
    run fails (``RunConfig.outage_grace_s``)."""
    sample_hz: float = DEFAULT_SAMPLE_HZ
    """GPU and host sampling rate."""
    server_pid: int | None = None
    """Local server process to sample; ``None``: the one started, or the one on the port."""
    save_itl: bool = False
    """Store every request's raw inter-token gaps."""
    workers: int | Literal["auto"] = 1
    """Client processes sending the load together (``RunConfig.workers``)."""
    ray_address: str | None = None
    """Run the workers as Ray actors on this cluster (``RunConfig.ray_address``)."""
    output: Path = Path("llmtop-results")
    """Folder under which the run's results folder is created."""
    dry_run: bool = False
    """Print the requests each profile would send, contact no server."""
    ui: bool = False
    """Show the live screen (asked for, and there is a terminal to draw on)."""
    web: bool = False
    """Also serve the live screen to browsers (read-only there); the process stays after a
    headless run until Ctrl+C, so the end can be seen."""
    web_host: str = DEFAULT_HOST
    """Address the browsers' server listens on (loopback unless asked otherwise)."""
    web_port: int = DEFAULT_PORT
    """Port the browsers' server listens on."""

    def record(self) -> dict[str, Any]:
        """The options as ``run.json`` keeps them: JSON values, no API key, server commands
        with their secrets blanked (engine/redact.py)."""
        options = self.model_dump(mode="json")
        options["server_commands"] = [redact(c) for c in self.server_commands]
        return {"schema": OPTIONS_SCHEMA, **options}
