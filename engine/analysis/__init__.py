"""Runs read back: comparisons with bootstrap intervals, their wording, mismatch checks,
and time series (timelines) for reports and replay.

Works on run folders through ``engine.results``; may import every layer below it, not
``engine.run`` or ``engine.servers`` (its siblings).
"""
