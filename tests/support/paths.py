"""Where the tests find the repository and their recorded data."""

from pathlib import Path

TESTS = Path(__file__).resolve().parents[1]
ROOT = TESTS.parent
"""The repository root."""
DATA = TESTS / "data"
"""Recorded streams, metrics captures and run folders (each subfolder's README says whence)."""
