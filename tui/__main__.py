"""``python -m tui`` runs the ``llmtop`` command."""

import sys

from tui.entry import main

if __name__ == "__main__":  # the live screen's engine process must not run the CLI again
    sys.exit(main())
