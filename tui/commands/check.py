"""``llmtop check``: what serves at a URL, and which request features it honours."""

from __future__ import annotations

import asyncio
import json
import sys

from rich.console import Console
from rich.table import Table
from rich.text import Text

from engine.http.detect import ServerInfo, ServerUnreachable, detect, normalize_url
from engine.http.features import Features, check_report, probe_features

EXIT_OK, EXIT_UNREACHABLE, EXIT_USAGE = 0, 1, 2
_VERDICT = {True: "yes", False: "no", None: "unknown"}
_FEATURE_LABELS = (
    ("stream_usage", "usage in stream"),
    ("ignore_eos", "ignore_eos"),
    ("min_tokens", "min_tokens"),
    ("max_completion_tokens", "max_completion_tokens"),
    ("reasoning", "reasoning deltas"),
    ("thinking_switch", "thinking switch"),
)


def check_command(url: str | None, model: str | None, api_key: str | None, as_json: bool) -> int:
    """Detect the server at ``url``, probe its features on ``model`` and print the result.

    Returns 0 when the server answered, 1 when it is unreachable, 2 for a usage error (no URL,
    an invalid URL, a model it does not serve).
    """
    # Imported here: tui.session imports tui.cli, which may import this module.
    from tui.cli import UsageError
    from tui.commands.run import _choose_model

    if not url:
        print(
            "llmtop check: error: pass --url URL (e.g. --url http://127.0.0.1:8000)",
            file=sys.stderr,
        )
        return EXIT_USAGE
    try:
        url = normalize_url(url)
    except ValueError as exc:
        print(f"llmtop check: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    try:
        info = asyncio.run(detect(url, api_key))
    except ServerUnreachable as exc:
        print(f"llmtop check: unreachable: {exc}", file=sys.stderr)
        return EXIT_UNREACHABLE
    try:
        chosen = _choose_model(model, info)
    except UsageError as exc:
        print(f"llmtop check: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    features = asyncio.run(probe_features(url, chosen, api_key))
    if as_json:
        report = check_report(info, features)
        report["model"] = chosen
        print(json.dumps(report, indent=2))
    else:
        Console().print(_table(info, chosen, features))
    return EXIT_OK


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
