"""engine.http."""
