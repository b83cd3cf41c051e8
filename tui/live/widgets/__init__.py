"""tui.live.widgets."""
