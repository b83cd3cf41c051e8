"""Runs read back: comparisons with bootstrap intervals, their wording, mismatch checks,
time series (timelines) for reports and replay, the peers' definitions recomputed from the
records (``peers/``), and Chrome/Perfetto traces (``trace``).

Works on run folders through ``engine.results``; may import every layer below it, not
``engine.run`` or ``engine.servers`` (its siblings).
"""
