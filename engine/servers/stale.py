"""Servers an earlier llmtop started and never stopped: found, reported, stopped on request.

The watchdog (engine/servers/watchdog.py) stops a server when llmtop dies; this is the
backstop for when it could not: the watchdog was killed as well, the server left its process
group, or an llmtop from before the watchdog started it. A ``ServerProcess`` writes
``SERVER_RECORD`` into its run folder as soon as the server runs (its PID, process group and
create time, the command with secrets blanked, and the PIDs of the llmtop and the watchdog
that answer for it) and deletes it once it has stopped the server. A record left behind whose
llmtop and watchdog are both gone, and whose PID is still that very process (the same create
time: PIDs are reused), is a stale server. Nothing is ever signalled without that check.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import psutil

from engine.results.layout import SERVER_RECORD

CREATE_TIME_TOLERANCE_S = 0.05
"""Create times are read back from /proc in clock ticks; the same process reads the same."""


@dataclass(frozen=True)
class ProcessId:
    """A process that cannot be mistaken for a later one with the same PID."""

    pid: int
    create_time: float
    """``psutil.Process.create_time()``: seconds since the epoch."""

    @classmethod
    def of(cls, pid: int) -> ProcessId:
        """The process running as ``pid`` now."""
        return cls(pid, psutil.Process(pid).create_time())

    def alive(self) -> bool:
        """True while this very process runs (not a zombie, not a newcomer with its PID)."""
        try:
            process = psutil.Process(self.pid)
            same = abs(process.create_time() - self.create_time) < CREATE_TIME_TOLERANCE_S
            return same and process.status() != psutil.STATUS_ZOMBIE
        except psutil.Error:
            return False


@dataclass(frozen=True)
class ServerRecord:
    """What a run folder's ``SERVER_RECORD`` says about the server started for the run."""

    server: ProcessId
    pgid: int
    """Its process group: the server and whatever it started."""
    command: list[str]
    """As started, secrets blanked."""
    owner: ProcessId
    """The llmtop that started it."""
    watchdog: ProcessId | None
    """The watchdog that stops it if the owner dies."""

    def write(self, run_dir: Path) -> Path:
        """Save into ``run_dir``; returns the file (deleted again by ``forget``)."""
        path = run_dir / SERVER_RECORD
        path.write_text(json.dumps(asdict(self), indent=2))
        return path

    @classmethod
    def read(cls, path: Path) -> ServerRecord | None:
        """The record in ``path``; ``None`` for an unreadable or foreign file."""
        try:
            data = json.loads(path.read_text())
            watchdog = data.get("watchdog")
            return cls(
                server=ProcessId(**data["server"]),
                pgid=int(data["pgid"]),
                command=[str(word) for word in data["command"]],
                owner=ProcessId(**data["owner"]),
                watchdog=ProcessId(**watchdog) if watchdog else None,
            )
        except (OSError, ValueError, TypeError, KeyError):
            return None


def record(run_dir: Path, server_pid: int, command: list[str], watchdog_pid: int) -> None:
    """Leave the server's identity in its run folder, by this llmtop, until ``forget``.

    A server that is already gone, or a folder that cannot be written, leaves no record: the
    server still has its watchdog, and the run goes on.
    """
    with contextlib.suppress(OSError, psutil.Error):
        ServerRecord(
            server=ProcessId.of(server_pid),
            pgid=server_pid,  # started with a session, hence a group, of its own
            command=command,
            owner=ProcessId.of(os.getpid()),
            watchdog=ProcessId.of(watchdog_pid),
        ).write(run_dir)


def forget(run_dir: Path) -> None:
    """The server was stopped by its owner: no record is left to find."""
    with contextlib.suppress(FileNotFoundError):
        (run_dir / SERVER_RECORD).unlink()


@dataclass(frozen=True)
class StaleServer:
    """A server left running by an llmtop that is gone."""

    record: ServerRecord
    run_dir: Path

    @property
    def kill_command(self) -> str:
        """The shell command that stops it by hand (its whole process group)."""
        return f"kill -TERM -- -{self.record.pgid}"


def find_stale(root: Path) -> list[StaleServer]:
    """Stale servers recorded in the run folders directly under ``root``. A record whose
    server is gone is deleted on the way: nothing is left to report.
    """
    stale = []
    for path in sorted(root.glob(f"*/{SERVER_RECORD}")):
        record = ServerRecord.read(path)
        if record is None or _answered_for(record):
            continue
        if record.server.alive():
            stale.append(StaleServer(record, path.parent))
        else:
            forget(path.parent)
    return stale


def _answered_for(record: ServerRecord) -> bool:
    """Its llmtop still runs it, or its watchdog is stopping it right now."""
    return record.owner.alive() or (record.watchdog is not None and record.watchdog.alive())


def stop_stale(stale: StaleServer, grace_s: float) -> bool:
    """Stop the server's process group (SIGTERM, SIGKILL after ``grace_s``) if it is still
    the recorded process and still leads its group; True when it is gone.
    """
    record = stale.record
    if _answered_for(record) or not record.server.alive():
        return not record.server.alive()
    try:
        if os.getpgid(record.server.pid) != record.pgid:
            return False
        os.killpg(record.pgid, signal.SIGTERM)
        if not _gone_within(record.server, grace_s):
            os.killpg(record.pgid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    gone = _gone_within(record.server, grace_s)
    if gone:
        forget(stale.run_dir)
    return gone


def _gone_within(process: ProcessId, limit_s: float) -> bool:
    """Polled: the process is not our child, so it cannot be waited for."""
    deadline = time.monotonic() + limit_s
    while process.alive() and time.monotonic() < deadline:
        time.sleep(0.05)
    return not process.alive()
