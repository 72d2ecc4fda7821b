"""auditor package."""
