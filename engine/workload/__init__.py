"""What to send: profiles and suites (validated TOML), open-loop arrival schedules, prompts
(synthetic, repeated or from users' files), and the queue of scenarios a run works through.

Pure data and its rules, no I/O beyond reading profile and prompt files. May import only the
shared root (``engine.errors``, ``engine.stats``, ``engine.records``).
"""
