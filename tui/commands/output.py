"""Where a command will write, checked before it does any work: ``run --output`` before a
server is started or a request sent, ``report -o``/``--csv`` and ``export --output`` before
anything is read or drawn. A path that cannot be written is bad input: one line naming it
and the operating system's reason, exit code 2.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from engine.errors import InputError

PROBE_PREFIX = ".llmtop-check-"
"""Name of the empty folder made and removed to prove a folder is writable."""


class OutputPathError(InputError):
    """A folder or file the command was told to write cannot be written."""


def writable_folder(folder: Path, option: str, given: Path | None = None) -> None:
    """Raise ``OutputPathError`` unless ``folder`` exists or can be created, and new entries
    can be made in it; messages name ``option`` and ``given`` (default ``folder``).

    The check makes and removes an empty folder in the nearest existing one: permission bits
    cannot tell (root ignores them, while /proc or a read-only mount still refuse).
    """
    given = given or folder
    existing = folder
    try:
        while not existing.exists() and existing != existing.parent:
            existing = existing.parent
    except OSError as exc:
        raise OutputPathError(
            f"{option} {given}: cannot reach {existing}: {exc.strerror}"
        ) from None
    if not existing.is_dir():
        which = "it" if existing == given else str(existing)
        raise OutputPathError(f"{option} {given}: {which} is a file, not a folder")
    try:
        os.rmdir(tempfile.mkdtemp(prefix=PROBE_PREFIX, dir=existing))
    except OSError as exc:
        raise OutputPathError(
            f"{option} {given}: cannot write in {existing}: {exc.strerror}"
        ) from None


def writable_file(path: Path, option: str) -> None:
    """Raise ``OutputPathError`` unless ``path`` can be written as a file."""
    if path.is_dir():
        raise OutputPathError(f"{option} {path} is a folder: give a file name, e.g. report.html")
    writable_folder(path.parent, option, given=path)
