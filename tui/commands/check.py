"""``llmtop check``: what serves at a URL, and which request features it honours."""

from __future__ import annotations

import asyncio
import json

from rich.console import Console
from rich.table import Table
from rich.text import Text

from engine.errors import ExitCode, InputError
from engine.http.detect import ServerInfo, choose_model, detect, normalize_url
from engine.http.features import Features, check_report, probe_features

_VERDICT = {True: "yes", False: "no", None: "unknown"}
_FEATURE_LABELS = (
    ("stream_usage", "usage in stream"),
    ("ignore_eos", "ignore_eos"),
    ("min_tokens", "min_tokens"),
    ("max_completion_tokens", "max_completion_tokens"),
    ("reasoning", "reasoning deltas"),
    ("thinking_switch", "thinking switch"),
)


def check_command(
    url: str | None,
    model: str | None,
    api_key: str | None,
    as_json: bool,
    basic_auth: str | None = None,
) -> int:
    """Detect the server at ``url``, probe its features on ``model`` and print the result.

    Raises ``InputError`` (exit 2) without a URL, for an invalid one or a model the server
    does not serve, and ``ServerUnreachable`` (exit 1) when nothing answers.
    """
    if not url:
        raise InputError("pass --url URL (e.g. --url http://127.0.0.1:8000)")
    url = normalize_url(url)
    info = asyncio.run(detect(url, api_key, basic_auth))
    chosen = choose_model(model, info)
    features = asyncio.run(probe_features(url, chosen, api_key, basic_auth))
    if as_json:
        report = check_report(info, features)
        report["model"] = chosen
        print(json.dumps(report, indent=2))
    else:
        Console().print(_table(info, chosen, features))
    return ExitCode.OK


def _table(info: ServerInfo, model: str, features: Features) -> Table:
    table = Table(title=f"llmtop check {info.url}")
    table.add_column("check")
    table.add_column("result", overflow="fold")
    rows = [
        ("server", info.kind + (f" {info.version}" if info.version else "")),
        ("evidence", "; ".join(info.evidence) or "-"),
        ("models", ", ".join(info.models) or "-"),
        ("probed model", model),
    ]
    rows += [(label, _VERDICT[getattr(features, name)]) for name, label in _FEATURE_LABELS]
    rows += [("note", note) for note in features.notes]
    for check, result in rows:
        # Text, not markup: server messages may hold brackets such as "[DONE]".
        table.add_row(Text(check), Text(result))
    return table
