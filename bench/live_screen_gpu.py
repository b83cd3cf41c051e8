"""The live screen over a real run, headless, with screenshots: how it was checked on a GPU.

``python -m bench.live_screen_gpu --server-cmd "llama-server -m M --port {port} ..." --out DIR
--profile bench/gpu/c1.toml ...`` starts the server, runs the profiles the way ``llmtop run``
does with its screen (engine in a child process, telemetry at 4 Hz), draws the screen headless
at ``--size``, saves an SVG every ``--every`` seconds and at the end, presses space twice
(pause, resume) mid-run, and prints what the screen showed next to the run's own summary.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shlex
import socket
import time
from pathlib import Path

from engine.http.detect import detect
from engine.results.layout import new_run_id
from engine.run.config import RunConfig
from engine.servers.process import ServerProcess
from engine.telemetry.config import TelemetryConfig
from engine.workload.profile import load_profile
from tui.live.engine_process import EngineJob
from tui.live.session import start_live


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def _watch(live, out: Path, size: tuple[int, int], every_s: float) -> list[dict]:
    seen = []
    async with live.app.run_test(headless=True, size=size) as pilot:
        app, started, shot, paused = live.app, time.monotonic(), 0, False
        while live.engine.running:
            await pilot.pause(every_s)
            view = app.view
            server = view.server_metrics
            seen.append(
                {
                    "t_s": round(time.monotonic() - started, 1),
                    "status": view.status,
                    "gpus": [(g.utilization_pct, g.power_w) for g in view.gpus],
                    "server": (server.running, server.waiting) if server else (None, None),
                    "requests": view.totals.get("requests"),
                    "out_tok_s": view.current.output_tokens_per_s if view.current else None,
                }
            )
            app.save_screenshot(str(out / f"live-{shot:02d}.svg"))
            shot += 1
            if shot == 3 and not paused:
                await pilot.press("space")  # pause...
                await pilot.pause(2.0)
                seen.append(
                    {
                        "paused_status": app.view.status,
                        "in_flight": app.view.current.in_flight if app.view.current else None,
                    }
                )
                app.save_screenshot(str(out / "live-paused.svg"))
                await pilot.press("space")  # ...and resume
                paused = True
        await pilot.pause(0.5)
        app.save_screenshot(str(out / "live-end.svg"))
    return seen


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--server-cmd", required=True)
    parser.add_argument("--profile", action="append", required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--size", default="140x42")
    parser.add_argument("--every", type=float, default=10.0)
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    server = ServerProcess(
        shlex.split(args.server_cmd.replace("{port}", str(port))), url, args.out / "server.log"
    )
    server.start(ready_timeout_s=300)
    try:
        info = asyncio.run(detect(url))
        config = RunConfig(
            url=url,
            model=info.models[0],
            server_kind=info.kind,
            profiles=[load_profile(p) for p in args.profile],
            results_root=args.out / "runs",
            telemetry=TelemetryConfig(rate_hz=4.0, server_url=url, server_pid=server.pid),
            server_process=server.info(),
        )
        job = EngineJob(config, new_run_id())
        live = start_live(job, server)
        seen = asyncio.run(
            _watch(live, args.out, tuple(map(int, args.size.split("x"))), args.every)
        )
        summary = live.finish()
    finally:
        server.stop()
    print(
        json.dumps(
            {
                "screen": seen,
                "status": summary.status,
                "lag_p99_ms": summary.client.loop_lag_p99_ms,
                "profiles": [
                    {
                        "profile": p.profile,
                        "requests": p.requests,
                        "output_tokens_per_s": p.output_tokens_per_s,
                        "ttft_p50_s": p.ttft_s.p50 if p.ttft_s else None,
                    }
                    for p in summary.profiles
                ],
            },
            indent=1,
        )
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
