"""At 1024 streams a soft open-file limit of 1024 fails most connects: the engine raises it."""

import subprocess
import sys

CODE = """
import resource
from engine.run.setup import ensure_open_files
resource.setrlimit(resource.RLIMIT_NOFILE, ({soft}, {hard}))
print(ensure_open_files(1024))
print(resource.getrlimit(resource.RLIMIT_NOFILE)[0])
"""


def run(soft: int, hard: int) -> list[str]:
    result = subprocess.run(
        [sys.executable, "-c", CODE.format(soft=soft, hard=hard)],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    return result.stdout.splitlines()


def test_soft_limit_is_raised_to_fit_the_connections():
    notice, soft = run(256, 4096)
    assert notice == "None"
    assert int(soft) == 1024 + 256


def test_a_hard_limit_too_low_gives_a_notice_not_a_crash():
    notice, soft = run(256, 600)
    assert "open-file limit (600) is too low for 1024 connections" in notice
    assert int(soft) == 600
