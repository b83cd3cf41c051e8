"""``--web``: the live screen served to browsers for as long as llmtop runs.

``llmtop run --web`` measures once and serves ``tui.live.follow`` (each browser follows the
run through the relay file); ``llmtop replay RUN --web`` serves the replay (each browser
scrubs its own copy). Either way the page is read-only for the run: a browser cannot pause,
stop or add to it, the terminal that started it can.
"""

from __future__ import annotations

import shlex
import shutil
import signal
import sys
import tempfile
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from tui.web.server import WebServer, check_installed, exposure_warning, is_loopback

RELAY_FILE = "events.relay"
SERVER_LOG = "server.log"


@dataclass(frozen=True)
class WebView:
    """A served screen: where its relay file is and where browsers open it."""

    relay: Path
    """The file the engine appends its low-rate events to (``tui.web.relay``)."""
    url: str


def follow_command(relay: Path) -> list[str]:
    """What each browser of a live run gets: a screen following the run."""
    return [sys.executable, "-m", "tui.live.follow", str(relay)]


@contextmanager
def serve_view(command_for: Callable[[Path], list[str]], host: str, port: int) -> Iterator[WebView]:
    """Serve ``command_for(relay)`` to browsers at ``host:port`` until the block ends.

    ``InputError`` when textual-serve is not installed, ``RunError`` when the server cannot
    listen (the port is taken, say).
    """
    check_installed()
    warning = exposure_warning(host, port)
    if warning:
        print(f"llmtop: {warning}", file=sys.stderr)
    # Only this user can open the folder: the relay holds pickles that the viewers load.
    folder = Path(tempfile.mkdtemp(prefix="llmtop-web-"))
    relay = folder / RELAY_FILE
    relay.touch()
    server = WebServer(shlex.join(command_for(relay)), host, port, folder / SERVER_LOG)
    try:
        url = server.start()
        print(f"llmtop: the live screen in a browser: {url}", file=sys.stderr)
        if is_loopback(host):
            print(
                f"        from a laptop: ssh -N -L {port}:127.0.0.1:{port} THIS-HOST, then open "
                f"{url} there (read-only: the run's keys work in this terminal)",
                file=sys.stderr,
            )
        yield WebView(relay, url)
    finally:
        server.stop()
        shutil.rmtree(folder, ignore_errors=True)


def wait_until_told(message: str) -> None:
    """Say ``message``, then block until Ctrl+C, SIGTERM or a hang-up."""
    print(f"llmtop: {message}", file=sys.stderr)
    told = threading.Event()
    signals = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
    previous = {sig: signal.signal(sig, lambda *_: told.set()) for sig in signals}
    try:
        while not told.wait(0.5):
            pass
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
