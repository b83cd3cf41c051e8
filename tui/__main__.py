"""``python -m tui`` runs the ``llmtop`` command."""

import sys

from tui.cli import main

sys.exit(main())
