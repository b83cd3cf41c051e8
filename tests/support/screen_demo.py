"""The live screen on seeded data, in this terminal: look at a layout without a server.

``python -m tests.support.screen_demo --gpus 8`` (``--failed``, ``--finished``, ``--ladder``,
``--client-bound``): the same runs the snapshot tests draw (tests/support/tui_data.py).
"""

from __future__ import annotations

import argparse

from tests.support.tui_data import IdleControls, SeededRun, ladder_profiles
from tui.live.app import make_app


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--gpus", type=int, default=1)
    parser.add_argument("--failed", action="store_true")
    parser.add_argument("--finished", action="store_true")
    parser.add_argument("--ladder", action="store_true")
    parser.add_argument("--client-bound", action="store_true")
    args = parser.parse_args()
    run = SeededRun(gpus=args.gpus, failures=args.failed)
    if args.ladder:
        run.profiles = ladder_profiles()
    if args.client_bound:
        run.client_cpu_pct = 93.0
    make_app(run.state(finished=args.finished or args.failed), IdleControls()).run()


if __name__ == "__main__":
    main()
