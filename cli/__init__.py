"""The ``driftwarden`` command line: flags, output and exit codes over the processes (top layer)."""
