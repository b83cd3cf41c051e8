"""The names of a run folder's files, and of the folder itself: the one place they are set.

A run folder ``<results root>/<run id>/`` holds ``run.json`` (what was asked, where, on what
host), ``requests.jsonl`` (one record per request, in finish order), ``samples.jsonl``
(telemetry on the run's clock), ``summary.json`` (figures, written last; ``running`` while a
run goes on) and, for a server llmtop started, ``server.log`` and, while the server runs,
``server-process.json`` (engine/servers/stale.py: how a later llmtop finds a server that
outlived the llmtop that started it).
"""

from __future__ import annotations

import secrets
import time

RUN_FILE = "run.json"
REQUESTS_FILE = "requests.jsonl"
SAMPLES_FILE = "samples.jsonl"
SUMMARY_FILE = "summary.json"
SERVER_LOG = "server.log"
SERVER_RECORD = "server-process.json"


def new_run_id(now: float | None = None) -> str:
    """``20261121-054210-3fa9``: sortable by time, unique enough to never collide."""
    stamp = time.strftime("%Y%m%d-%H%M%S", time.localtime(now))
    return f"{stamp}-{secrets.token_hex(2)}"
