"""An OpenAI chat server with fixed pacing whose every event boundary is apart in time, so the
peers' definitions give different, predictable figures (bench/peers_compare.py).

Per request to ``POST /v1/chat/completions`` (``stream: true``), measured from its arrival:

* the role chunk (``delta: {"role": "assistant", "content": ""}``, as vLLM sends it) at once;
* the first of ``max_tokens`` one-token content chunks after ``--ttft``, the others every
  ``--itl``;
* the finish chunk (``finish_reason: "length"``, empty delta) ``--finish-gap`` after the
  last token;
* the usage chunk (``choices: []``) and ``data: [DONE]`` ``--done-gap`` after that.

So vLLM's TTFT (first event with choices) is ~0, everyone else's ``--ttft``; vLLM's E2E ends at
the finish chunk, AIPerf's at the last token, SGLang's, GuideLLM's and llmtop's at ``[DONE]``.
Shaped like vLLM's ``ChatCompletionStreamResponse`` (``object: "chat.completion.chunk"``, which
AIPerf requires). ``/v1/models`` and ``/health`` answer for the readiness checks.

Run: ``python -m bench.paced_server --port N [--ttft 0.2 --itl 0.03 ...]``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time

from aiohttp import web

MODEL = "paced-model"


def _event(choices: list[dict[str, object]], **extra: object) -> bytes:
    body = {"id": "chatcmpl-paced", "object": "chat.completion.chunk", "created": 0}
    body.update(model=MODEL, choices=choices, **extra)
    return b"data: " + json.dumps(body).encode() + b"\n\n"


def _choice(delta: dict[str, str], finish: str | None = None) -> dict[str, object]:
    return {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}


def make_app(
    ttft_s: float, itl_s: float, finish_gap_s: float, done_gap_s: float
) -> web.Application:
    async def complete(request: web.Request) -> web.StreamResponse:
        start = time.perf_counter()
        body = await request.json()
        n = int(body.get("max_tokens") or body.get("max_completion_tokens") or 16)
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        await response.write(_event([_choice({"role": "assistant", "content": ""})]))

        async def at(offset_s: float) -> None:
            # Sleep to an offset from the arrival, not by increments: delays do not add up.
            await asyncio.sleep(max(0.0, start + offset_s - time.perf_counter()))

        for i in range(n):
            await at(ttft_s + i * itl_s)
            await response.write(_event([_choice({"content": "tok "})]))
        last = ttft_s + (n - 1) * itl_s
        await at(last + finish_gap_s)
        await response.write(_event([_choice({}, "length")]))
        await at(last + finish_gap_s + done_gap_s)
        usage = {"prompt_tokens": 8, "completion_tokens": n, "total_tokens": n + 8}
        include = (body.get("stream_options") or {}).get("include_usage")
        tail = _event([], usage=usage) if include else b""
        await response.write(tail + b"data: [DONE]\n\n")
        await response.write_eof()
        return response

    async def models(_request: web.Request) -> web.Response:
        return web.json_response({"object": "list", "data": [{"id": MODEL, "object": "model"}]})

    async def health(_request: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    app = web.Application()
    app.router.add_post("/v1/chat/completions", complete)
    app.router.add_get("/v1/models", models)
    app.router.add_get("/health", health)
    return app


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--ttft", type=float, default=0.2, help="seconds to the first token")
    parser.add_argument("--itl", type=float, default=0.03, help="seconds between tokens")
    parser.add_argument("--finish-gap", type=float, default=0.05, help="last token to finish")
    parser.add_argument("--done-gap", type=float, default=0.03, help="finish to usage + [DONE]")
    args = parser.parse_args()
    app = make_app(args.ttft, args.itl, args.finish_gap, args.done_gap)
    web.run_app(app, host="127.0.0.1", port=args.port, print=None)


if __name__ == "__main__":
    main()
