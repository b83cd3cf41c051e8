"""The run folder on disk: the writer of ``requests.jsonl``, ``summary.json`` and
``run.json``, the reader that turns damaged files into notes, the discovery of runs under a
results root, and CSV export.

May import ``engine.http``, ``engine.telemetry``, ``engine.metrics``, ``engine.workload`` and
the shared root.
"""
