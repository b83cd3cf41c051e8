"""Where the tests find the repository and their recorded data, and which commit it is."""

import subprocess
from pathlib import Path

TESTS = Path(__file__).resolve().parents[1]
ROOT = TESTS.parent
"""The repository root."""
DATA = TESTS / "data"
"""Recorded streams, metrics captures and run folders (each subfolder's README says whence)."""


def checkout_commit() -> str:
    """``git describe`` of this checkout, as llmtop names its build (``-dirty`` included)."""
    return subprocess.run(
        ["git", "describe", "--always", "--dirty", "--abbrev=12"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
