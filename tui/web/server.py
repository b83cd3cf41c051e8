"""textual-serve in a process of its own, serving a command as a web page.

textual-serve answers each browser connection by starting ``command`` (an app process whose
terminal is the page). It runs in a child process, not a thread of llmtop's: a headless run
measures on llmtop's own event loop, and a web server sharing its GIL would delay every chunk
timestamp. The child has a session of its own, so the terminal's Ctrl+C reaches llmtop, which
ends the run first and then the server (with the viewers it started).

``python -m tui.web.server --host H --port P --public-url URL COMMAND`` is the child.
"""

from __future__ import annotations

import argparse
import importlib.util
import ipaddress
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from engine.errors import InputError, RunError

DEFAULT_HOST = "127.0.0.1"
"""Only this machine: a person on a laptop reaches it through ``ssh -L``."""
DEFAULT_PORT = 8765
"""Not 8000 or 8080, which inference servers (vLLM, llama-server) take by default."""
READY_TIMEOUT_S = 20.0
"""How long the server may take to listen before llmtop gives up on it."""
STOP_GRACE_S = 5.0
"""Between SIGTERM and SIGKILL when stopping the server and the viewers it started."""
INSTALL_HINT = "pip install 'llmtop[web]'"


def is_loopback(host: str) -> bool:
    """True for 127.0.0.0/8, ::1 and ``localhost``: only this machine can connect."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def exposure_warning(host: str, port: int) -> str | None:
    """What to tell a person who serves beyond this machine, else ``None``."""
    if is_loopback(host):
        return None
    return (
        f"warning: --web-host {host}: anyone who can reach port {port} of this machine sees "
        "the run (there is no password); an SSH tunnel to 127.0.0.1 keeps it private"
    )


def public_url(host: str, port: int) -> str:
    """The address a browser opens; the page's websocket goes to the same host and port."""
    if host in ("0.0.0.0", "::", ""):
        host = socket.gethostname()  # "all interfaces" is not an address a browser can open
    if ":" in host:
        host = f"[{host}]"
    return f"http://{host}:{port}"


def check_installed() -> None:
    """``InputError`` naming the extra to install when textual-serve is missing."""
    if importlib.util.find_spec("textual_serve") is None:
        raise InputError(f"--web needs textual-serve: {INSTALL_HINT}")


class WebServer:
    """The server child: ``start`` returns once it listens, ``stop`` ends it and its viewers."""

    def __init__(self, command: str, host: str, port: int, log_path: Path) -> None:
        self.command = command
        self.host = host
        self.port = port
        self.url = public_url(host, port)
        self.log_path = log_path
        self._process: subprocess.Popen[bytes] | None = None

    def start(self) -> str:
        """Start serving; returns the URL. ``RunError`` with the log's tail when it cannot."""
        argv = [sys.executable, "-m", "tui.web.server", "--host", self.host]
        argv += ["--port", str(self.port), "--public-url", self.url, self.command]
        with self.log_path.open("ab") as log:
            self._process = subprocess.Popen(
                argv, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )
        deadline = time.monotonic() + READY_TIMEOUT_S
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise RunError(f"the web server could not start: {self._log_tail()}")
            if self._listening():
                return self.url
            time.sleep(0.1)
        self.stop()
        raise RunError(f"the web server did not listen within {READY_TIMEOUT_S:.0f} s")

    def _listening(self) -> bool:
        wildcard = {"0.0.0.0": "127.0.0.1", "": "127.0.0.1", "::": "::1"}
        host = wildcard.get(self.host, self.host)
        try:
            with socket.create_connection((host, self.port), timeout=0.5):
                return True
        except OSError:
            return False

    def _log_tail(self) -> str:
        try:
            lines = self.log_path.read_text(errors="replace").strip().splitlines()
        except OSError:
            return "no log"
        return " / ".join(lines[-3:]) or "no output"

    def stop(self) -> None:
        """SIGTERM to the server's session (it and every viewer), SIGKILL after a grace."""
        process = self._process
        if process is None or process.poll() is not None:
            return
        for sig, wait_s in ((signal.SIGTERM, STOP_GRACE_S), (signal.SIGKILL, STOP_GRACE_S)):
            try:
                os.killpg(process.pid, sig)
            except ProcessLookupError:
                return
            try:
                process.wait(wait_s)
                return
            except subprocess.TimeoutExpired:
                continue


def main(argv: list[str]) -> int:
    """The child: serve ``COMMAND`` until SIGTERM or Ctrl+C."""
    from textual_serve.server import Server

    parser = argparse.ArgumentParser(prog="python -m tui.web.server")
    parser.add_argument("--host", default=DEFAULT_HOST)
    parser.add_argument("--port", type=int, default=DEFAULT_PORT)
    parser.add_argument("--public-url")
    parser.add_argument("command", help="a shell command line: the app each browser gets")
    args = parser.parse_args(argv)
    Server(
        args.command,
        host=args.host,
        port=args.port,
        title="llmtop",
        public_url=args.public_url,
    ).serve()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
