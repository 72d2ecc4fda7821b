"""driftwarden's kernel: what the webhook, the auditor and certs share (contract, fieldsV1, errors,
settings, Kubernetes clients, telemetry). It imports none of them, nor the CLI or the development tools."""

__version__ = "0.1.0"
