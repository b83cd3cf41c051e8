"""What the wheel and sdist hold: exactly llmtop's own files under the two import packages
``engine`` and ``tui``, the built-in profiles and suites from the root ``profiles/`` folder,
and the commit they were built from."""

from __future__ import annotations

import tarfile
import tomllib
import zipfile
from pathlib import Path

import pytest

from tests.support.paths import ROOT, checkout_commit
from tui.entry import IMPORT_PACKAGES

pytestmark = pytest.mark.install

BUILTIN = "engine/workload/builtin"
"""Where pyproject maps ``profiles/`` in the installed engine."""


def source_files() -> set[str]:
    """The files the wheel must carry, as paths inside it."""
    shipped = {
        p.relative_to(ROOT).as_posix()
        for package in IMPORT_PACKAGES
        for pattern in ("*.py", "*.tcss")
        for p in (ROOT / package).rglob(pattern)
        if "__pycache__" not in p.parts
    }
    profiles = ROOT / "profiles"
    shipped |= {
        f"{BUILTIN}/{p.relative_to(profiles).as_posix()}"
        for p in [*profiles.rglob("*.toml"), profiles / "__init__.py"]
    }
    return shipped


def wheel_names(dist) -> list[str]:
    with zipfile.ZipFile(dist.wheel) as wheel:
        return wheel.namelist()


def test_the_wheel_installs_only_engine_and_tui(dist):
    top = {name.split("/", 1)[0] for name in wheel_names(dist)}
    (info,) = [name for name in top if name.endswith(".dist-info")]
    assert top - {info} == set(IMPORT_PACKAGES)
    with zipfile.ZipFile(dist.wheel) as wheel:
        assert wheel.read(f"{info}/top_level.txt").decode().split() == list(IMPORT_PACKAGES)


def test_the_wheel_carries_every_module_profile_and_suite_and_nothing_else(dist):
    files = {name for name in wheel_names(dist) if ".dist-info/" not in name}
    assert files - {"tui/build-commit.txt"} == source_files()


def test_the_wheel_and_sdist_name_the_commit_they_were_built_from(dist):
    with zipfile.ZipFile(dist.wheel) as wheel:
        assert wheel.read("tui/build-commit.txt").decode().strip() == checkout_commit()
    with tarfile.open(dist.sdist) as sdist:
        root = sdist.getnames()[0].split("/", 1)[0]
        names = set(sdist.getnames())
        carried = sdist.extractfile(f"{root}/BUILD_COMMIT")
        assert carried is not None and carried.read().decode().strip() == checkout_commit()
    for toml in (ROOT / "profiles").rglob("*.toml"):
        assert f"{root}/{toml.relative_to(ROOT).as_posix()}" in names


def test_pyproject_lists_every_package_the_source_tree_has():
    # The packages are listed by name (a search would miss the mapped profiles/), so a new
    # folder must be added there; this says which, without building anything.
    listed = set(
        tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"]
    )
    found = {
        ".".join(p.parent.relative_to(ROOT).parts)
        for package in IMPORT_PACKAGES
        for p in (ROOT / package).rglob("__init__.py")
    }
    assert listed - {"engine.workload.builtin", "engine.workload.builtin.suites"} == found
    assert not Path(ROOT, "engine", "workload", "builtin").exists()  # profiles/ is the one copy
