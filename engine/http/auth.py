"""The Authorization header llmtop sends: a bearer API key, or the HTTP Basic credentials of a
``--url`` such as ``http://user:password@host``. Whatever goes into the header is remembered
by the redaction rule (engine/redact.py) as it is built, so a server quoting it back has it
blanked in every record, log and message, in whichever process sends it.
"""

from __future__ import annotations

import base64
from urllib.parse import unquote, urlsplit

from engine.redact import remember


def url_credentials(url: str) -> str | None:
    """``user:password`` as written into ``url`` (decoded), if it has any, as curl's ``-u``
    takes them; a user name alone gets an empty password.
    """
    try:
        parts = urlsplit(url if "://" in url else f"http://{url}")
    except ValueError:  # a malformed URL: normalize_url says what is wrong with it
        return None
    if parts.username is None:
        return None
    return f"{unquote(parts.username)}:{unquote(parts.password or '')}"


def remember_credentials(api_key: str | None, basic_auth: str | None = None) -> None:
    """Have engine/redact.py blank these from now on: the key, the password and the Basic
    token made of them. A front end calls it before it starts a server, whose watchdog
    blanks in the log what is known by then.
    """
    if basic_auth is not None:
        remember(basic_auth.partition(":")[2], _basic_token(basic_auth))
    remember(api_key)


def auth_headers(api_key: str | None, basic_auth: str | None = None) -> dict[str, str]:
    """The header for ``basic_auth`` (``user:password``) if given, else for ``api_key``."""
    remember_credentials(api_key, basic_auth)
    if basic_auth is not None:
        return {"Authorization": f"Basic {_basic_token(basic_auth)}"}
    if api_key:
        return {"Authorization": f"Bearer {api_key}"}
    return {}


def _basic_token(basic_auth: str) -> str:
    return base64.b64encode(basic_auth.encode()).decode()
