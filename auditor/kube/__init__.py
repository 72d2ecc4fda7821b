"""The auditor's Kubernetes adapters: objects, Applications, Events, discovery and REST mapping."""
