"""The watchdog beside every server llmtop starts: it writes the server's log with secrets
blanked, and it stops the server when llmtop ends, however llmtop ends (``kill -9`` too).

Why a process of its own. ``PR_SET_PDEATHSIG`` (a signal to a child when its parent dies)
reaches only the direct child: a server started through ``sh -c`` or a launcher (``vllm
serve`` forks engine and GPU worker processes) leaves the rest running; it also fires when the
*thread* that started the child ends, and it is Linux-only. A process group alone cannot help
either: a process killed with SIGKILL signals nobody. So a separate process holds the read end
of a pipe whose only writer is llmtop (the watchdog's stdin). The kernel closes that pipe
when llmtop dies, for any reason; the watchdog reads end-of-file and stops the server's whole
process group: SIGTERM, then SIGKILL after the grace period. It has a session of its own, so
neither Ctrl+C on the terminal nor a kill of llmtop's process group ends it first.

The server's output goes through it (a pipe, redacted line by line into ``server.log``) rather
than through a reader thread in llmtop: that thread would take the GIL from the event loop
that timestamps tokens (vLLM logs a line per request), and would die with llmtop while the
server goes on writing. A redaction pass over the file afterwards would leave the key on disk
for the whole run, and for good after a ``kill -9``.

The protocol (llmtop's side is ``Watchdog``): ``python -P -m engine.servers.watchdog PGID
LOG_FD LOG_PATH GRACE_S``, with the server's output pipe open as ``LOG_FD``. The first line on
stdin is a JSON list of values to blank (``engine.redact.known()``; not on the command line,
which every user of the machine can read). A later line ``release`` says llmtop stopped the
server itself: the watchdog writes the rest of the log and exits without signalling anyone.
End-of-file without ``release`` means llmtop is gone.
"""

from __future__ import annotations

import contextlib
import json
import os
import selectors
import signal
import subprocess
import sys
import time
from pathlib import Path

from engine.redact import known, redact, remember

CHUNK_BYTES = 65536
MAX_LINE_BYTES = 65536
"""A line longer than this (a progress bar redrawn with ``\\r``) is written unfinished."""
GROUP_POLL_S = 0.5
"""After the server closed its output: how often to look whether its process group is gone."""
RELEASE_WAIT_S = 5.0
"""How long llmtop waits for the watchdog to finish the log once it released it."""
RELEASE = b"release"


class Watchdog:
    """llmtop's side: start the watchdog for a server's process group, then release it."""

    def __init__(self, pgid: int, log_fd: int, log_path: Path, grace_s: float) -> None:
        """Start watching ``pgid``; ``log_fd`` (the server's output) is copied to the watchdog
        and may be closed by the caller afterwards.
        """
        args = [str(pgid), str(log_fd), str(log_path), repr(grace_s)]
        with open(log_path, "ab") as errors:  # a watchdog's own traceback lands in the log
            self.proc = subprocess.Popen(
                [sys.executable, "-P", "-m", __name__, *args],
                stdin=subprocess.PIPE,
                stdout=subprocess.DEVNULL,
                stderr=errors,
                pass_fds=(log_fd,),
                start_new_session=True,
            )
        assert self.proc.stdin is not None
        self.proc.stdin.write(json.dumps(list(known())).encode() + b"\n")
        self.proc.stdin.flush()

    @property
    def pid(self) -> int:
        """The watchdog's own process id."""
        return self.proc.pid

    def release(self) -> None:
        """The server was stopped by llmtop: let the watchdog finish the log, and wait."""
        stdin = self.proc.stdin
        if stdin is not None:
            # A watchdog already gone (its server ended and its group with it) reads nothing.
            with contextlib.suppress(OSError):
                stdin.write(RELEASE + b"\n")
            with contextlib.suppress(OSError):
                stdin.close()
        try:
            self.proc.wait(RELEASE_WAIT_S)
        except subprocess.TimeoutExpired:  # something outside the group holds the output
            self.proc.kill()
            self.proc.wait()


class _Relay:
    """The server's output into the log file, a line at a time, secrets blanked."""

    def __init__(self, fd: int, path: Path) -> None:
        self.fd = fd
        self.out = open(path, "ab", buffering=0)  # noqa: SIM115 - open for the process's life
        self.pending = b""
        self.open = True

    def pump(self) -> None:
        """Read what is there; at end-of-file write the unfinished line and mark it closed."""
        data = os.read(self.fd, CHUNK_BYTES)
        if not data:
            self._write(self.pending)
            self.pending, self.open = b"", False
            return
        lines, newline, self.pending = (self.pending + data).rpartition(b"\n")
        self._write(lines + newline)
        if len(self.pending) > MAX_LINE_BYTES:
            self._write(self.pending)
            self.pending = b""

    def _write(self, data: bytes) -> None:
        if not data:
            return
        text = redact(data.decode("utf-8", "surrogateescape"))
        try:
            self.out.write(text.encode("utf-8", "surrogateescape"))
        except OSError:  # a full disk must not block the server on a full pipe: drop the line
            pass


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # the id now names someone else's group: not ours to stop
        return False
    return True


def _signal_group(pgid: int, sig: signal.Signals) -> None:
    if _group_alive(pgid):
        try:
            os.killpg(pgid, sig)
        except ProcessLookupError:
            pass


def _stop_group(pgid: int, relay: _Relay, grace_s: float) -> None:
    """SIGTERM the group, keep writing its log, SIGKILL what is left after ``grace_s``."""
    _signal_group(pgid, signal.SIGTERM)
    deadline = time.monotonic() + grace_s
    while _group_alive(pgid) and time.monotonic() < deadline:
        _pump_for(relay, min(0.1, max(0.0, deadline - time.monotonic())))
    _signal_group(pgid, signal.SIGKILL)
    deadline = time.monotonic() + 1.0
    while relay.open and time.monotonic() < deadline:
        _pump_for(relay, 0.1)


def _pump_for(relay: _Relay, timeout_s: float) -> None:
    if not relay.open:
        time.sleep(timeout_s)
        return
    with selectors.DefaultSelector() as one:
        one.register(relay.fd, selectors.EVENT_READ)
        if one.select(timeout_s):
            relay.pump()


def watch(pgid: int, log_fd: int, log_path: Path, grace_s: float) -> None:
    """Relay the log until the server is gone; stop its group if llmtop goes first."""
    relay = _Relay(log_fd, log_path)
    owner = b""
    released = header_read = False
    selector = selectors.DefaultSelector()
    selector.register(sys.stdin.fileno(), selectors.EVENT_READ, "owner")
    while True:
        busy = relay.open or not header_read
        for key, _ in selector.select(None if busy else GROUP_POLL_S):
            if key.data == "log":
                relay.pump()
                if not relay.open:
                    selector.unregister(log_fd)
                continue
            data = os.read(key.fd, 4096)
            if not data:  # llmtop is gone
                _stop_group(pgid, relay, grace_s)
                return
            owner += data
            while b"\n" in owner:
                line, _, owner = owner.partition(b"\n")
                if not header_read:
                    # The values to blank come before any log line is written.
                    remember(*json.loads(line))
                    header_read = True
                    selector.register(log_fd, selectors.EVENT_READ, "log")
                elif line == RELEASE:
                    released = True
                    selector.unregister(key.fd)
        if released and not relay.open:
            return
        if header_read and not relay.open and not _group_alive(pgid):
            return


def main(argv: list[str]) -> None:
    """``python -m engine.servers.watchdog PGID LOG_FD LOG_PATH GRACE_S``."""
    # Its own session already keeps the terminal's Ctrl+C away; a stray SIGINT must not end
    # it either while the server runs.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    pgid, log_fd, log_path, grace_s = int(argv[0]), int(argv[1]), Path(argv[2]), float(argv[3])
    watch(pgid, log_fd, log_path, grace_s)


if __name__ == "__main__":
    main(sys.argv[1:])
