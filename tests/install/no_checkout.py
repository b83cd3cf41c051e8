"""Copied as ``sitecustomize.py`` into a folder outside the checkout and put on the installed
tool's ``PYTHONPATH``, so that it runs first in every Python process the tool starts: an audit
hook notes each file opened and each folder listed under ``$LLMTOP_CHECKOUT`` and, at exit,
prints them and ends the process with ``READ_THE_CHECKOUT``. The installed llmtop must work
from what it installed; reading the source tree would hide a file the wheel lacks.
"""

import atexit
import os
import sys

READ_THE_CHECKOUT = 97
CHECKOUT = os.environ["LLMTOP_CHECKOUT"]
EVENTS = ("open", "os.listdir", "os.scandir")
touched: list[str] = []


def _note(event: str, args: tuple) -> None:
    if event not in EVENTS or not args or not isinstance(args[0], str | bytes | os.PathLike):
        return
    path = os.path.abspath(os.fsdecode(args[0]))
    if path == CHECKOUT or path.startswith(CHECKOUT + os.sep):
        touched.append(f"{event} {path}")


def _report() -> None:
    if touched:
        sys.stderr.write("read from the checkout:\n  " + "\n  ".join(touched[:20]) + "\n")
        sys.stderr.flush()
        os._exit(READ_THE_CHECKOUT)


sys.addaudithook(_note)
atexit.register(_report)
