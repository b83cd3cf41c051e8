"""llmtop's measurement engine: no UI code, importable headless."""

__version__ = "0.1.0"
