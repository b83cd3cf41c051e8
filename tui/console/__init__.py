"""tui.console."""
