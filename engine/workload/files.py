"""Reading a person's text files (profiles, suites, prompt files) with one line that says why
one cannot be read: missing, a folder, not permitted, or not UTF-8.
"""

from __future__ import annotations

from importlib.resources.abc import Traversable
from pathlib import Path

from engine.errors import InputError


def read_text(path: Path | Traversable, what: str, error: type[InputError]) -> str:
    """The file's text, read as UTF-8 (TOML is UTF-8 by definition, and JSON as sent is UTF-8,
    so the locale's encoding is never guessed); ``error`` names ``path`` and the reason.
    """
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise error(f"{path}: no such {what}") from None
    except UnicodeDecodeError as exc:
        # Not an OSError: without this clause it reached the user as a traceback.
        byte = exc.object[exc.start]
        raise error(
            f"{path}: not UTF-8 text (byte 0x{byte:02x} at offset {exc.start}): "
            f"save the {what} as UTF-8"
        ) from None
    except OSError as exc:
        raise error(f"{path}: cannot read the {what}: {exc.strerror or exc}") from None
