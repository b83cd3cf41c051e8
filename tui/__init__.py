"""llmtop's front ends: the command line, the headless console, the HTML report and the live
Textual screen (one folder each; the command line is cli.py with options.py and commands/).

Nothing here imports textual at module level: ``llmtop --no-ui`` must never load it.
"""
