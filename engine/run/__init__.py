"""The engine proper: ``RunConfig`` in, events out. ``Engine`` drives the queue of profiles
(``ProfileRun`` each, in this process, or its share in each worker process: ``workers/``,
chosen by ``senders``), watches its own event loop's lag, and hands events to sinks.

The top layer with ``engine.analysis`` and ``engine.servers``; may import everything below it.
"""
