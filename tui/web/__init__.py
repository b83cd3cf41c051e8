"""The live screen in a browser: the relay file through which every browser's screen follows
the one run, and the textual-serve server that starts a screen per browser connection.

Loads no textual (the headless path imports it); the screens it serves are
``tui.live.follow`` and ``llmtop replay``, started as commands, never imported from here.
"""
