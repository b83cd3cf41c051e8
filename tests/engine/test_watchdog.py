"""The server's watchdog (engine/servers/watchdog.py): the log it writes, and the group it
stops when its owner's pipe closes as a dying llmtop's would."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

from engine import redact
from engine.servers.watchdog import Watchdog

KEY = "sk-watchdog-test-7e21"


def serve(script: str, log: Path, grace_s: float = 0.5) -> tuple[subprocess.Popen, Watchdog]:
    """``sh -c script`` as ServerProcess starts a server: own session, output to a watchdog."""
    output, server_end = os.pipe()
    server = subprocess.Popen(
        ["sh", "-c", script], stdout=server_end, stderr=subprocess.STDOUT, start_new_session=True
    )
    os.close(server_end)
    watchdog = Watchdog(server.pid, output, log, grace_s)
    os.close(output)
    return server, watchdog


def test_a_released_watchdog_writes_the_whole_log_blanked_and_signals_nobody(tmp_path):
    redact.remember(KEY)
    log = tmp_path / "server.log"
    server, watchdog = serve(f"echo using {KEY}; sleep 0.2; printf 'last words'", log)
    assert server.wait(10) == 0
    watchdog.release()
    assert watchdog.proc.returncode == 0
    assert log.read_text() == "using ***\nlast words"


def test_when_its_owner_is_gone_the_whole_group_is_stopped_sigkill_after_the_grace(tmp_path):
    log = tmp_path / "server.log"
    # The shell and its child sleep both ignore SIGTERM, as a stuck server would.
    server, watchdog = serve("trap '' TERM; echo up; sleep 60 & wait", log, grace_s=0.5)
    deadline = time.monotonic() + 10
    while "up" not in log.read_text() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert watchdog.proc.stdin is not None
    watchdog.proc.stdin.close()  # what the kernel does when llmtop dies
    assert server.wait(10) == -signal.SIGKILL
    assert watchdog.proc.wait(10) == 0
    assert log.read_text() == "up\n"
