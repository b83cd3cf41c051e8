"""llmtop's front ends: the command line, the headless console and (later) the Textual UI.

Nothing here imports textual at module level: ``llmtop --no-ui`` must never load it.
"""
