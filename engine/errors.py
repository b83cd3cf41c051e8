"""How llmtop says something went wrong: exit codes and the two error bases.

``InputError`` is bad input (an argument, a profile or prompt file, a run folder, a server
command, a model the server does not serve): one line naming what was wrong and what is
allowed, exit code 2. ``RunError`` is a run that could not start (no server answering, the
embedded server not built, a server that would not become ready): exit code 1. Each module
raises its own subclass; the command line turns them into an exit code in one place
(``tui.cli.main``), so no caller translates one exception into another.
"""

from __future__ import annotations

import errno
from enum import IntEnum


class ExitCode(IntEnum):
    """The process exit codes of ``llmtop``, one table for every command."""

    OK = 0
    """The command did its job; a run completed (failed requests are data, not errors)."""
    FAILED = 1
    """A run could not start or failed (server unreachable, not ready, died mid-run)."""
    USAGE = 2
    """Bad input: arguments, profile or prompt files, run folders, unknown model."""
    WRITE_FAILED = 3
    """The results folder could not be written (disk full, quota, I/O error): the run stopped."""
    INTERRUPTED = 130
    """Ctrl+C, SIGTERM or a hang-up; everything that finished is saved."""


class InputError(ValueError):
    """Bad input: printed as one line, exit code 2. The message names what was wrong and
    what is allowed.
    """

    exit_code = ExitCode.USAGE


class RunError(RuntimeError):
    """A run that could not start or go on: printed as one line, exit code 1."""

    exit_code = ExitCode.FAILED


class WriteFailed(RunError):
    """A results file could not be written: the run stops at once (exit code 3).

    ``saved`` is how many lines the file holds intact (a partial last line is cut off, so
    what is on disk stays parseable).
    """

    exit_code = ExitCode.WRITE_FAILED

    def __init__(self, path: str, error: OSError, saved: int = 0) -> None:
        self.path = path
        self.error = error
        self.saved = saved
        super().__init__(f"{path}: {error.strerror or error}")

    @property
    def disk_full(self) -> bool:
        """No space or no quota left (as opposed to another I/O error)."""
        return self.error.errno in (errno.ENOSPC, errno.EDQUOT)
