"""auditor.source.git against real repositories on disk (file:// and a local HTTP server), nothing mocked."""

from __future__ import annotations

import asyncio
import base64
import os
import shutil
import socket
import stat
import threading
from collections.abc import Callable, Iterator
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from auditor.source.git import (
    GitCredentials,
    cached,
    credential_environment,
    fetch,
    last_known,
    mirror_path,
    scrub,
)
from driftwarden.errors import (
    GitError,
    GitUnreachableError,
    RenderError,
    RevisionNotFoundError,
    TemporaryError,
)
from tests.support.gitrepo import GitRepo

TOKEN = "ghp_s3cretTokenValue1234567890"
MakeRepo = Callable[..., GitRepo]


@pytest.fixture
def cache(tmp_path: Path) -> Path:
    return tmp_path / "cache"


@pytest.fixture
def origin(git_repo: MakeRepo) -> GitRepo:
    repo = git_repo({"apps/web/cm.yaml": "v: 1\n", "README.md": "hello\n"}, name="origin")
    repo.tag("v1.0.0")
    repo.git("tag", "-a", "v1.0.0-annotated", "-m", "annotated release")
    repo.git("branch", "release")
    repo.commit({"apps/web/cm.yaml": "v: 2\n"}, message="second")
    return repo


async def test_resolves_branch_tag_shas_and_head(origin: GitRepo, cache: Path) -> None:
    first = origin.git("rev-parse", "v1.0.0")
    second = origin.head()
    repo = await fetch(origin.url, cache_dir=cache)
    assert await repo.resolve("main") == second
    assert await repo.resolve("release") == first
    assert await repo.resolve("v1.0.0") == first
    assert await repo.resolve("v1.0.0-annotated") == first  # peeled to the commit, not the tag object
    assert await repo.resolve("refs/tags/v1.0.0") == first
    assert await repo.resolve("refs/heads/main") == second
    assert await repo.resolve(first) == first
    assert await repo.resolve(first.upper()) == first
    assert await repo.resolve(first[:7]) == first
    assert await repo.resolve("HEAD") == second
    assert await repo.resolve("") == second


async def test_head_follows_the_remotes_default_branch(origin: GitRepo, cache: Path) -> None:
    origin.git("checkout", "-q", "release")
    repo = await fetch(origin.url, cache_dir=cache)
    assert await repo.resolve("HEAD") == origin.git("rev-parse", "release")


async def test_a_branch_wins_over_a_tag_of_the_same_name(origin: GitRepo, cache: Path) -> None:
    origin.git("tag", "release", "v1.0.0")  # a tag named like the branch, at another commit
    origin.commit({"x.txt": "x"}, message="on main")
    origin.git("branch", "-f", "release", "main")
    repo = await fetch(origin.url, cache_dir=cache)
    assert await repo.resolve("release") == origin.head()
    assert await repo.resolve("refs/tags/release") == origin.git("rev-parse", "v1.0.0")


async def test_missing_revision_says_what_was_tried(origin: GitRepo, cache: Path) -> None:
    repo = await fetch(origin.url, cache_dir=cache)
    with pytest.raises(RevisionNotFoundError) as err:
        await repo.resolve("feature/nope")
    text = str(err.value)
    assert "'feature/nope'" in text
    assert "branch feature/nope" in text and "tag feature/nope" in text
    assert "branches: main, release" in text and "v1.0.0" in text
    with pytest.raises(RevisionNotFoundError, match=r"commit 0{40}"):
        await repo.resolve("0" * 40)
    with pytest.raises(RevisionNotFoundError, match="abbreviated commit abcdef1"):
        await repo.resolve("abcdef1")
    for not_a_name in ("main~1", "main^", "HEAD@{1}", "--all", "main..release"):
        with pytest.raises(RevisionNotFoundError, match="not a valid name"):
            await repo.resolve(not_a_name)


async def test_fetch_picks_up_new_commits_and_prunes_deleted_refs(origin: GitRepo, cache: Path) -> None:
    repo = await fetch(origin.url, cache_dir=cache)
    assert await repo.resolve("release")
    origin.git("branch", "-D", "release")
    third = origin.commit({"apps/web/cm.yaml": "v: 3\n"}, message="third")
    again = await fetch(origin.url, cache_dir=cache)
    assert again.path == repo.path == mirror_path(origin.url, cache_dir=cache)
    assert await again.resolve("main") == third
    with pytest.raises(RevisionNotFoundError):
        await again.resolve("release")


async def test_export_reads_only_the_commit_not_the_working_tree(
    origin: GitRepo, cache: Path, tmp_path: Path
) -> None:
    first = origin.git("rev-parse", "v1.0.0")
    (origin.path / "apps/web/cm.yaml").write_text("uncommitted\n")
    (origin.path / "untracked.yaml").write_text("x: 1\n")
    repo = await fetch(origin.url, cache_dir=cache)
    out = await repo.export(first, dest=tmp_path / "export")
    assert (out / "apps/web/cm.yaml").read_text() == "v: 1\n"
    assert sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file()) == [
        "README.md",
        "apps/web/cm.yaml",
    ]
    async with repo.exported(origin.head(), scratch_dir=tmp_path) as root:
        assert (root / "apps/web/cm.yaml").read_text() == "v: 2\n"
        assert not (root / ".git").exists()
    assert not root.exists()


async def test_export_keeps_modes_and_inside_links_and_refuses_outside_links(
    git_repo: MakeRepo, cache: Path, tmp_path: Path
) -> None:
    origin = git_repo({"run.sh": "#!/bin/sh\n", "base/cm.yaml": "a: 1\n"})
    (origin.path / "run.sh").chmod(0o755)
    (origin.path / "link.yaml").symlink_to("base/cm.yaml")
    origin.git("add", "-A")
    good = origin.commit(message="modes and an inside link")
    repo = await fetch(origin.url, cache_dir=cache)
    out = await repo.export(good, dest=tmp_path / "good")
    assert (out / "run.sh").stat().st_mode & stat.S_IXUSR
    assert not (out / "base/cm.yaml").stat().st_mode & stat.S_IXUSR
    assert (out / "link.yaml").is_symlink() and (out / "link.yaml").read_text() == "a: 1\n"

    (origin.path / "base/escape.yaml").symlink_to("../../../../etc/passwd")
    origin.git("add", "-A")
    bad = origin.commit(message="an escaping link")
    repo = await fetch(origin.url, cache_dir=cache)
    with pytest.raises(RenderError, match=r"base/escape.yaml is a symbolic link that points outside"):
        await repo.export(bad, dest=tmp_path / "bad")
    with pytest.raises(GitError, match="not empty"):
        await repo.export(good, dest=tmp_path / "good")
    with pytest.raises(GitError, match="full commit SHA"):
        await repo.export("main", dest=tmp_path / "other")


async def test_unreachable_remote_without_a_previous_fetch(tmp_path: Path, cache: Path) -> None:
    url = (tmp_path / "does-not-exist").as_uri()
    with pytest.raises(GitUnreachableError) as err:
        await fetch(url, cache_dir=cache)
    assert isinstance(err.value, TemporaryError)
    assert "does-not-exist" in str(err.value) and "does not appear to be a git repository" in str(err.value)
    assert await cached(url, cache_dir=cache) is None
    assert await last_known(url, "main", cache_dir=cache) is None
    assert not mirror_path(url, cache_dir=cache).exists()
    assert list(cache.iterdir()) == []  # no half-made mirror left behind


async def test_remote_gone_after_a_good_fetch_keeps_the_last_good_revision(
    origin: GitRepo, cache: Path, tmp_path: Path
) -> None:
    good = origin.head()
    await fetch(origin.url, cache_dir=cache)
    url = origin.url
    shutil.move(origin.path, tmp_path / "moved-away")
    with pytest.raises(GitUnreachableError):
        await fetch(url, cache_dir=cache)
    assert await last_known(url, "main", cache_dir=cache) == good
    assert await last_known(url, "no-such-branch", cache_dir=cache) is None
    repo = await cached(url, cache_dir=cache)
    assert repo is not None
    assert await repo.resolve("v1.0.0") == GitRepo(tmp_path / "moved-away").git("rev-parse", "v1.0.0")
    async with repo.exported(good) as root:
        assert (root / "apps/web/cm.yaml").read_text() == "v: 2\n"


async def test_concurrent_fetches_of_one_repository_share_the_mirror(origin: GitRepo, cache: Path) -> None:
    repos = await asyncio.gather(*(fetch(origin.url, cache_dir=cache) for _ in range(4)))
    assert {r.path for r in repos} == {mirror_path(origin.url, cache_dir=cache)}
    assert [await r.resolve("main") for r in repos] == [origin.head()] * 4


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def test_https_token_never_appears_in_errors_or_on_disk(cache: Path) -> None:
    port = _closed_port()
    creds = GitCredentials(username="deploy", password=TOKEN)
    for url in (f"https://127.0.0.1:{port}/infra.git", f"https://deploy:{TOKEN}@127.0.0.1:{port}/infra.git"):
        with pytest.raises(GitUnreachableError) as err:
            await fetch(url, cache_dir=cache, credentials=creds, git_timeout=30)
        text = f"{err.value}\n{err.value!r}\n{err.value.__cause__!r}\n{err.value.__context__!r}"
        assert f"127.0.0.1:{port}" in text
        assert TOKEN not in text
    assert TOKEN not in repr(creds) and "deploy" in repr(creds)
    assert mirror_path(f"https://deploy:{TOKEN}@h/x.git", cache_dir=cache).name.startswith("x-")
    assert TOKEN not in str(mirror_path(f"https://deploy:{TOKEN}@h/x.git", cache_dir=cache))
    assert not cache.exists() or not any(TOKEN in p.name for p in cache.rglob("*"))


class _AuthHandler(SimpleHTTPRequestHandler):
    """Git's dumb HTTP protocol over a static bare repository, behind HTTP basic auth."""

    expected = ""

    def do_GET(self) -> None:
        if self.headers.get("Authorization") != self.expected:
            self.send_response(401)
            self.send_header("WWW-Authenticate", 'Basic realm="git"')
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        super().do_GET()

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def http_remote(origin: GitRepo, tmp_path: Path) -> Iterator[str]:
    bare = tmp_path / "served" / "infra.git"
    GitRepo(tmp_path).git("clone", "-q", "--bare", str(origin.path), str(bare))
    GitRepo(bare).git("update-server-info")
    handler = partial(_AuthHandler, directory=str(bare.parent))
    _AuthHandler.expected = "Basic " + base64.b64encode(f"deploy:{TOKEN}".encode()).decode()
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/infra.git"
    finally:
        server.shutdown()
        server.server_close()


async def test_http_credentials_reach_git_through_the_helper(
    http_remote: str, origin: GitRepo, cache: Path
) -> None:
    with pytest.raises(GitUnreachableError) as err:
        await fetch(http_remote, cache_dir=cache, git_timeout=30)
    assert "terminal prompts disabled" in str(err.value) or "Authentication failed" in str(err.value)
    wrong = GitCredentials(username="deploy", password=TOKEN[::-1])
    with pytest.raises(GitUnreachableError) as err:
        await fetch(http_remote, cache_dir=cache, credentials=wrong, git_timeout=30)
    assert TOKEN[::-1] not in str(err.value) and "Authentication failed" in str(err.value)
    repo = await fetch(http_remote, cache_dir=cache, credentials=GitCredentials("deploy", TOKEN))
    assert await repo.resolve("main") == origin.head()
    in_url = await fetch(http_remote.replace("http://", f"http://deploy:{TOKEN}@"), cache_dir=cache)
    assert TOKEN not in str(in_url) and await in_url.resolve("main") == origin.head()
    stored = [p for p in cache.rglob("*") if p.is_file()]
    assert len(stored) > 10 and not any(TOKEN.encode() in p.read_bytes() for p in stored)


def test_credential_files_are_private_and_removed() -> None:
    key = "-----BEGIN OPENSSH PRIVATE KEY-----\nAAAAkeymaterial\n-----END OPENSSH PRIVATE KEY-----"
    creds = GitCredentials(password=TOKEN, ssh_private_key=key, known_hosts="h ssh-ed25519 AAAA")
    with credential_environment(creds) as env:
        assert all(TOKEN not in v and "keymaterial" not in v for v in env.values())
        ssh = env["GIT_SSH_COMMAND"]
        key_file = Path(ssh.split("-i '")[1].split("'")[0])
        hosts_file = Path(ssh.split("UserKnownHostsFile='")[1].split("'")[0])
        helper_file = Path(env["GIT_CONFIG_VALUE_1"].split("cat '")[1].split("'")[0])
        assert env["GIT_CONFIG_KEY_0"] == "credential.helper" and env["GIT_CONFIG_VALUE_0"] == ""
        assert "StrictHostKeyChecking=yes" in ssh and "BatchMode=yes" in ssh
        for path in (key_file, hosts_file, helper_file):
            assert stat.S_IMODE(path.stat().st_mode) == 0o600
        assert stat.S_IMODE(key_file.parent.stat().st_mode) == 0o700
        assert key_file.read_text() == key + "\n"
        assert helper_file.read_text() == f"username=git\npassword={TOKEN}\n"
    assert not key_file.parent.exists()
    with pytest.raises(GitError, match="newline") as err, credential_environment(GitCredentials("u", "a\nb")):
        pass
    assert "a\nb" not in str(err.value)
    with credential_environment(None) as env:
        assert env["GIT_TERMINAL_PROMPT"] == "0" and "GIT_CONFIG_KEY_1" not in env


def test_scrub_removes_userinfo_and_secrets() -> None:
    text = f"fatal: unable to access 'https://bob:{TOKEN}@git.example/x.git/': token {TOKEN} rejected"
    out = scrub(text, GitCredentials(password=TOKEN).secrets())
    assert TOKEN not in out and "bob" not in out
    assert out == "fatal: unable to access 'https://***@git.example/x.git/': token *** rejected"
    assert os.sep not in mirror_path("git@github.com:org/infra.git", cache_dir=Path("c")).name
