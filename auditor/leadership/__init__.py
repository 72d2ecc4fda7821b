"""Leader election between auditor replicas over a coordination.k8s.io Lease."""
