"""The recorded runs in tests/data/runs, and damaged copies of them."""

from __future__ import annotations

import gzip
import shutil
from pathlib import Path

from tests.support.paths import DATA

RUNS = DATA / "runs"
LADDER = "20261121-080817-4fc2"
"""A real c=1,2,4 ladder, 5 requests per step."""
BASE = "20261121-080833-9950"
"""quick, 10 requests at c=4, llama-server with 4 slots."""
SLOW = "20261121-080842-8fc7"
"""The same with 1 slot: requests queue, TTFT grows."""
KILLED = "20261121-080858-3bbd"
"""kill -9 mid-run: no summary.json, the last line cut in half."""


def copy_run(name: str, root: Path, *, plain: bool = False) -> Path:
    """Copy a recorded run under ``root``; ``plain`` un-gzips its jsonl files."""
    target = root / name
    shutil.copytree(RUNS / name, target)
    if plain:
        for packed in target.glob("*.jsonl.gz"):
            packed.with_suffix("").write_bytes(gzip.decompress(packed.read_bytes()))
            packed.unlink()
    return target
