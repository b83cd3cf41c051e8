"""tui.commands."""
