"""engine.run."""
