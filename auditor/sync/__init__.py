"""Apply what drifted and prune what left Git: the ChangeSet and its staged execution."""
