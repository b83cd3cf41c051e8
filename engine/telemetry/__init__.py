"""Sampling beside the requests: GPUs through NVML, the host and a local server process
through psutil, the server's Prometheus ``/metrics``, and the windows that turn samples into
per-profile figures.

May import ``engine.metrics``, ``engine.workload`` and the shared root; not ``engine.http``
(a sibling), results or the run. Blocking reads run in worker threads.
"""
