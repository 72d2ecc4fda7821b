"""Git push webhook payloads for tests: GitHub, GitLab and Gitea bodies and their signed headers.

Signatures are computed here with ``hmac`` the way each provider documents them, independently of the
code under test.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from typing import Any

SECRET = b"It's a Secret to Everybody"
SHA = "0d1a26e67d8f5eaf1f6ba5c57fc3c7d91ac0fd1c"

GITHUB: dict[str, Any] = {
    "ref": "refs/heads/main",
    "before": "0" * 40,
    "after": SHA,
    "repository": {
        "full_name": "acme/infra",
        "html_url": "https://github.com/acme/infra",
        "url": "https://github.com/acme/infra",
        "clone_url": "https://github.com/acme/infra.git",
        "ssh_url": "git@github.com:acme/infra.git",
        "git_url": "git://github.com/acme/infra.git",
        "default_branch": "main",
    },
    "pusher": {"name": "octocat"},
}
GITLAB: dict[str, Any] = {
    "object_kind": "push",
    "ref": "refs/heads/main",
    "after": SHA,
    "checkout_sha": SHA,
    "project": {
        "web_url": "https://gitlab.example.com/acme/infra",
        "git_ssh_url": "git@gitlab.example.com:acme/infra.git",
        "git_http_url": "https://gitlab.example.com/acme/infra.git",
        "default_branch": "main",
    },
    "repository": {
        "url": "git@gitlab.example.com:acme/infra.git",
        "homepage": "https://gitlab.example.com/acme/infra",
        "git_http_url": "https://gitlab.example.com/acme/infra.git",
        "git_ssh_url": "git@gitlab.example.com:acme/infra.git",
    },
}
GITEA: dict[str, Any] = {
    "ref": "refs/heads/main",
    "after": SHA,
    "repository": {
        "html_url": "https://gitea.example.com/acme/infra",
        "clone_url": "https://gitea.example.com/acme/infra.git",
        "ssh_url": "ssh://git@gitea.example.com:2222/acme/infra.git",
        "default_branch": "main",
    },
}


def body_of(payload: Any) -> bytes:
    return json.dumps(payload).encode()


def hex_hmac(secret: bytes, body: bytes) -> str:
    return hmac.new(secret, body, hashlib.sha256).hexdigest()


def headers_for(
    provider: str, body: bytes, *, secret: bytes = SECRET, event: str | None = None
) -> dict[str, str]:
    """The headers each provider sends, signed with ``secret``."""
    if provider == "github":
        return {"X-GitHub-Event": event or "push", "X-Hub-Signature-256": "sha256=" + hex_hmac(secret, body),
                "X-GitHub-Delivery": "72d3162e-cc78-11e3-81ab-4c9367dc0958"}  # fmt: skip
    if provider == "gitlab":
        return {"X-Gitlab-Event": event or "Push Hook", "X-Gitlab-Token": secret.decode()}
    # Gitea also sends GitHub's and Gogs' event headers, and its own signature.
    name = event or "push"
    return {"X-Gitea-Event": name, "X-GitHub-Event": name, "X-Gogs-Event": name,
            "X-Gitea-Signature": hex_hmac(secret, body)}  # fmt: skip


NO_REPO = b'{"ref": "refs/heads/main"}'
NO_REF = b'{"repository": {"html_url": "https://gitea.example.com/acme/infra"}}'
PAYLOADS = {"github": GITHUB, "gitlab": GITLAB, "gitea": GITEA}
SIGNATURE_HEADER = {"github": "X-Hub-Signature-256", "gitlab": "X-Gitlab-Token", "gitea": "X-Gitea-Signature"}
