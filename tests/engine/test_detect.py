"""Server URLs and server-kind detection (the real llama-server case is in
test_real_llama_server.py)."""

from __future__ import annotations

import asyncio

import pytest
from aiohttp import web

from engine.http.detect import ServerUnreachable, detect, normalize_url
from tests.support.fakeserver import FakeServer


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("http://127.0.0.1:8000", "http://127.0.0.1:8000"),
        ("http://127.0.0.1:8000/", "http://127.0.0.1:8000"),
        ("http://127.0.0.1:8000/v1", "http://127.0.0.1:8000"),
        ("http://127.0.0.1:8000/v1/", "http://127.0.0.1:8000"),
        ("127.0.0.1:11434", "http://127.0.0.1:11434"),
        ("https://user:secret@gpu-box:443/proxy/v1", "https://gpu-box:443/proxy"),
        # IPv6 keeps its brackets: without them httpx read ':1:8000' as the port.
        ("http://[::1]:8000/v1", "http://[::1]:8000"),
        ("http://user:secret@[fe80::1]", "http://[fe80::1]"),
    ],
)
def test_normalize_url_strips_credentials_and_v1(given, expected):
    assert normalize_url(given) == expected
    assert "secret" not in normalize_url(given)


@pytest.mark.parametrize("bad", ["ftp://host", "http://", "://nohost"])
def test_normalize_url_rejects_what_is_not_http(bad):
    with pytest.raises(ValueError, match="expected http://HOST:PORT"):
        normalize_url(bad)


class KindServer(FakeServer):
    """The fake server dressed as another implementation, from its documented endpoints."""

    def __init__(self, owned_by: str, extra: dict[str, dict]) -> None:
        super().__init__()
        self.owned_by, self.extra = owned_by, extra

    async def _models(self, _request: web.Request) -> web.Response:
        return web.json_response(
            {"object": "list", "data": [{"id": "m", "object": "model", "owned_by": self.owned_by}]}
        )

    def add_routes(self, app: web.Application) -> None:
        for path, body in self.extra.items():
            app.router.add_get(path, self._fixed(body))

    @staticmethod
    def _fixed(body: dict):
        async def handler(_request: web.Request) -> web.Response:
            return web.json_response(body)

        return handler


@pytest.mark.parametrize(
    ("owned_by", "extra", "kind", "version"),
    [
        ("vllm", {"/version": {"version": "0.11.0"}}, "vllm", "0.11.0"),
        ("sglang", {"/get_server_info": {"version": "0.5.3"}}, "sglang", "0.5.3"),
        ("library", {"/api/version": {"version": "0.12.6"}}, "ollama", "0.12.6"),
        ("lmdeploy", {}, "lmdeploy", None),
        ("organization_owner", {}, "lmstudio", None),
        ("someone", {}, "unknown", None),
    ],
)
def test_detects_the_kind_from_its_own_endpoints(owned_by, extra, kind, version):
    with KindServer(owned_by, extra) as server:
        info = asyncio.run(detect(server.url))
    assert (info.kind, info.version, info.models) == (kind, version, ["m"])


def test_unreachable_server_is_reported_with_the_url():
    with pytest.raises(ServerUnreachable, match=r"cannot reach http://127.0.0.1:9/v1/models"):
        asyncio.run(detect("http://127.0.0.1:9"))
