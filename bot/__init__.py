"""Process wiring: settings, logging, metrics, the Bolt app, the Socket Mode runner, the sidecar, the CLI."""

__version__ = "0.1.0"
