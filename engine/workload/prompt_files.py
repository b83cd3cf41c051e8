"""Prompts from a user's file: JSONL of prompts or chat messages, or a ShareGPT JSON file.

Accepted shapes:

* ``.jsonl``, one object per line: ``{"prompt": "..."}`` (or ``"text"``), or
  ``{"messages": [{"role": "user", "content": "..."}, ...]}``;
* ``.json`` in ShareGPT form: a list of ``{"conversations": [{"from": "human", "value": ...},
  {"from": "gpt", ...}, ...]}``; each conversation's first human turn is the prompt.

The file is read once per run; at most ``MAX_PROMPTS`` entries are kept.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from engine.errors import InputError
from engine.workload.files import read_text

MAX_PROMPTS = 100_000


class PromptFileError(InputError):
    """A prompt file that cannot be used; the message names the file, the line and the rule."""


@dataclass(frozen=True)
class FilePrompt:
    """One prompt from a file: chat messages (text prompts become one user message)."""

    messages: tuple[dict[str, str], ...]

    @property
    def text(self) -> str:
        """The messages' contents joined, for the completions endpoint."""
        return "\n\n".join(m["content"] for m in self.messages)


def load_prompts(path: str | Path) -> list[FilePrompt]:
    """Read every prompt in ``path``; errors name the file and the line."""
    path = Path(path)
    raw = read_text(path, "prompt file", PromptFileError)
    prompts = _sharegpt(path, raw) if path.suffix == ".json" else _jsonl(path, raw)
    if not prompts:
        raise PromptFileError(f"{path}: no prompts found")
    return prompts[:MAX_PROMPTS]


def _jsonl(path: Path, raw: str) -> list[FilePrompt]:
    out = []
    for number, line in enumerate(raw.splitlines(), 1):
        if not line.strip():
            continue
        try:
            entry = json.loads(line)
        except json.JSONDecodeError as exc:
            raise PromptFileError(f"{path}:{number}: not JSON: {exc}") from None
        out.append(_entry(path, number, entry))
    return out


def _entry(path: Path, number: int, entry: Any) -> FilePrompt:
    if isinstance(entry, dict) and isinstance(entry.get("messages"), list):
        messages = tuple(
            {"role": str(m.get("role", "user")), "content": str(m.get("content"))}
            for m in entry["messages"]
            if isinstance(m, dict) and m.get("content")
        )
        if messages:
            return FilePrompt(messages)
    text = entry.get("prompt", entry.get("text")) if isinstance(entry, dict) else None
    if isinstance(text, str) and text:
        return FilePrompt(({"role": "user", "content": text},))
    raise PromptFileError(
        f'{path}:{number}: expected {{"prompt": ...}}, {{"text": ...}} or {{"messages": [...]}}'
    )


def _sharegpt(path: Path, raw: str) -> list[FilePrompt]:
    try:
        data = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise PromptFileError(f"{path}: not JSON: {exc}") from None
    if not isinstance(data, list):
        raise PromptFileError(f"{path}: a ShareGPT file is a JSON list of conversations")
    out = []
    for item in data:
        turns = item.get("conversations") if isinstance(item, dict) else None
        first = next(
            (
                t.get("value")
                for t in turns or []
                if isinstance(t, dict) and t.get("from") in ("human", "user") and t.get("value")
            ),
            None,
        )
        if first:
            out.append(FilePrompt(({"role": "user", "content": str(first)},)))
    return out
