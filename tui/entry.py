"""The ``llmtop`` console script: before anything imports ``engine``, make sure the import
packages ``engine`` and ``tui`` are llmtop's own; then answer a shell's completion request
(``llmtop completion``) or hand over to tui/cli.py.

llmtop's wheel installs two top-level packages with generic names (fixed by the design). An
``engine`` from elsewhere earlier on the path, or another distribution installed into the same
folder, would make llmtop fail far from the cause; this says so in one line instead. An
environment of llmtop's own (``pipx``, ``uv tool``) keeps it from happening.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import os
import sys
from pathlib import Path

DISTRIBUTION = "llmtop"
IMPORT_PACKAGES = ("engine", "tui")
"""The top-level names llmtop's wheel installs, and nothing else (tests/install checks it)."""
CONFLICT_EXIT = 1
"""``ExitCode.FAILED``, written out: ``engine.errors`` may be the foreign one here."""
INTERRUPTED_EXIT = 130
"""``ExitCode.INTERRUPTED``, written out for the same reason."""
ISOLATE = (
    "llmtop's import packages have the generic names engine and tui: install it in an "
    "environment of its own (pipx install ..., uv tool install ...; README.md, Set-up)"
)


def main() -> int:
    """Entry point of the ``llmtop`` console script; returns the exit code."""
    try:
        return _start()
    except KeyboardInterrupt:
        # Ctrl+C while Python is still loading llmtop (a second or more on a busy machine):
        # the one line tui/cli.py gives once loaded, not a traceback through the imports.
        print("llmtop: interrupted", file=sys.stderr)
        return INTERRUPTED_EXIT


def _start() -> int:
    conflict = package_conflict()
    if conflict:
        print(f"llmtop: cannot start: {conflict}; {ISOLATE}", file=sys.stderr)
        return CONFLICT_EXIT
    if "_ARGCOMPLETE" in os.environ:  # the shell asks for completions (`llmtop completion`)
        return _complete()
    from tui.cli import main as cli_main

    return cli_main()


def package_conflict() -> str | None:
    """Why ``engine`` is not llmtop's own here, or ``None`` when it is.

    Two ways it can go wrong: another ``engine`` comes first on the path (it is then not the
    folder beside this ``tui``), or another distribution put files into the same folders
    (its metadata then names ``engine`` or ``tui`` as well).
    """
    ours = Path(__file__).resolve().parent.parent
    spec = importlib.util.find_spec("engine")
    origin = Path(spec.origin).resolve() if spec is not None and spec.origin else None
    if origin != ours / "engine" / "__init__.py":
        found = f"imports from {origin.parent}" if origin else "is missing"
        return f"the package 'engine' {found}, not from beside llmtop's tui ({ours})"
    others = _other_owners()
    if others:
        named = "; ".join(f"'{name}' by {', '.join(dists)}" for name, dists in others.items())
        return f"another distribution installed llmtop's packages too: {named}"
    return None


def _other_owners() -> dict[str, list[str]]:
    """Other installed distributions that ship ``engine`` or ``tui``, by package name.

    Reads each distribution's ``top_level.txt`` or, where it has none, the first folder of
    each ``RECORD`` line: ``importlib.metadata.packages_distributions()`` does the same for
    every file and costs ~300 ms on 2 cores; this costs ~10 ms.
    """
    owners: dict[str, list[str]] = {}
    for dist in importlib.metadata.distributions():
        names = dist.read_text("top_level.txt")
        if names is None:
            record = dist.read_text("RECORD") or ""
            names = "\n".join(line.split("/", 1)[0] for line in record.splitlines() if "/" in line)
        for name in set(names.split()) & set(IMPORT_PACKAGES):
            if dist.metadata["Name"] != DISTRIBUTION:
                owners.setdefault(name, []).append(dist.metadata["Name"])
    return owners


def _complete() -> int:
    """Hand the completions argcomplete works out from the parser to the shell.

    argcomplete exits the process itself; the return is there so that a completion request
    can never fall through to running a command.
    """
    import argcomplete

    from tui.parser import build_parser

    argcomplete.autocomplete(build_parser())
    return CONFLICT_EXIT
