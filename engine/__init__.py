"""llmtop's measurement engine: no UI code, importable headless.

What another front end or a notebook needs is named here (``__all__``): build a
``RunConfig`` from profiles, run it with ``Engine``, read run folders back with
``load_run``, compare them with ``compare_runs``. The names load on first use, so importing
one engine module does not import the whole engine (and NumPy behind the comparisons)::

    from engine import Engine, RunConfig, compare_runs, load_profile, load_run
    config = RunConfig(url=URL, model=MODEL, profiles=[load_profile("quick")], results_root=ROOT)
    summary = asyncio.run(Engine(config).run())
    run = load_run(ROOT / summary.run_id)

The sub-packages are layers (each imports only those below it, checked by import-linter):
``run``, ``analysis`` and ``servers`` on top, then ``results``, then ``http`` and
``telemetry``, then ``metrics``, then ``workload``, then the shared modules here at the root
(``events``, ``records``, ``stats``, ``errors``, ``redact``: the one rule for secrets).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

_EXPORTS = {
    "Engine": "engine.run.engine",
    "RunConfig": "engine.run.config",
    "TelemetryConfig": "engine.telemetry.config",
    "Profile": "engine.workload.profile",
    "load_profile": "engine.workload.profile",
    "validate_profile": "engine.workload.profile",
    "load_suite": "engine.workload.suite",
    "Slo": "engine.metrics.summary",
    "RunSummary": "engine.metrics.summary",
    "ProfileSummary": "engine.metrics.summary",
    "RequestRecord": "engine.records",
    "EventBus": "engine.events",
    "load_run": "engine.results.runs",
    "discover_runs": "engine.results.runs",
    "RunInfo": "engine.results.runs",
    "compare_runs": "engine.analysis.compare",
    "Comparison": "engine.analysis.compare",
    "ExitCode": "engine.errors",
    "InputError": "engine.errors",
    "RunError": "engine.errors",
}
"""Each public name and the module that defines it."""

__all__ = [
    "Comparison",
    "Engine",
    "EventBus",
    "ExitCode",
    "InputError",
    "Profile",
    "ProfileSummary",
    "RequestRecord",
    "RunConfig",
    "RunError",
    "RunInfo",
    "RunSummary",
    "Slo",
    "TelemetryConfig",
    "__version__",
    "compare_runs",
    "discover_runs",
    "load_profile",
    "load_run",
    "load_suite",
    "validate_profile",
]


def __getattr__(name: str) -> Any:
    """Import a public name's module the first time the name is used (PEP 562)."""
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'engine' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


if TYPE_CHECKING:
    from engine.analysis.compare import Comparison, compare_runs
    from engine.errors import ExitCode, InputError, RunError
    from engine.events import EventBus
    from engine.metrics.summary import ProfileSummary, RunSummary, Slo
    from engine.records import RequestRecord
    from engine.results.runs import RunInfo, discover_runs, load_run
    from engine.run.config import RunConfig
    from engine.run.engine import Engine
    from engine.telemetry.config import TelemetryConfig
    from engine.workload.profile import Profile, load_profile, validate_profile
    from engine.workload.suite import load_suite
