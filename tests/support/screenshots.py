"""Draw the README's screenshots of the live screen: ``python -m tests.support.screenshots docs``.

The same seeded runs the snapshot tests draw (tests/support/tui_data.py), an 8-GPU box at
80x24, 120x36 and 200x50, and a replay of a real llama-server run on an H200
(bench/gpu/h200-telemetry-20261121) scrubbed back to its busiest scenario.
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

from engine.analysis.replay import load_recorded_run
from tests.support.paths import ROOT
from tests.support.tui_data import IdleControls, SeededRun
from tui.live.app import LlmtopApp, make_app
from tui.live.controls import ReadOnly
from tui.live.replay import state_at

H200_RUN = ROOT / "bench" / "gpu" / "h200-telemetry-20261121"


async def _save(app: LlmtopApp, size: tuple[int, int], target: Path, keys: list[str]) -> None:
    async with app.run_test(size=size) as pilot:
        await pilot.pause(0.5)
        if keys:
            await pilot.press(*keys)
            await pilot.pause(0.5)
        app.clear_notifications()
        await pilot.pause(0.2)
        target.write_text(app.export_screenshot(title=target.stem), encoding="utf-8")
    print(target)


async def main(folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for size in ((80, 24), (120, 36), (200, 50)):
        app = make_app(SeededRun(gpus=8).state(), IdleControls())
        await _save(app, size, folder / f"live-screen-{size[0]}x{size[1]}.svg", [])
    recording = load_recorded_run(H200_RUN)
    replay = make_app(state_at(recording, recording.duration_s), ReadOnly(), recording=recording)
    back = ["left_square_bracket"] * 8  # c32 running, 43 s into the run
    await _save(replay, (120, 36), folder / "replay-h200-120x36.svg", back)


if __name__ == "__main__":
    asyncio.run(main(Path(sys.argv[1] if len(sys.argv) > 1 else "docs")))
