"""The one rule for secrets: what llmtop blanks out of every text it stores or prints that
it did not write itself (server command lines, server output, error messages).

Replaced by ``***``:

* every value handed to ``remember`` (the API key llmtop sends, the password of ``--url``,
  keys found in a server command), wherever it appears;
* the value after a flag named for a secret: ``--api-key X``, ``--hf-token=X``, ``--password X``
  (a name that is, or ends in ``-``/``_`` then, ``key``, ``apikey``, ``token``, ``secret``,
  ``password`` or ``passwd``, any case);
* the value of an assignment with such a name: ``OPENAI_API_KEY=X``, ``HF_TOKEN=X``,
  ``api_key=X``;
* a ``Bearer`` token, and the password of a URL (``http://user:***@host``).

Values are remembered for the life of the process (a module-level registry), because the
places that must redact, such as the request record's error message, are far from where the
key is known; only the process that talks to the server needs them. Nothing here imports
beyond the standard library: the server's watchdog (engine/servers/watchdog.py) loads it
in a fresh interpreter.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

REDACTED = "***"
MIN_SECRET_CHARS = 4
"""Shorter values are not replaced wherever they occur: a key such as ``x`` would blank every
``x`` in a log. The flag and assignment rules still hide them in command lines."""

_NAME = r"(?:[A-Za-z0-9]+[_-])*(?:api[_-]?)?(?:key|token|secret|passwd|password)"
_VALUE = r"(?P<value>\"[^\"]*\"|'[^']*'|(?!-)[^\s\"',;&|)]+)"
_FLAG = re.compile(rf"(?<![\w-])(--?{_NAME})(=|\s+){_VALUE}", re.IGNORECASE)
_BARE_FLAG = re.compile(rf"--?{_NAME}", re.IGNORECASE)
_ASSIGNMENT = re.compile(rf"(?<![\w-])({_NAME})={_VALUE}", re.IGNORECASE)
_BEARER = re.compile(r"\b(bearer)\s+[A-Za-z0-9._~+/=-]+", re.IGNORECASE)
_URL_PASSWORD = re.compile(r"\b([a-z][a-z0-9+.-]*://[^\s/:@]*):[^\s/@]*@", re.IGNORECASE)

_known: tuple[str, ...] = ()
"""Remembered values, longest first (so a key that contains another is replaced whole).
Replaced as a whole tuple, never mutated: threads may read it while another remembers."""


def remember(*values: str | None) -> None:
    """Redact these values from now on, wherever they appear (``None`` and ``""`` ignored)."""
    global _known
    fresh = {v for v in values if v and len(v) >= MIN_SECRET_CHARS} - set(_known)
    if fresh:
        _known = tuple(sorted({*_known, *fresh}, key=len, reverse=True))


def known() -> tuple[str, ...]:
    """The values remembered so far (for a child process that must redact the same)."""
    return _known


def redact(text: str) -> str:
    """``text`` with every secret the rule above finds replaced by ``***``."""
    for value in _known:
        if value in text:
            text = text.replace(value, REDACTED)
    text = _FLAG.sub(rf"\1\2{REDACTED}", text)
    text = _ASSIGNMENT.sub(rf"\1={REDACTED}", text)
    text = _BEARER.sub(rf"\1 {REDACTED}", text)
    return _URL_PASSWORD.sub(rf"\1:{REDACTED}@", text)


def redact_argv(argv: Sequence[str]) -> list[str]:
    """A command split into words, redacted word by word; the word after a bare secret flag
    (``--api-key``, then the key) is replaced whole.
    """
    out: list[str] = []
    for i, word in enumerate(argv):
        after_flag = i > 0 and _BARE_FLAG.fullmatch(argv[i - 1]) and not word.startswith("--")
        out.append(REDACTED if after_flag else redact(word))
    return out


def secrets_in(argv: Sequence[str]) -> list[str]:
    """The values a command passes in secret flags or assignments (to ``remember`` them, so
    a server that echoes its key into its log or an error body has it blanked there too).
    """
    found: list[str] = []
    for i, word in enumerate(argv):
        if i > 0 and _BARE_FLAG.fullmatch(argv[i - 1]) and not word.startswith("--"):
            found.append(word)
        for pattern in (_FLAG, _ASSIGNMENT):
            for match in pattern.finditer(word):
                found.append(match.group("value").strip("\"'"))
    return found
