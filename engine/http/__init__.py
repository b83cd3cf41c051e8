"""Talking to the server: the streaming client, the SSE decoder, one request's exchange
(timestamps to record), server-kind detection, feature probes, the tokenizer vocabulary and
the Authorization header.

May import ``engine.metrics``, ``engine.workload`` and the shared root; not telemetry, results
or the run (a sibling of ``engine.telemetry``).
"""
