"""Small builders the engine tests share: a profile with test defaults, an event collector."""

from __future__ import annotations

from typing import Any

from engine.workload.profile import Profile, validate_profile


def make_profile(**fields: Any) -> Profile:
    """A small closed-loop profile; ``fields`` override the defaults."""
    data: dict[str, Any] = {
        "name": "t",
        "concurrency": 1,
        "requests": 4,
        "max_tokens": 5,
        "input_tokens": 8,
    }
    if "rate_rps" in fields:
        del data["concurrency"]
    data.update(fields)
    return validate_profile(data, source="test")


class Collect:
    """An event sink that keeps the events (of ``kind`` only, when given) in ``into``."""

    def __init__(self, into: list, kind: type | None = None) -> None:
        self.into, self.kind = into, kind

    def handle(self, event: Any) -> None:
        if self.kind is None or isinstance(event, self.kind):
            self.into.append(event)
