"""llmtop as people install it (the wheel into a venv of its own with pip, as pipx does, and
with ``uv tool install``), run from outside the checkout: every command here fails if the
installed tool reads a file of the source tree (tests/install/no_checkout.py)."""

from __future__ import annotations

import json

import pytest

from engine.workload.profile import builtin_names
from engine.workload.suite import builtin_suites
from tests.support.paths import ROOT, checkout_commit

pytestmark = pytest.mark.install

READ_THE_CHECKOUT = 97
"""no_checkout.py's exit code (importing it here would hook this process)."""


def test_version_names_the_commit_it_was_built_from(installed):
    result = installed.run("--version")
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[0] == f"llmtop 0.1.0 (commit {checkout_commit()})"


def test_profiles_lists_every_builtin_profile_and_suite(installed):
    result = installed.run("profiles")
    assert result.returncode == 0, result.stderr
    words = [line.split() for line in result.stdout.splitlines()]
    assert [w[1] for w in words if w[0] == "suite"] == builtin_suites()
    assert [w[0] for w in words if w[0] != "suite"] == builtin_names()


def test_dry_run_of_the_default_profile(installed):
    result = installed.run("run", "--dry-run")
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("quick: c=4, 24 measured request(s) after 4 warm-up")


def test_doctor_shows_the_installed_packages(installed):
    result = installed.run("doctor")
    assert result.returncode == 0, result.stderr
    packages = next(line for line in result.stdout.splitlines() if line.startswith("packages:"))
    assert str(installed.home) in packages


def test_a_real_run_against_the_fake_server(installed, fake_server):
    result = installed.run(
        "run",
        "--url",
        fake_server.url,
        "--profile",
        "quick",
        "--requests",
        "3",
        "--warmup",
        "1",
        "--max-tokens",
        "4",
        "--no-ui",
        "--output",
        str(installed.home / "results"),
    )
    assert result.returncode == 0, result.stderr
    (summary,) = (installed.home / "results").glob("*/summary.json")
    profile = json.loads(summary.read_text())["profiles"][0]
    assert profile["profile"] == "quick" and profile["successes"] == 3


def test_the_audit_hook_catches_a_read_of_the_checkout(installed):
    # The check of the checks: a profile given by path inside the checkout is a read there.
    result = installed.run("run", "--dry-run", "--profile", str(ROOT / "profiles" / "quick.toml"))
    assert result.returncode == READ_THE_CHECKOUT
    assert f"open {ROOT / 'profiles' / 'quick.toml'}" in result.stderr
