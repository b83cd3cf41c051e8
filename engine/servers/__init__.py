"""engine.servers."""
