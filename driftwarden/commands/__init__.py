"""Subcommands of the ``driftwarden`` CLI, one module each."""
