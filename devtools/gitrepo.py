"""Real Git repositories on disk, made with the git CLI: what the tests and the demo give the auditor to read.

A repository here is one a user's infra repo would be: commits on ``main``, branches, tags, reverts. The
environment keeps the user's own git configuration out. Nothing at run time imports this.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

_ENV = {
    "GIT_AUTHOR_NAME": "Dana Developer",
    "GIT_AUTHOR_EMAIL": "dana@example.test",
    "GIT_COMMITTER_NAME": "Dana Developer",
    "GIT_COMMITTER_EMAIL": "dana@example.test",
    "GIT_CONFIG_NOSYSTEM": "1",
    "HOME": "/nonexistent",  # keep the user's ~/.gitconfig out of these repositories
    "PATH": "/usr/local/bin:/usr/bin:/bin",
}


@dataclass(frozen=True)
class GitRepo:
    """A working repository at ``path`` on branch ``main``; ``url`` is what an Application names."""

    path: Path

    @property
    def url(self) -> str:
        return self.path.as_uri()

    def git(self, *args: str) -> str:
        result = subprocess.run(
            ["git", *args], cwd=self.path, env=_ENV, check=True, capture_output=True, text=True
        )
        return result.stdout.strip()

    def commit(
        self,
        files: Mapping[str, str] | None = None,
        *,
        remove: Iterable[str] = (),
        message: str = "update",
        allow_empty: bool = False,
    ) -> str:
        """Write ``files`` (relative path → text), delete ``remove``, commit, and return the SHA."""
        for rel, text in (files or {}).items():
            target = self.path / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(text)
            self.git("add", "--", rel)
        for rel in remove:
            self.git("rm", "-r", "-q", "--", rel)
        args = ["commit", "-q", "-m", message] + (["--allow-empty"] if allow_empty else [])
        self.git(*args)
        return self.head()

    def head(self) -> str:
        return self.git("rev-parse", "HEAD")

    def tag(self, name: str) -> None:
        self.git("tag", name)


def make_repo(path: Path, files: Mapping[str, str], *, message: str = "initial") -> GitRepo:
    """A new repository at ``path`` with ``files`` in its first commit on branch ``main``."""
    path.mkdir(parents=True, exist_ok=True)
    repo = GitRepo(path)
    repo.git("init", "-q", "-b", "main")
    repo.commit(files, message=message)
    return repo
