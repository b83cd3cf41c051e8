"""The panes of the live screen, one module per concern: the text-pane base, header and
latency table (``panes``), the charts (``load``), GPUs and host (``system``), the scenario
queue (``queue``), results and the ladder (``results``), the requests list. They draw what
``LiveView`` holds and never do I/O.
"""
