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
    parts = urlsplit(url if "://" in url else f"http://{url}")
    if parts.username is None:
        return None
    return f"{unquote(parts.username)}:{unquote(parts.password or '')}"


def auth_headers(api_key: str | None, basic_auth: str | None = None) -> dict[str, str]:
    """The header for ``basic_auth`` (``user:password``) if given, else for ``api_key``."""
    if basic_auth is not None:
        token = base64.b64encode(basic_auth.encode()).decode()
        remember(basic_auth.partition(":")[2], token)
        return {"Authorization": f"Basic {token}"}
    if api_key:
        remember(api_key)
        return {"Authorization": f"Bearer {api_key}"}
    return {}
