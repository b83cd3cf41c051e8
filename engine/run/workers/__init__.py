"""Worker processes that send a run's load together (``--workers N``, ``--ray``).

One Python event loop tops out near one core (bench/RESULTS.md). Here the parent (the
engine's own process) splits each profile's schedule once (``engine.workload.split``) and
each worker runs an ordinary ``ProfileRun`` on its share. Workers send their events to the
parent in batches (``messages``); the parent (``pooled_run``) republishes them on the run's
bus on one clock and in finish order, so the results writer, console, screen, outage rule
and write-failure stop work unchanged, and decides for everyone (stop, pause, cancel).

* ``messages``: what crosses between parent and worker (commands one way, batches back);
* ``runtime``: a worker's side, whatever carries its messages;
* ``process``: workers as processes of this machine over ``multiprocessing`` pipes;
* ``ray_link``: workers as Ray actors across a cluster's nodes (``llmtop[ray]``);
* ``clock``, ``ordering``, ``health``: the parent's clock offsets, finish-order merge and
  per-worker health;
* ``pool``, ``pooled_run``: the parent's side: the workers for the run, and one profile.

Part of ``engine.run``; imports the layers below it and ``engine.run``'s profile run, never
``engine.run.engine``.
"""
