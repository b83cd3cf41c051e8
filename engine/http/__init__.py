"""Talking to the server: the streaming client, the SSE decoder, compressed answers, one
request's exchange (timestamps to record), failures as kinds and messages, server-kind
detection, feature probes, the tokenizer vocabulary and the Authorization header.

May import ``engine.metrics``, ``engine.workload`` and the shared root; not telemetry, results
or the run (a sibling of ``engine.telemetry``).
"""
