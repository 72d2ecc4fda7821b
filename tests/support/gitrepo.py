"""Real Git repositories on disk for tests (``devtools.gitrepo``, which the demo uses too): made with the git
CLI, committed file by file; the auditor reads them through its own Git adapter. Nothing here is mocked."""

from devtools.gitrepo import GitRepo, make_repo

__all__ = ["GitRepo", "make_repo"]
