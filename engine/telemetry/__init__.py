"""engine.telemetry."""
