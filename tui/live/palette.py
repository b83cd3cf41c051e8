"""What Textual's own command-palette entries need to fit a run: where Screenshot writes.

Textual saves a screenshot in the user's Downloads folder, which GPU servers and containers
seldom have: the save failed with nothing written. A run has a folder of its own, and a
picture of the screen belongs beside the results it shows.
"""

from __future__ import annotations

import os
from pathlib import Path


def screenshot_folder(results_dir: str) -> Path:
    """The run's folder when it exists and can be written (a replay may show a read-only
    one), else the current folder."""
    folder = Path(results_dir) if results_dir else Path.cwd()
    return folder if folder.is_dir() and os.access(folder, os.W_OK) else Path.cwd()
