"""``llmtop clean``: stop servers an earlier llmtop left running; and the warning ``llmtop
run`` prints about them first (engine/servers/stale.py finds and checks them).
"""

from __future__ import annotations

import shlex
import sys
from pathlib import Path

from engine.errors import ExitCode
from engine.servers.stale import StaleServer, find_stale, stop_stale


def clean_command(root: Path, grace_s: float) -> int:
    """Stop every stale server under ``root``; exit code 1 if one could not be stopped."""
    servers = find_stale(root)
    if not servers:
        print(f"no server left running by an earlier llmtop under {root}")
        return ExitCode.OK
    failed = [server for server in servers if not _stop(server, grace_s)]
    return ExitCode.FAILED if failed else ExitCode.OK


def warn_stale(root: Path, grace_s: float, interactive: bool) -> None:
    """Before a run: say which servers an earlier llmtop left running and how to stop them;
    on a terminal, offer to stop them now."""
    for server in find_stale(root):
        print(f"llmtop: warning: {describe(server)}", file=sys.stderr)
        print(
            f"  it holds its port and any GPU memory. Stop it: `llmtop clean --root "
            f"{shlex.quote(str(root))}` (or `{server.kill_command}`)",
            file=sys.stderr,
        )
        if interactive and _yes("  stop it now? [y/N] "):
            _stop(server, grace_s)


def describe(server: StaleServer) -> str:
    """One line: which process, what it runs, which run started it."""
    record = server.record
    return (
        f"a server started by an llmtop that is gone is still running: pid {record.server.pid}, "
        f"`{shlex.join(record.command)}` (run folder {server.run_dir})"
    )


def _stop(server: StaleServer, grace_s: float) -> bool:
    stopped = stop_stale(server, grace_s)
    verdict = "stopped" if stopped else "could not stop (no longer that process, or not ours)"
    print(f"{verdict}: pid {server.record.server.pid} ({server.run_dir})", file=sys.stderr)
    return stopped


def _yes(question: str) -> bool:
    try:
        return input(question).strip().lower() in ("y", "yes")
    except EOFError:
        return False
