"""The panes of the live screen (queue, sparklines, throughput, GPU, server) and the
requests list; they draw what ``LiveView`` holds and never do I/O.
"""
