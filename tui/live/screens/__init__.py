"""tui.live.screens."""
