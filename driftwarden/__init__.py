"""driftwarden: the CLI and what the webhook and auditor share (contract names, settings, clients)."""

__version__ = "0.1.0"
