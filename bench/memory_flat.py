"""Memory against run length: does llmtop's resident memory stay flat over a million requests?

Runs the real ``llmtop run`` command (``--no-ui``, or with the live screen in a pseudo-terminal)
against ``bench.fast_server`` (a zero-delay server in its own process) for ``--requests``
requests, and every ``SAMPLE_S`` reads the resident memory (RSS) of llmtop's process tree
(with the screen: the screen's process and the engine's child) and the number of records in
``requests.jsonl`` (counted incrementally, new bytes only). It reports RSS at each checkpoint
(10k, 100k, 300k, 1M records where reached) and the growth from the first checkpoint to the
last; every sample is kept with ``--json FILE``.

The results folder of a 1M-request run holds ~1 GB of records; it lives in a temporary folder
removed at the end.

Run: ``.venv/bin/python -m bench.memory_flat --requests 100000 [--screen] [--json FILE]``.
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import json
import os
import pty
import shutil
import struct
import subprocess
import sys
import tempfile
import termios
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import IO, Any

import psutil

from bench.engine_ceiling import Server

ROOT = Path(__file__).resolve().parent.parent
SAMPLE_S = 1.0
"""Seconds between two RSS readings."""
CHECKPOINTS = (10_000, 100_000, 300_000, 1_000_000)
"""Record counts at which RSS is reported."""
MAX_TOKENS = 16
"""Output tokens per request: short answers, so requests (not tokens) dominate the count."""
SCREEN_SIZE = (48, 160)
"""Rows and columns of the pseudo-terminal the live screen draws into."""
MIB = 1024 * 1024


@dataclass(frozen=True)
class MemorySample:
    """One reading: time since start, records on disk, RSS of llmtop's processes."""

    t_s: float
    records: int
    rss_mib: float
    processes: int
    by_role: dict[str, float]
    """RSS per process: ``llmtop`` (the command: the screen, or the whole headless run),
    ``engine`` (the engine's child under the screen), ``other``."""


class RecordCounter:
    """Counts lines of a growing ``requests.jsonl`` reading only what was added since."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.count = 0
        self._file: IO[bytes] | None = None

    def update(self) -> int:
        if self._file is None:
            found = sorted(self.root.glob("*/requests.jsonl"))
            if not found:
                return 0
            self._file = found[0].open("rb")
        while chunk := self._file.read(1 << 20):
            self.count += chunk.count(b"\n")
        return self.count

    def close(self) -> None:
        if self._file is not None:
            self._file.close()


def tree_rss_mib(pid: int) -> tuple[float, int, dict[str, float]]:
    """RSS of a process and its children (MiB), how many processes were counted, and RSS by
    role (``llmtop``, ``engine``, ``other``)."""
    try:
        root = psutil.Process(pid)
        processes = [root, *root.children(recursive=True)]
    except psutil.Error:
        return 0.0, 0, {}
    by_role: dict[str, float] = {}
    for process in processes:
        with contextlib.suppress(psutil.Error):
            role = "llmtop" if process.pid == pid else _role(process.cmdline())
            by_role[role] = by_role.get(role, 0.0) + process.memory_info().rss / MIB
    return sum(by_role.values()), len(processes), by_role


def _role(cmdline: list[str]) -> str:
    # The engine is a spawned multiprocessing child; its resource tracker is another one.
    text = " ".join(cmdline)
    return "engine" if "spawn_main" in text else "other"


def command(url: str, requests: int, concurrency: int, output: Path, screen: bool) -> list[str]:
    args = [
        str(ROOT / ".venv" / "bin" / "llmtop"),
        "run",
        "--url",
        url,
        "--requests",
        str(requests),
        "--concurrency",
        str(concurrency),
        "--max-tokens",
        str(MAX_TOKENS),
        "--input-tokens",
        "16",
        "--warmup",
        "0",
        "--no-probe",
        "--sample-hz",
        "1",
        "--output",
        str(output),
    ]
    return args if screen else [*args, "--no-ui"]


def start(args: list[str], screen: bool, log: IO[bytes]) -> subprocess.Popen[bytes]:
    """Start llmtop; with the screen, on a pseudo-terminal whose output is drained to ``log``."""
    if not screen:
        return subprocess.Popen(args, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)
    leader, follower = pty.openpty()
    fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", *SCREEN_SIZE, 0, 0))
    env = {**os.environ, "TERM": "xterm-256color"}
    process = subprocess.Popen(
        args, cwd=ROOT, stdin=follower, stdout=follower, stderr=follower, env=env
    )
    os.close(follower)

    def drain() -> None:
        # The screen blocks once the terminal's buffer is full: read it away (last bytes kept).
        with contextlib.suppress(OSError):
            while data := os.read(leader, 65536):
                log.seek(0)
                log.truncate()
                log.write(data[-4096:])

    threading.Thread(target=drain, daemon=True).start()
    return process


def measure(
    url: str, requests: int, concurrency: int, screen: bool, timeout_s: float
) -> list[MemorySample]:
    """Run llmtop once and read its memory until every record is on disk or time runs out."""
    workdir = Path(tempfile.mkdtemp(prefix="llmtop-memory-"))
    samples: list[MemorySample] = []
    counter = RecordCounter(workdir / "out")
    started = time.monotonic()
    with (workdir / "llmtop.log").open("w+b") as log:
        process = start(command(url, requests, concurrency, workdir / "out", screen), screen, log)
        try:
            while time.monotonic() - started < timeout_s:
                time.sleep(SAMPLE_S)
                rss, count, by_role = tree_rss_mib(process.pid)
                records = counter.update()
                if rss <= 0:  # gone (a zombie reads as nothing): the run ended
                    break
                samples.append(
                    MemorySample(round(time.monotonic() - started, 1), records, rss, count, by_role)
                )
                if records >= requests or process.poll() is not None:
                    break
        finally:
            counter.close()
            if process.poll() is None:
                process.terminate()
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(30)
            if process.poll() is None:
                process.kill()
            shutil.rmtree(workdir, ignore_errors=True)
    return samples


CHECKPOINT_SLACK = 0.99
"""A checkpoint is read from the first sample with 99 % of its records: the last sample of a
run is taken a moment before the process exits, with its last records still in flight."""


def at(samples: list[MemorySample], records: int) -> MemorySample | None:
    """The first sample taken with (nearly) ``records`` records on disk."""
    return next((s for s in samples if s.records >= records * CHECKPOINT_SLACK), None)


def report(samples: list[MemorySample], label: str) -> dict[str, Any]:
    """RSS at each checkpoint reached, and the growth between the first and the last."""
    points = {n: s for n in CHECKPOINTS if (s := at(samples, n)) is not None}
    last = samples[-1] if samples else None
    print(f"{label}: {last.records if last else 0} records in {last.t_s if last else 0:.0f} s")
    for n, s in points.items():
        roles = ", ".join(f"{k} {v:.1f}" for k, v in sorted(s.by_role.items()))
        print(f"  {n:>9,} records: RSS {s.rss_mib:7.1f} MiB at {s.t_s:6.0f} s ({roles})")
    growth = None
    if len(points) >= 2:
        first, final = points[min(points)], points[max(points)]
        growth = final.rss_mib - first.rss_mib
        per_100k = growth / (final.records - first.records) * 100_000
        print(
            f"  growth {min(points):,} -> {max(points):,}: {growth:+.1f} MiB "
            f"({per_100k:+.2f} MiB per 100k requests)"
        )
    peak = max((s.rss_mib for s in samples), default=0.0)
    print(f"  peak RSS {peak:.1f} MiB")
    return {
        "label": label,
        "checkpoints": {str(n): asdict(s) for n, s in points.items()},
        "growth_mib": growth,
        "peak_mib": peak,
        "samples": [asdict(s) for s in samples],
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=100_000)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--screen", action="store_true", help="with the live screen (a pty)")
    parser.add_argument("--timeout", type=float, default=3 * 3600, help="give up after S s")
    parser.add_argument("--json", type=Path, help="write every sample here")
    args = parser.parse_args(argv)
    server = Server("chunked")
    try:
        label = f"{'screen' if args.screen else 'headless'} c={args.concurrency}"
        print(f"{label}: {args.requests:,} requests against {server.url}", flush=True)
        samples = measure(server.url, args.requests, args.concurrency, args.screen, args.timeout)
    finally:
        server.stop()
    result = report(samples, label)
    if args.json:
        args.json.write_text(json.dumps(result, indent=1))
    sys.stdout.flush()


if __name__ == "__main__":
    main()
