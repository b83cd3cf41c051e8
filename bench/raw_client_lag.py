"""Event-loop lag of the bare client stack (httpx over aiohttp, no parsing, no engine).

Usage: ``python -m bench.raw_client_lag``. Shows the lag the transport the design fixes has on
its own at 64 and 256 streams against ``bench.fast_server``, with and without yielding after
every read (bench/RESULTS.md, "Is 10 ms at 256 flat-out streams reachable").
"""

from __future__ import annotations

import asyncio
import time

import aiohttp
import httpx
import orjson
import uvloop
from httpx_aiohttp import AiohttpTransport

from bench.engine_ceiling import Server
from engine.run.loop_lag import LoopLagMonitor

SECONDS = 4.0
TOKENS = 64
BODY = orjson.dumps(
    {
        "model": "m",
        "messages": [{"role": "user", "content": "hi"}],
        "max_tokens": TOKENS,
        "stream": True,
    }
)
HEADERS = {"content-type": "application/json", "accept": "text/event-stream"}


async def measure(url: str, streams: int, yield_each_read: bool) -> str:
    connector = aiohttp.TCPConnector(limit=streams, limit_per_host=streams)
    session = aiohttp.ClientSession(connector=connector, auto_decompress=False)
    timeout = httpx.Timeout(connect=10, read=None, write=None, pool=None)
    lag = LoopLagMonitor()
    done = 0
    deadline = time.monotonic() + SECONDS
    async with httpx.AsyncClient(
        base_url=url, transport=AiohttpTransport(client=session), timeout=timeout
    ) as http:

        async def worker() -> None:
            nonlocal done
            while time.monotonic() < deadline:
                async with http.stream(
                    "POST", "/v1/chat/completions", content=BODY, headers=HEADERS
                ) as response:
                    async for _chunk in response.aiter_raw():
                        if yield_each_read:
                            await asyncio.sleep(0)
                done += 1

        monitor = asyncio.create_task(lag.run())
        await asyncio.gather(*(worker() for _ in range(streams)))
        monitor.cancel()
    p50, p99, worst = lag.percentiles_ms()
    return (
        f"{streams:>4} streams, yield each read {yield_each_read!s:<5}: "
        f"{done / SECONDS * TOKENS:>9,.0f} tok/s, lag p50 {p50:.1f} p99 {p99:.1f} "
        f"max {worst:.1f} ms"
    )


def main() -> None:
    server = Server("chunked")
    try:
        for streams in (64, 256):
            for yield_each_read in (False, True):
                print(uvloop.run(measure(server.url, streams, yield_each_read)))
    finally:
        server.stop()


if __name__ == "__main__":
    main()
