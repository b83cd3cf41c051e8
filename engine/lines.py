"""Append-only JSON-lines files that stay parseable when the disk fills.

Each line goes to the file in one ``os.write`` (looped until complete), so nothing sits in a
user-space buffer that a later flush or ``close`` could half-write. When a write fails (no
space, quota, I/O error) the partial line is cut off again (``ftruncate`` to the last complete
line) and ``WriteFailed`` says how many lines the file holds.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

from engine.errors import WriteFailed


class LineFile:
    """An append-only file of lines: ``write`` one line at a time, ``lines`` counts them."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        self._size = os.fstat(self._fd).st_size
        self.lines = 0
        """Lines written by this object and intact on disk."""
        self.failed: WriteFailed | None = None
        """The failure that closed the file, if one did."""

    def write(self, line: str) -> None:
        """Append ``line`` plus a newline; raises ``WriteFailed`` (once, then silently drops)."""
        if self._fd < 0:
            return
        data = (line + "\n").encode()
        view = memoryview(data)
        try:
            while view:
                view = view[os.write(self._fd, view) :]
        except OSError as exc:
            with contextlib.suppress(OSError):
                os.ftruncate(self._fd, self._size)
            self.failed = WriteFailed(str(self.path), exc, self.lines)
            self.close()
            raise self.failed from exc
        self._size += len(data)
        self.lines += 1

    def close(self) -> None:
        """Close the file (idempotent)."""
        if self._fd >= 0:
            fd, self._fd = self._fd, -1
            with contextlib.suppress(OSError):
                os.close(fd)
