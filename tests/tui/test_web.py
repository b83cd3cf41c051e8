"""``llmtop run --web``: the live screen in a real browser (Debian's chromium driven by
Playwright), following the one run the engine measures; and the pieces behind it.
"""

from __future__ import annotations

import asyncio
import os
import random
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from engine.events import (
    NoticeRaised,
    RequestFinished,
    RunStarted,
    SnapshotTaken,
)
from tests.support.paths import ROOT
from tests.support.processes import free_port
from tests.support.tui_data import record
from tui.cli import main
from tui.live.follow import EventClock, Follower
from tui.live.state import LiveState
from tui.web.relay import EventRelay, RelayReader
from tui.web.server import exposure_warning, public_url

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


def _snapshot(t_s: float) -> SnapshotTaken:
    return SnapshotTaken(
        "quick", int(t_s * 1e9), t_s, 2.0, 1, 1, 0, 0, 10, 5.0, 1.0, 0.5, None, None, False
    )


def test_the_relay_carries_low_rate_events_only_and_waits_for_whole_frames(tmp_path):
    path = tmp_path / "events.relay"
    relay = EventRelay(path)
    reader = RelayReader(path)
    relay.handle(RunStarted("r", str(tmp_path), "http://x", "m", "vllm", ("quick",)))
    relay.handle(RequestFinished(record(1, "quick", rng=random.Random(0))))  # read from disk
    relay.handle(_snapshot(1.0))
    data = path.read_bytes()
    path.write_bytes(data[:-3])  # the last frame half written
    assert [type(e) for _, e in reader.frames()] == [RunStarted]
    path.write_bytes(data)
    assert [type(e) for _, e in reader.frames()] == [SnapshotTaken]
    assert reader.frames() == []


def test_a_late_viewer_shows_the_runs_own_elapsed_time(tmp_path):
    relay = EventRelay(tmp_path / "events.relay")
    relay.handle(RunStarted("r", str(tmp_path), "http://x", "m", "vllm", ("quick",)))
    relay.handle(NoticeRaised("info", "hello"))
    time.sleep(0.3)  # the viewer joins later than the run started
    clock = EventClock()
    state = LiveState(clock=clock)
    Follower(tmp_path / "events.relay", state, clock).read_once()
    view = state.view()
    assert view.status == "running" and view.notices == (("info", "hello"),)
    assert view.elapsed_s >= 0.3, "from the run's start, not from the viewer's"


def test_a_viewer_of_a_screen_run_sees_what_the_screen_sees(fake_server, tmp_path):
    """With the terminal's screen too (``llmtop run --web`` on a terminal), the engine's child
    process writes the relay; a browser's follower ends with the screen's own state."""
    from engine.run.config import RunConfig
    from tests.support.builders import make_profile
    from tui.live.engine_process import EngineJob, EngineProcess

    config = RunConfig(
        url=fake_server.url,
        model="fake-model",
        profiles=[make_profile(name="quick", requests=6, concurrency=2)],
        results_root=tmp_path,
    )
    screen = LiveState()
    engine = EngineProcess(EngineJob(config, "r1", tmp_path / "events.relay"), screen)
    engine.start()
    assert engine.join(60)
    clock = EventClock()
    browser = LiveState(clock=clock)
    assert Follower(tmp_path / "events.relay", browser, clock).read_once(), "it saw the end"
    ours, theirs = screen.view(), browser.view()
    assert theirs.summary == ours.summary and theirs.status == "completed"
    assert theirs.totals == ours.totals and theirs.totals["requests"] == 6
    assert theirs.queue == ours.queue


def test_serving_beyond_this_machine_is_warned_about():
    assert exposure_warning("127.0.0.1", 8765) is None
    assert exposure_warning("::1", 8765) is None
    assert "no password" in (exposure_warning("0.0.0.0", 8765) or "")
    assert public_url("127.0.0.1", 8765) == "http://127.0.0.1:8765"
    assert "0.0.0.0" not in public_url("0.0.0.0", 8765), "a browser cannot open 0.0.0.0"


def test_web_options_are_checked(capsys):
    assert main(["run", "--web-port", "70000", "--dry-run"]) == 2
    assert "--web-port must be a TCP port" in capsys.readouterr().err
    matrix = ["run", "--web", "--server-cmd", "srv --port {port} --x {1,2}", "--no-probe"]
    assert main(matrix) == 2
    assert "--web shows one run" in capsys.readouterr().err


# -- the real browser ----------------------------------------------------------------------


def _browser():
    """Playwright's Chromium driver on Debian's chromium, or a skip that says what is missing."""
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} is missing: `apt-get install chromium` (.ci/run installs it)")
    playwright = pytest.importorskip("playwright.sync_api", reason="pip install playwright")
    pytest.importorskip("textual_serve", reason="pip install 'llmtop[web]'")
    return playwright.sync_playwright


class _Page:
    """A browser page on the served screen, and the terminal output its websocket received."""

    def __init__(self, browser, url: str) -> None:
        self.frames: list[str] = []
        self.page = browser.new_page(viewport={"width": 1400, "height": 800})
        self.page.on("websocket", lambda ws: ws.on("framereceived", self._received))
        self.page.goto(url)

    def _received(self, payload: str | bytes) -> None:
        text = payload if isinstance(payload, str) else payload.decode("utf-8", "replace")
        self.frames.append(ANSI.sub("", text))

    def wait_for(self, *words: str, timeout_s: float = 30.0) -> str:
        """Wait until the screen has drawn every word; returns what it drew."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            drawn = "".join(self.frames)
            if all(w in drawn for w in words):
                return drawn
            self.page.wait_for_timeout(200)
        missing = [w for w in words if w not in "".join(self.frames)]
        raise AssertionError(f"the page never drew {missing}")


def _stderr_line(process: subprocess.Popen[str], needle: str, timeout_s: float) -> str:
    """Read llmtop's stderr until a line holds ``needle``."""
    deadline = time.monotonic() + timeout_s
    assert process.stderr is not None
    seen = []
    while time.monotonic() < deadline:
        line = process.stderr.readline()
        if line:
            seen.append(line)
            if needle in line:
                return line
        elif process.poll() is not None:
            break
    raise AssertionError(f"llmtop never said {needle!r}: {''.join(seen)[-2000:]}")


def test_run_web_serves_the_live_screen_to_a_real_browser(fake_server, tmp_path):
    sync_playwright = _browser()
    fake_server.behaviour.itl_s = 0.04  # 25 tokens: 1 s a request, ~7 s for the run
    port = free_port()
    argv = [sys.executable, "-m", "tui", "run", "--url", fake_server.url, "--model", "fake-model"]
    argv += ["--requests", "12", "--concurrency", "2", "--max-tokens", "25", "--no-probe"]
    argv += ["--no-ui", "--web", "--web-port", str(port), "--output", str(tmp_path)]
    llmtop = subprocess.Popen(
        argv, cwd=ROOT, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        url = _stderr_line(llmtop, "the live screen in a browser", 30).split()[-1]
        assert url == f"http://127.0.0.1:{port}"
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
            viewer = _Page(browser, url)
            # The header, a pane and the line that says the browser cannot change the run.
            viewer.wait_for("RUNNING", "fake-model", "Scenarios", "Throughput", "READ-ONLY")
            viewer.page.focus(".xterm-helper-textarea")  # where xterm.js takes keys
            viewer.page.keyboard.press("t")  # Requests -> the Results tab
            viewer.wait_for("goodput/s", "TTFT p50/p99")
            second = _Page(browser, url)  # another viewer, the same run: no second engine
            run_id = next(p.name for p in tmp_path.iterdir() if p.is_dir())
            second.wait_for(run_id)
            viewer.wait_for("COMPLETED", timeout_s=60)  # the view follows the run to its end
            viewer.page.screenshot(path=str(tmp_path / "browser.png"))
            browser.close()
        assert len([p for p in tmp_path.iterdir() if p.is_dir()]) == 1, "one run, two viewers"
        _stderr_line(llmtop, "until Ctrl+C", 60)
        llmtop.send_signal(signal.SIGINT)
        assert llmtop.wait(30) == 0, "the run's own exit code"
    finally:
        if llmtop.poll() is None:
            os.kill(llmtop.pid, signal.SIGKILL)
            llmtop.wait(10)


def test_replay_web_serves_each_browser_its_own_replay(tmp_path):
    pytest.importorskip("textual_serve", reason="pip install 'llmtop[web]'")
    import aiohttp

    port = free_port()
    argv = [sys.executable, "-m", "tui", "replay", str(ROOT / "bench/gpu/h200-telemetry-20261121")]
    llmtop = subprocess.Popen(
        [*argv, "--web-port", str(port)], cwd=ROOT, stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip

    async def terminal_output() -> str:
        """What the app sends a browser's terminal (as the page's websocket receives it)."""
        url = f"ws://127.0.0.1:{port}/ws?width=120&height=36"
        drawn = ""
        async with aiohttp.ClientSession() as session, session.ws_connect(url) as ws:
            deadline = time.monotonic() + 30
            while "REPLAY" not in drawn and time.monotonic() < deadline:
                message = await ws.receive(timeout=30)
                if message.type is aiohttp.WSMsgType.BINARY:
                    drawn += ANSI.sub("", message.data.decode("utf-8", "replace"))
        return drawn

    try:
        _stderr_line(llmtop, "serving the replay", 30)
        drawn = asyncio.run(terminal_output())
        assert "REPLAY" in drawn and "COMPLETED" in drawn
        llmtop.send_signal(signal.SIGINT)
        assert llmtop.wait(30) == 0
    finally:
        if llmtop.poll() is None:
            os.kill(llmtop.pid, signal.SIGKILL)
            llmtop.wait(10)


def test_a_run_that_cannot_start_does_not_keep_serving(tmp_path):
    pytest.importorskip("textual_serve", reason="pip install 'llmtop[web]'")
    dead, port = free_port(), free_port()
    argv = [sys.executable, "-m", "tui", "run", "--url", f"http://127.0.0.1:{dead}"]
    argv += ["--no-ui", "--web-port", str(port), "--output", str(tmp_path)]
    done = subprocess.run(
        argv, cwd=ROOT, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 1, done.stderr
    assert "the live screen in a browser" in done.stderr and "until Ctrl+C" not in done.stderr


def test_the_terminal_screen_names_the_browser_address(fake_server, tmp_path):
    """Printed before the terminal's screen opens, the URL would be hidden behind it."""
    from engine.run.config import RunConfig
    from tests.support.builders import make_profile
    from tui.live.engine_process import EngineJob
    from tui.live.session import start_live

    config = RunConfig(
        url=fake_server.url,
        model="fake-model",
        profiles=[make_profile(name="quick", requests=2)],
        results_root=tmp_path,
    )
    live = start_live(EngineJob(config, "r1"), notice="also in a browser: http://127.0.0.1:1")

    async def shown() -> list[str]:
        async with live.app.run_test(size=(100, 30)) as pilot:
            await pilot.pause(0.3)
            return [str(n.message) for n in live.app._notifications]

    try:
        assert "also in a browser: http://127.0.0.1:1" in asyncio.run(shown())
    finally:
        live.finish()
