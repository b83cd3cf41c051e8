"""The fake server (tests/support/fakeserver.py) as a command, for tests in which llmtop starts
the server itself (``--server-cmd``) without needing the real llama-server:

    python -m tests.support.fake_server_cmd --port PORT [--itl S] [--api-key KEY]

With ``--api-key`` it is careless with secrets the way real servers can be: it prints its
arguments at start (vLLM logs its non-default arguments, key included), logs the
Authorization header of every request, and answers every third completion with a 401 whose
body quotes the key it was sent, as does its log. It serves until it is killed.
"""

from __future__ import annotations

import argparse
import json
import sys
import threading
from typing import Any

from tests.support.fakeserver import Behaviour, FakeServer


def careless(behaviour: Behaviour, n: int) -> dict[str, Any]:
    """Log the request's Authorization header; reject every third request quoting it."""
    sent = behaviour.headers[-1].get("Authorization", "")
    print(f"request {n}: Authorization: {sent}", flush=True)
    if n % 3:
        return {}
    message = f"invalid api key: {sent.removeprefix('Bearer ')}"
    print(f"request {n}: rejected: {message}", flush=True)
    return {"status": 401, "error_body": json.dumps({"error": {"message": message}}).encode()}


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--itl", type=float, default=0.0)
    parser.add_argument("--api-key")
    args = parser.parse_args(argv)
    behaviour = Behaviour(itl_s=args.itl)
    if args.api_key:
        print(f"fake server starting with arguments {vars(args)}", flush=True)
        behaviour.per_request = lambda n: careless(behaviour, n)
    server = FakeServer(behaviour)
    server.port, server.url = args.port, f"http://127.0.0.1:{args.port}"
    with server:
        print(f"serving on {server.url}", flush=True)
        threading.Event().wait()


if __name__ == "__main__":
    main(sys.argv[1:])
