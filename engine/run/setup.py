"""What a run prepares before it sends: the open-file limit its connections need, the
request fields that make each kind of server generate exactly ``max_tokens`` tokens, and the
HTTP client itself.
"""

from __future__ import annotations

from typing import Any

from engine.events import EventBus, NoticeRaised
from engine.http.client import ServerQuirks, StreamingClient
from engine.run.config import RunConfig

FD_HEADROOM = 256
"""Descriptors kept free beyond one socket per connection: results files, logs, the UI."""
EXACT_OUTPUT_FIELDS = {
    "vllm": ("ignore_eos", "min_tokens"),
    "llama.cpp": ("ignore_eos",),
    "sglang": ("ignore_eos",),
}
"""Request fields that make each server generate exactly max_tokens tokens. Unknown servers
get ``ignore_eos`` (dropped if rejected); ``exact_output_honoured`` records the outcome."""


def initial_quirks(server_kind: str, features: dict[str, Any] | None) -> ServerQuirks:
    """Request fields to start with: by server kind, then trimmed to what the probes showed.

    A field a probe saw rejected is never sent; ``min_tokens`` is added where a probe showed
    it honoured even if the kind is not known for it.
    """
    fields = list(EXACT_OUTPUT_FIELDS.get(server_kind, ("ignore_eos",)))
    features = features or {}
    for name in ("ignore_eos", "min_tokens"):
        if features.get(name) is False and name in fields:
            fields.remove(name)
        elif features.get(name) is True and name not in fields:
            fields.append(name)
    return ServerQuirks(
        stream_usage=features.get("stream_usage") is not False, exact_output_fields=tuple(fields)
    )


def ensure_open_files(connections: int) -> str | None:
    """Raise the soft ``RLIMIT_NOFILE`` so ``connections`` sockets fit; a notice if they cannot.

    Many systems start processes with a soft limit of 1024: without this, a run at 1024
    streams fails most connects with EMFILE (bench/RESULTS.md).
    """
    try:
        import resource
    except ImportError:  # Windows has no such limit
        return None
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = connections + FD_HEADROOM
    if soft == resource.RLIM_INFINITY or soft >= want:
        return None
    target = want if hard == resource.RLIM_INFINITY else min(want, hard)
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    except (ValueError, OSError) as exc:
        return f"could not raise the open-file limit from {soft} to {target}: {exc}"
    if target < want:
        return (
            f"the open-file limit ({hard}) is too low for {connections} connections; "
            f"raise it (ulimit -n) or lower the concurrency"
        )
    return None


def make_client(
    config: RunConfig, connections: int, quirks: ServerQuirks, bus: EventBus
) -> StreamingClient:
    """The run's HTTP client with ``connections`` pooled connections."""
    api_key, basic_auth = config.credentials()
    return StreamingClient(
        config.url,
        max_connections=connections,
        api_key=api_key,
        basic_auth=basic_auth,
        connect_timeout_s=config.connect_timeout_s,
        stall_timeout_s=config.stall_timeout_s,
        quirks=quirks,
        on_notice=lambda m: bus.publish(NoticeRaised("warning", m)),
    )
