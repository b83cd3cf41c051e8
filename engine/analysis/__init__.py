"""engine.analysis."""
