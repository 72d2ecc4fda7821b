"""Compare Git with the cluster: SSA dry runs, normalisation, ignore rules, diffs."""
