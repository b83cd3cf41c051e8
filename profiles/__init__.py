"""The built-in profiles and suites, as data: installed as ``engine.workload.builtin``."""
