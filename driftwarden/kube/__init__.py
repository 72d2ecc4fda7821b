"""Kubernetes clients shared by both processes: credentials, REST, watches, client spans."""
