"""tui.live."""
