"""One module per ``llmtop`` sub-command (and ``measure.py``, one measurement for
``run``). None imports textual at module level: the live screen and its replay are imported
inside the functions that open them, so ``--no-ui`` never loads textual.
"""
