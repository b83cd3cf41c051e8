"""Processes llmtop starts: the embedded llama-server (built once from PyPI into a cache),
a server from a ``--server-cmd`` template, and the expansion of templates into a matrix; the
watchdog that writes a server's log and stops it when llmtop dies, and the servers an
earlier llmtop left running all the same (found, reported, stopped on request).

A top layer beside ``engine.run``; may import every layer below it.
"""
