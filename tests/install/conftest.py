"""The install check's fixtures: llmtop's wheel and sdist built once per session as a release
builds them (``python -m build``: the sdist, then the wheel from the sdist), and that wheel
installed into fresh environments outside the checkout, as pipx and ``uv tool`` do.

Commands of an installed llmtop run from a folder outside the checkout, with no
``PYTHONPATH`` but the audit hook of ``no_checkout.py`` (any read of the checkout fails them).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.support.paths import ROOT

pytestmark = pytest.mark.install

BUILD_TIMEOUT_S = 300
"""Building and installing fetch setuptools and llmtop's dependencies from the index."""
COMMAND_TIMEOUT_S = 60
PYTHON = os.path.realpath(sys.executable)
"""The interpreter under the checkout's venv: new environments must not start from that venv."""
LEFT_OUT = ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV", "OPENAI_BASE_URL", "OPENAI_API_BASE")


@dataclass(frozen=True)
class Dist:
    """What ``python -m build`` made."""

    wheel: Path
    sdist: Path


@dataclass(frozen=True)
class Installed:
    """An llmtop installed from the wheel: ``how`` (``pip`` or ``uv tool``), its console
    script, and a working folder outside the checkout."""

    how: str
    llmtop: Path
    home: Path

    def run(
        self, *args: str, env: dict[str, str] | None = None
    ) -> subprocess.CompletedProcess[str]:
        """``llmtop ARGS`` as a user runs it, under the audit hook."""
        return subprocess.run(
            [str(self.llmtop), *args],
            capture_output=True,
            text=True,
            timeout=COMMAND_TIMEOUT_S,
            cwd=self.home,
            env={**outside_env(self.home), **(env or {})},
        )


def outside_env(home: Path) -> dict[str, str]:
    """This process's environment without whatever points into the checkout or its venv,
    plus the audit hook (``no_checkout.py`` as ``sitecustomize``)."""
    hook = home / "hook"
    hook.mkdir(exist_ok=True)
    shutil.copy(Path(__file__).with_name("no_checkout.py"), hook / "sitecustomize.py")
    env = {k: v for k, v in os.environ.items() if k not in LEFT_OUT}
    path = [p for p in env.get("PATH", "").split(os.pathsep) if not p.startswith(str(ROOT))]
    return env | {
        "PATH": os.pathsep.join(path),
        "PYTHONPATH": str(hook),
        "LLMTOP_CHECKOUT": str(ROOT),
    }


def run(argv: Sequence[str | Path], cwd: Path, env: dict[str, str] | None = None) -> str:
    """Run a build or install step; its output is the failure message."""
    done = subprocess.run(
        [str(a) for a in argv],
        capture_output=True,
        text=True,
        timeout=BUILD_TIMEOUT_S,
        cwd=cwd,
        env=env,
    )
    assert done.returncode == 0, f"{argv[:4]} failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return done.stdout


@pytest.fixture(scope="session")
def dist(tmp_path_factory: pytest.TempPathFactory) -> Dist:
    out = tmp_path_factory.mktemp("dist")
    run([sys.executable, "-m", "build", "--outdir", out, ROOT], cwd=out)
    (wheel,) = out.glob("llmtop-*.whl")
    (sdist,) = out.glob("llmtop-*.tar.gz")
    return Dist(wheel, sdist)


@pytest.fixture(scope="session", params=["pip", "uv tool"])
def installed(
    request: pytest.FixtureRequest, dist: Dist, tmp_path_factory: pytest.TempPathFactory
) -> Installed:
    home = tmp_path_factory.mktemp(request.param.replace(" ", "-"))
    env = {k: v for k, v in os.environ.items() if k not in LEFT_OUT}
    if request.param == "pip":
        # What pipx does: a venv of its own, pip installs the wheel and its dependencies.
        run([PYTHON, "-m", "venv", home / "venv"], cwd=home, env=env)
        pip = [home / "venv" / "bin" / "python", "-m", "pip", "install", "--quiet"]
        run([*pip, dist.wheel], cwd=home, env=env)
        return Installed("pip", home / "venv" / "bin" / "llmtop", home)
    uv = shutil.which("uv", path=str(Path(sys.executable).parent))
    if uv is None:
        pytest.skip("uv is not installed (it comes with the dev extra)")
    tools = {
        "UV_TOOL_DIR": str(home / "tools"),
        "UV_TOOL_BIN_DIR": str(home / "bin"),
        "UV_PYTHON_DOWNLOADS": "never",  # this machine's Python, never one fetched for it
    }
    run([uv, "tool", "install", "--python", PYTHON, dist.wheel], cwd=home, env=env | tools)
    return Installed("uv tool", home / "bin" / "llmtop", home)
