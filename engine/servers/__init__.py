"""Processes llmtop starts: the embedded llama-server (built once from PyPI into a cache),
a server from a ``--server-cmd`` template, and the expansion of templates into a matrix.

A top layer beside ``engine.run``; may import every layer below it.
"""
