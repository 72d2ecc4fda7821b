"""driftwarden package."""
