"""Pure functions that build Block Kit messages, modals and the App Home view. No I/O."""
