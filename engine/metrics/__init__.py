"""Records to figures, pure: percentiles, throughput, goodput, per-profile and run
summaries (``summary.py``) and the knee of a load ladder (``knee.py``).

May import ``engine.workload`` and the shared root; never the network or the disk.
"""
