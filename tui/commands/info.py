"""The small commands: ``llmtop profiles``, ``llmtop gpu``, ``llmtop setup-local`` and
``llmtop completion``."""

from __future__ import annotations

import json
import subprocess
import sys

from engine.errors import ExitCode
from engine.workload.profile import builtin_names, load_profile
from engine.workload.suite import builtin_suites, load_suite


def list_profiles() -> int:
    """Print the built-in suites and profiles, a line each."""
    for name in builtin_suites():
        suite = load_suite(name)
        ladder = f" x c={suite.concurrency_ladder}" if suite.concurrency_ladder else ""
        print(f"suite {name:<12} {', '.join(suite.profiles)}{ladder}  {suite.description}")
    for name in builtin_names():
        p = load_profile(name)
        print(
            f"{name:<18} {p.load_label:<14} in {p.input_label:>9} out "
            f"{p.max_tokens.describe():>7}  {p.stop_label:<12} {p.description}"
        )
    return ExitCode.OK


def gpu_snapshot() -> int:
    """One NVML reading of every GPU, like ``nvidia-smi --query-gpu``."""
    from engine.telemetry.gpu import GpuSampler, snapshot_lines

    sampler = GpuSampler()
    notice = sampler.open()
    if notice:
        print(f"llmtop: {notice}", file=sys.stderr)
        return ExitCode.FAILED
    try:
        print("\n".join(snapshot_lines(sampler.sample())))
    finally:
        sampler.close()
    return ExitCode.OK


def setup_local() -> int:
    """Build or reuse the embedded llama-server and model; print the manifest."""
    from engine.servers.llamacpp_build import ensure_local_server

    try:
        manifest = ensure_local_server()
    except (subprocess.CalledProcessError, OSError, ValueError) as exc:
        print(f"llmtop-setup: failed: {exc}", file=sys.stderr)
        return ExitCode.FAILED
    print(json.dumps(manifest, indent=2))
    return ExitCode.OK


def completion_command(shell: str) -> int:
    """Print the code that makes ``shell`` ask llmtop for completions (see tui/entry.py)."""
    import argcomplete

    print(argcomplete.shellcode(["llmtop"], shell=shell))
    return ExitCode.OK
