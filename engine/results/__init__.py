"""engine.results."""
