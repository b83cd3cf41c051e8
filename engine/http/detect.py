"""Find out what is serving at a URL: reachable, which models, which implementation.

Each implementation leaves fingerprints on its own endpoints and headers; the cheapest and most
reliable is ``owned_by`` in ``/v1/models``, then implementation-specific routes. The result goes
into ``run.json`` and adapts requests (e.g. ``ignore_eos`` where it is honoured).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import httpx

from engine.errors import InputError, RunError
from engine.http.auth import auth_headers

PROBE_TIMEOUT_S = 5.0
OWNED_BY = {
    "vllm": "vllm",
    "sglang": "sglang",
    "lmdeploy": "lmdeploy",
    "llamacpp": "llama.cpp",
    "library": "ollama",
    "organization_owner": "lmstudio",
}


class ServerUnreachable(RunError):
    """No OpenAI-compatible server answered at the URL."""


@dataclass
class ServerInfo:
    """What detection found."""

    url: str
    """Base URL probed (no credentials, no ``/v1``)."""
    kind: str = "unknown"
    """``vllm``, ``sglang``, ``lmdeploy``, ``llama.cpp``, ``ollama``, ``lmstudio``, ``unknown``."""
    models: list[str] = field(default_factory=list)
    """Model ids from ``/v1/models``."""
    version: str | None = None
    """Server version when an endpoint reports one."""
    evidence: list[str] = field(default_factory=list)
    """What the verdict rests on, for people reading ``run.json``."""

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return asdict(self)


def normalize_url(url: str) -> str:
    """Strip credentials, a trailing slash and a trailing ``/v1`` from a server URL."""
    try:
        parts = urlsplit(url if "://" in url else f"http://{url}")
    except ValueError as exc:  # a bracket left open, or brackets around no IP address
        raise InputError(f"invalid server URL '{url}': {exc}") from None
    if (
        parts.scheme not in ("http", "https")
        or not parts.hostname
        or any(c.isspace() for c in parts.netloc)
    ):
        raise InputError(f"invalid server URL '{url}': expected http://HOST:PORT")
    try:
        port = parts.port  # parsed on access: out of range or not a number raises ValueError
    except ValueError:
        port = 0
    if port == 0:
        raise InputError(
            f"invalid server URL '{url}': the port must be a whole number from 1 to 65535"
        )
    # urlsplit drops an IPv6 address's brackets; the URL needs them back.
    host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
    host = host if port is None else f"{host}:{port}"
    path = parts.path.rstrip("/")
    path = path.removesuffix("/v1")
    return urlunsplit((parts.scheme, host, path, "", ""))


async def detect(url: str, api_key: str | None = None, basic_auth: str | None = None) -> ServerInfo:
    """Probe ``url``; raise ``ServerUnreachable`` when ``/v1/models`` does not answer."""
    headers = auth_headers(api_key, basic_auth)
    info = ServerInfo(url=url)
    async with httpx.AsyncClient(base_url=url, headers=headers, timeout=PROBE_TIMEOUT_S) as http:
        try:
            response = await http.get("/v1/models")
        except httpx.HTTPError as exc:
            raise ServerUnreachable(
                f"cannot reach {url}/v1/models: {type(exc).__name__}: {exc}"
            ) from None
        if response.status_code != 200:
            raise ServerUnreachable(
                f"{url}/v1/models answered HTTP {response.status_code}: {response.text[:200]}"
            )
        data = _json(response).get("data") or []
        info.models = [str(m["id"]) for m in data if isinstance(m, dict) and m.get("id")]
        owners = {m.get("owned_by") for m in data if isinstance(m, dict)}
        for owner in owners:
            if owner in OWNED_BY:
                info.kind = OWNED_BY[owner]
                info.evidence.append(f"/v1/models owned_by={owner}")
        server_header = response.headers.get("server", "")
        if "llama.cpp" in server_header.lower():
            info.kind = "llama.cpp"
            info.evidence.append(f"Server header {server_header!r}")
        await _probe_specifics(http, info)
    return info


async def _probe_specifics(http: httpx.AsyncClient, info: ServerInfo) -> None:
    """Confirm or find the kind from implementation-specific routes; read its version."""
    probes = [
        ("llama.cpp", "/props", "build_info"),
        ("vllm", "/version", "version"),
        ("sglang", "/get_server_info", "version"),
        ("ollama", "/api/version", "version"),
    ]
    for kind, path, key in probes:
        if info.kind not in ("unknown", kind):
            continue
        try:
            response = await http.get(path)
        except httpx.HTTPError:
            continue
        body = _json(response) if response.status_code == 200 else {}
        if key in body and (kind != "vllm" or info.kind == "vllm" or "build_info" not in body):
            info.kind = kind
            info.version = str(body[key])
            info.evidence.append(f"{path} has '{key}'")
            return


def _json(response: httpx.Response) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


def choose_model(requested: str | None, info: ServerInfo) -> str:
    """The model to request: ``requested`` if the server serves it, else its first model.

    Raises ``InputError`` naming what the server does serve (with a hint for Ollama's names).
    """
    if requested is None:
        if not info.models:
            raise InputError(f"{info.url} lists no models; pass --model NAME")
        return info.models[0]
    if info.models and requested not in info.models:
        hint = ""
        if info.kind == "ollama" or any(":" in m for m in info.models):
            hint = " (Ollama names models like 'qwen3:0.6b', not 'Qwen/Qwen3-0.6B')"
        raise InputError(
            f"model '{requested}' is not served at {info.url}; served: "
            f"{', '.join(info.models)}{hint}"
        )
    return requested
