"""engine.workload."""
