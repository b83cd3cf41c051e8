"""Build step: the wheel records the git commit it was built from, for ``llmtop --version``.

Everything else about the build is declared in pyproject.toml. The commit goes into
``tui/build-commit.txt`` of the built package (tui/commands/about.py reads it). An sdist
carries it in ``BUILD_COMMIT`` at its root, so that a wheel built from the sdist, as
``python -m build`` builds it, still knows it. Built without git: no commit, no file.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py
from setuptools.command.sdist import sdist

ROOT = Path(__file__).resolve().parent
CARRIED = "BUILD_COMMIT"
RECORDED = Path("tui", "build-commit.txt")


def built_from() -> str | None:
    """The checkout's commit (``-dirty`` with uncommitted changes), else the sdist's."""
    # Only a checkout's own .git: git would otherwise answer for a repository around an
    # unpacked sdist (a home folder under git, say) with a commit that is not llmtop's.
    if (ROOT / ".git").exists():
        try:
            done = subprocess.run(
                ["git", "-C", str(ROOT), "describe", "--always", "--dirty", "--abbrev=12"],
                capture_output=True,
                text=True,
                timeout=30,
            )
        except (OSError, subprocess.SubprocessError):
            done = None
        if done is not None and done.returncode == 0 and done.stdout.strip():
            return done.stdout.strip()
    carried = ROOT / CARRIED
    if not carried.is_file():
        return None
    return carried.read_text().strip() or None


class BuildPy(build_py):
    """``build_py`` that adds the commit to the built ``tui`` package."""

    def run(self) -> None:
        """Build as setuptools does, then write the commit beside ``tui/__init__.py``."""
        super().run()
        commit = built_from()
        # An editable install runs the checkout itself; about.py asks git there instead.
        if commit and not self.editable_mode:
            Path(self.build_lib, RECORDED).write_text(commit + "\n")


class Sdist(sdist):
    """``sdist`` that carries the commit for the wheel built from it."""

    def make_release_tree(self, base_dir: str, files: list[str]) -> None:
        """Lay out the sdist as setuptools does, then add ``BUILD_COMMIT``."""
        super().make_release_tree(base_dir, files)
        commit = built_from()
        if commit:
            Path(base_dir, CARRIED).write_text(commit + "\n")


setup(cmdclass={"build_py": BuildPy, "sdist": Sdist})
