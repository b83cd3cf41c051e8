"""tui.report."""
