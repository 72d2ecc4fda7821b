"""Git source adapter: a cache of bare mirrors, revision resolution, and export of one commit's tree.

Adapter layer. GitPython and git run in worker threads, never on the event loop; failures are raised as
driftwarden.errors: ``GitUnreachableError`` (temporary) when a fetch fails, ``RevisionNotFoundError`` when a
revision names nothing, ``GitError`` for the rest. Credentials arrive as values (``GitCredentials``) and reach
git only through 0600 files in a private temporary directory that is removed after each fetch (a credential
helper file, an SSH key, known_hosts): never through a URL, argv, the environment, the mirror's config, a
log line or an error message (messages are scrubbed of them and of URL userinfo).

This module must not read os.environ, log, render manifests or decide policy. Fallback to the last good
revision is the caller's choice, made possible because a failed fetch leaves the mirror as it was::

    try:
        repo = await fetch(url, cache_dir=cache, credentials=creds)
    except GitUnreachableError:
        repo = await cached(url, cache_dir=cache)    # None: never fetched, nothing to fall back to
        if repo is None:
            raise
    sha = await repo.resolve(revision)                # resolves against the last successful fetch

``last_known(url, revision, cache_dir=...)`` does the second half in one call.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import re
import shutil
import tempfile
from collections.abc import AsyncIterator, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

import git

from driftwarden.errors import GitError, GitUnreachableError, RenderError, RevisionNotFoundError

DEFAULT_FETCH_TIMEOUT = 300.0
REMOTE_HEAD_REF = "refs/driftwarden/HEAD"
"""Where a fetch stores the commit the remote's HEAD points at (its default branch)."""
ALLOWED_PROTOCOLS = "https:http:ssh:git:file"

_REFSPECS = ("+refs/heads/*:refs/heads/*", "+refs/tags/*:refs/tags/*", f"+HEAD:{REMOTE_HEAD_REF}")
_MESSAGE_LIMIT = 1500
_LISTED_REFS = 10
_FULL_SHA = re.compile(r"^[0-9a-f]{40}$")
_SHORT_SHA = re.compile(r"^[0-9a-f]{4,39}$")
_NOT_A_NAME = re.compile(r"[~^:?*\[\\\s]|\.\.|@\{|^-")
_USERINFO = re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://)[^/@\s'\"]+@")
_SYMLINK_MODE = 0o120000
_LOCKS: dict[Path, asyncio.Lock] = {}


@dataclass(frozen=True, repr=False)
class GitCredentials:
    """HTTPS basic credentials and/or an SSH key, as read from a Secret; ``repr`` hides the secrets.

    A token goes in ``password`` (``username`` defaults to ``git``). An SSH key is used with
    StrictHostKeyChecking: the host must be in ``known_hosts`` (or, when that is empty, the system's).
    """

    username: str = ""
    password: str = ""
    ssh_private_key: str = ""
    known_hosts: str = ""

    def __repr__(self) -> str:
        hidden = {"password": self.password, "ssh_private_key": self.ssh_private_key}
        shown = ", ".join(f"{k}={'<set>' if v else '<unset>'}" for k, v in hidden.items())
        return f"GitCredentials(username={self.username!r}, {shown})"

    def secrets(self) -> tuple[str, ...]:
        """The values that must never appear in text this module produces."""
        values = [self.password, quote(self.password, safe=""), self.ssh_private_key]
        return tuple(v for v in values if len(v) >= 3)


def scrub(text: str, secrets: tuple[str, ...] = ()) -> str:
    """``text`` without URL userinfo (``https://user:token@host`` → ``https://***@host``) or ``secrets``."""
    text = _USERINFO.sub(r"\1***@", text)
    for secret in sorted(secrets, key=len, reverse=True):
        text = text.replace(secret, "***")
    return text


def _clip(text: str) -> str:
    text = text.strip()
    return text if len(text) <= _MESSAGE_LIMIT else "..." + text[-_MESSAGE_LIMIT:]


def mirror_path(repo_url: str, *, cache_dir: Path) -> Path:
    """The bare mirror of ``repo_url`` under ``cache_dir``: a readable name plus a hash of the whole URL."""
    url = repo_url.strip().rstrip("/")
    digest = hashlib.sha256(url.encode()).hexdigest()[:20]
    tail = _USERINFO.sub(r"\1", url).rsplit("/", 1)[-1].rsplit(":", 1)[-1].removesuffix(".git")
    name = re.sub(r"[^A-Za-z0-9._-]+", "-", tail).strip(".-")[:40] or "repo"
    return cache_dir / f"{name}-{digest}.git"


def _private_file(directory: Path, name: str, text: str) -> Path:
    path = directory / name
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(text)
    return path


@contextlib.contextmanager
def credential_environment(credentials: GitCredentials | None) -> Iterator[dict[str, str]]:
    """Variables for a git child process; secrets live in 0600 files that are removed on exit."""
    env = {
        "GIT_TERMINAL_PROMPT": "0",
        "GIT_ALLOW_PROTOCOL": ALLOWED_PROTOCOLS,
        "GIT_HTTP_LOW_SPEED_LIMIT": "1000",
        "GIT_HTTP_LOW_SPEED_TIME": "60",
        # Reset every credential helper from system/global config (none may store our token).
        "GIT_CONFIG_COUNT": "1",
        "GIT_CONFIG_KEY_0": "credential.helper",
        "GIT_CONFIG_VALUE_0": "",
        "GIT_SSH_COMMAND": "ssh -o BatchMode=yes",
    }
    if credentials is None or not (credentials.password or credentials.ssh_private_key):
        yield env
        return
    one_line = (credentials.username, credentials.password)
    if any(c in value for value in one_line for c in "\n\0") or "\0" in credentials.ssh_private_key:
        raise GitError("Git credentials must not contain newline or NUL characters")
    workdir = Path(tempfile.mkdtemp(prefix="driftwarden-git-"))  # mode 0700
    try:
        if credentials.password:
            user = credentials.username or "git"
            store = _private_file(
                workdir, "credentials", f"username={user}\npassword={credentials.password}\n"
            )
            helper = f"!f() {{ test \"$1\" = get && cat '{store}'; }}; f"
            env.update(GIT_CONFIG_COUNT="2", GIT_CONFIG_KEY_1="credential.helper", GIT_CONFIG_VALUE_1=helper)
        if credentials.ssh_private_key:
            key = _private_file(workdir, "id_key", credentials.ssh_private_key.rstrip("\n") + "\n")
            ssh = f"ssh -o BatchMode=yes -o IdentitiesOnly=yes -i '{key}' -o StrictHostKeyChecking=yes"
            if credentials.known_hosts:
                hosts = _private_file(workdir, "known_hosts", credentials.known_hosts.rstrip("\n") + "\n")
                ssh += f" -o UserKnownHostsFile='{hosts}'"
            env["GIT_SSH_COMMAND"] = ssh
        yield env
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def _is_repo(path: Path) -> bool:
    try:
        with git.Repo(path) as repo:
            return bool(repo.bare)
    except (git.InvalidGitRepositoryError, git.NoSuchPathError):
        return False


def _run(
    path: Path, args: list[str], *, env: Mapping[str, str] | None = None, timeout: float | None = None
) -> tuple[int, str, str]:
    status, out, err = git.Git(path).execute(
        ["git", *args],
        with_extended_output=True,
        with_exceptions=False,
        env=dict(env or {}),
        kill_after_timeout=timeout,
    )
    as_text = [v.decode(errors="replace") if isinstance(v, bytes) else str(v or "") for v in (out, err)]
    return int(status or 0), as_text[0], as_text[1]


def _fetch_sync(repo_url: str, path: Path, credentials: GitCredentials | None, timeout: float) -> None:
    secrets = credentials.secrets() if credentials else ()
    target, fresh = path, not _is_repo(path)
    if fresh:
        path.parent.mkdir(parents=True, exist_ok=True)
        shutil.rmtree(path, ignore_errors=True)
        target = Path(tempfile.mkdtemp(prefix=path.name + ".partial-", dir=path.parent))
        git.Repo.init(target, bare=True).close()
    try:
        with credential_environment(credentials) as env:
            status, _, err = _run(
                target,
                [
                    "fetch",
                    "--prune",
                    "--no-tags",
                    "--no-write-fetch-head",
                    "--quiet",
                    "--",
                    repo_url,
                    *_REFSPECS,
                ],
                env=env,
                timeout=timeout,
            )
        if status != 0:
            detail = _clip(scrub(err, secrets)) or f"git exited with status {status}"
            raise GitUnreachableError(f"cannot fetch {display_url(repo_url)}: {detail}")
        if fresh:
            target.rename(path)
    finally:
        if fresh and target.exists():
            shutil.rmtree(target, ignore_errors=True)


def display_url(repo_url: str) -> str:
    """``repo_url`` as it may appear in messages (without userinfo)."""
    return scrub(repo_url.strip())


def _lock(path: Path) -> asyncio.Lock:
    return _LOCKS.setdefault(path, asyncio.Lock())


async def fetch(
    repo_url: str,
    *,
    cache_dir: Path,
    credentials: GitCredentials | None = None,
    git_timeout: float = DEFAULT_FETCH_TIMEOUT,
) -> LocalRepo:
    """Clone (first time) or fetch ``repo_url`` into its bare mirror under ``cache_dir``.

    Branches, tags and the remote's HEAD are mirrored, deleted ones pruned. On failure the mirror is left
    exactly as the last successful fetch made it and ``GitUnreachableError`` (a TemporaryError, scrubbed of
    credentials) is raised; see the module docstring for falling back to it.
    """
    path = mirror_path(repo_url, cache_dir=cache_dir)
    async with _lock(path):
        await asyncio.to_thread(_fetch_sync, repo_url, path, credentials, git_timeout)
    return LocalRepo(path=path, url=display_url(repo_url))


async def cached(repo_url: str, *, cache_dir: Path) -> LocalRepo | None:
    """The mirror the last fetch of ``repo_url`` left, without touching the network; None if there is none."""
    path = mirror_path(repo_url, cache_dir=cache_dir)
    if not await asyncio.to_thread(_is_repo, path):
        return None
    return LocalRepo(path=path, url=display_url(repo_url))


async def last_known(repo_url: str, revision: str, *, cache_dir: Path) -> str | None:
    """The commit ``revision`` resolved to at the last successful fetch; None if unknown then."""
    repo = await cached(repo_url, cache_dir=cache_dir)
    if repo is None:
        return None
    try:
        return await repo.resolve(revision)
    except RevisionNotFoundError:
        return None


def _write_blob(blob: git.Blob, target: Path, links: list[tuple[str, Path]]) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    if blob.mode & 0o170000 == _SYMLINK_MODE:
        target.symlink_to(os.fsdecode(blob.data_stream.read()))
        links.append((str(blob.path), target))
        return
    with target.open("wb") as handle:
        shutil.copyfileobj(blob.data_stream, handle)
    target.chmod(0o755 if blob.mode & 0o111 else 0o644)


@dataclass(frozen=True)
class LocalRepo:
    """A bare mirror on disk (``path``) of the repository at ``url`` (scrubbed, for messages)."""

    path: Path
    url: str

    async def resolve(self, revision: str) -> str:
        """The full commit SHA of a branch, tag, full or abbreviated SHA, ``refs/...`` name or ``HEAD``.

        A name that is both a branch and a tag resolves to the branch, as in Argo CD.
        """
        return await asyncio.to_thread(self._resolve_sync, revision)

    async def export(self, sha: str, *, dest: Path) -> Path:
        """Write the tree of commit ``sha`` (only that commit's files) into the new or empty ``dest``.

        Submodules are left out. A symbolic link that resolves outside ``dest`` is a RenderError.
        """
        await asyncio.to_thread(self._export_sync, sha, dest)
        return dest

    @contextlib.asynccontextmanager
    async def exported(self, sha: str, *, scratch_dir: Path | None = None) -> AsyncIterator[Path]:
        """``export`` into a fresh temporary directory that is removed afterwards."""
        dest = Path(
            await asyncio.to_thread(tempfile.mkdtemp, prefix=f"driftwarden-{sha[:12]}-", dir=scratch_dir)
        )
        try:
            yield await self.export(sha, dest=dest)
        finally:
            await asyncio.to_thread(shutil.rmtree, dest, True)

    def _commit(self, rev: str) -> str | None:
        status, out, _ = _run(
            self.path, ["rev-parse", "--verify", "--quiet", "--end-of-options", f"{rev}^{{commit}}"]
        )
        return out.strip() if status == 0 and _FULL_SHA.match(out.strip()) else None

    def _abbreviated(self, prefix: str) -> list[str]:
        status, out, _ = _run(self.path, ["rev-parse", f"--disambiguate={prefix}"])
        found = out.split() if status == 0 else []
        return sorted(sha for sha in found if _run(self.path, ["cat-file", "-t", sha])[1].strip() == "commit")

    def _names(self, namespace: str) -> str:
        _, out, _ = _run(
            self.path,
            ["for-each-ref", f"--count={_LISTED_REFS + 1}", "--format=%(refname:lstrip=2)", namespace],
        )
        names = out.split()
        shown = ", ".join(names[:_LISTED_REFS]) or "none"
        return shown + (", ..." if len(names) > _LISTED_REFS else "")

    def _resolve_sync(self, revision: str) -> str:
        if not _is_repo(self.path):
            raise GitError(f"no local copy of {self.url} at {self.path}; fetch it first")
        rev = revision.strip() or "HEAD"
        candidates: list[tuple[str, str]] = []
        if rev == "HEAD":
            candidates.append(("the remote's HEAD", REMOTE_HEAD_REF))
        elif not _NOT_A_NAME.search(rev):
            if _FULL_SHA.match(rev.lower()):
                candidates.append((f"commit {rev.lower()}", rev.lower()))
            if rev.startswith("refs/"):
                candidates.append((f"ref {rev}", rev))
            candidates += [(f"branch {rev}", f"refs/heads/{rev}"), (f"tag {rev}", f"refs/tags/{rev}")]
        for _, ref in candidates:
            sha = self._commit(ref)
            if sha:
                return sha
        tried = [label for label, _ in candidates]
        if _SHORT_SHA.match(rev.lower()):
            matches = self._abbreviated(rev.lower())
            if len(matches) == 1:
                return matches[0]
            tried.append(
                f"abbreviated commit {rev}" + (f" (ambiguous: {len(matches)} commits)" if matches else "")
            )
        raise RevisionNotFoundError(
            f"revision {revision!r} not found in {self.url}: "
            f"tried {', '.join(tried) or 'nothing (not a valid name)'}; "
            f"branches: {self._names('refs/heads')}; tags: {self._names('refs/tags')} (as of the last fetch)"
        )

    def _export_sync(self, sha: str, dest: Path) -> None:
        if not _FULL_SHA.match(sha):
            raise GitError(f"export needs a full commit SHA, got {sha!r}; resolve the revision first")
        dest.mkdir(parents=True, exist_ok=True)
        if any(dest.iterdir()):
            raise GitError(f"export destination {dest} is not empty")
        links: list[tuple[str, Path]] = []
        with git.Repo(self.path) as repo:
            try:
                commit = repo.commit(sha)
            except (ValueError, git.BadName) as exc:
                raise RevisionNotFoundError(f"commit {sha} is not in the local copy of {self.url}") from exc
            for item in commit.tree.traverse():
                if isinstance(item, git.Tree):
                    (dest / item.path).mkdir(parents=True, exist_ok=True)
                elif isinstance(item, git.Blob):  # submodules (gitlinks) are left out
                    _write_blob(item, dest / item.path, links)
        root = dest.resolve()
        for rel, link in links:
            if not link.resolve().is_relative_to(root):
                raise RenderError(f"{rel} is a symbolic link that points outside the repository; refusing it")
