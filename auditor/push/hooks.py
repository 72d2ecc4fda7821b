"""Git push webhooks from GitHub, GitLab and Gitea: verify, parse, and match Applications (pure core).

``parse_hook(headers, body, secret=...)`` checks the request's proof of the shared secret first (GitHub:
``X-Hub-Signature-256`` = ``sha256=`` + HMAC-SHA256 of the body; Gitea: ``X-Gitea-Signature`` = the
hex HMAC-SHA256; GitLab: ``X-Gitlab-Token`` = the secret), always with ``hmac.compare_digest``, and only
then reads the JSON. It returns a ``PushEvent``, a ``Ping`` or a ``Rejected`` (HTTP status and reason).
``matching_applications`` picks the Applications whose repository and targetRevision a push touched,
comparing repository URLs the way Argo CD does (scheme, user, port, ``.git``, trailing slash and case
ignored, so ``git@host:org/repo.git`` equals ``https://host/org/repo``). No I/O, no logging here, and the
secret never appears in a result.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import urlsplit

from auditor.application import Application
from auditor.objects import AppKey

Provider = Literal["github", "gitlab", "gitea"]

_EVENT_HEADERS: tuple[tuple[str, Provider], ...] = (
    # Gitea also sends X-GitHub-Event (and X-Gogs-Event) for compatibility, so it is recognised first.
    ("x-gitea-event", "gitea"),
    ("x-gitlab-event", "gitlab"),
    ("x-github-event", "github"),
)
_PUSH_EVENTS: Mapping[Provider, frozenset[str]] = {
    "github": frozenset({"push"}),
    "gitlab": frozenset({"Push Hook", "Tag Push Hook"}),
    "gitea": frozenset({"push"}),
}
_PING_EVENTS: Mapping[Provider, frozenset[str]] = {
    "github": frozenset({"ping"}),
    "gitlab": frozenset(),
    "gitea": frozenset({"ping"}),
}
_URL_KEYS = (
    "html_url", "clone_url", "ssh_url", "git_url", "svn_url", "url",  # GitHub, Gitea
    "git_http_url", "git_ssh_url", "http_url", "web_url", "homepage",  # GitLab
)  # fmt: skip
_SCP_LIKE = re.compile(r"^(?:[^@/]+@)?(?P<host>[^:/]+):(?P<path>.*)$")


@dataclass(frozen=True)
class PushEvent:
    """What a verified push said: which repository (every URL it gave), which branch or tags, which commit."""

    provider: Provider
    repo_urls: tuple[str, ...]
    branch: str | None = None
    tags: tuple[str, ...] = ()
    after: str = ""
    default_branch: str = ""

    @property
    def touched_head(self) -> bool:
        """True when the push moved the default branch (unknown default: any branch counts)."""
        return self.branch is not None and (not self.default_branch or self.branch == self.default_branch)


@dataclass(frozen=True)
class Ping:
    provider: Provider


@dataclass(frozen=True)
class Rejected:
    status: int
    reason: str


Parsed = PushEvent | Ping | Rejected


def github_signature(secret: bytes, body: bytes) -> str:
    """``sha256=<hex>``, the value of GitHub's ``X-Hub-Signature-256`` header."""
    return "sha256=" + hmac.new(secret, body, hashlib.sha256).hexdigest()


def gitea_signature(secret: bytes, body: bytes) -> str:
    """The hex HMAC-SHA256, the value of Gitea's ``X-Gitea-Signature`` header."""
    return hmac.new(secret, body, hashlib.sha256).hexdigest()


def _same(given: str | None, expected: str) -> bool:
    if not given:
        return False
    return hmac.compare_digest(given.strip().encode("utf-8", "replace"), expected.encode("utf-8", "replace"))


def _verified(provider: Provider, headers: Mapping[str, str], body: bytes, secret: bytes) -> bool:
    if provider == "github":
        return _same(headers.get("x-hub-signature-256"), github_signature(secret, body))
    if provider == "gitea":
        return _same(headers.get("x-gitea-signature"), gitea_signature(secret, body))
    return _same(headers.get("x-gitlab-token"), secret.decode("utf-8", "replace"))


def _provider(headers: Mapping[str, str]) -> tuple[Provider, str] | None:
    for header, provider in _EVENT_HEADERS:
        if headers.get(header):
            return provider, headers[header].strip()
    return None


def _authenticated(headers: Mapping[str, str], body: bytes, secret: bytes) -> tuple[Provider, str] | Rejected:
    if not secret:
        return Rejected(500, "no webhook secret is configured")
    found = _provider(headers)
    if found is None:
        return Rejected(400, "not a GitHub, GitLab or Gitea webhook (no event header)")
    if not _verified(found[0], headers, body, secret):
        return Rejected(401, f"{found[0]} webhook: missing or wrong signature")
    return found


def parse_hook(headers: Mapping[str, str], body: bytes, *, secret: bytes) -> Parsed:
    """Verify and parse one webhook request; ``headers`` in any case (they are compared lower-cased)."""
    found = _authenticated({str(k).lower(): str(v) for k, v in headers.items()}, body, secret)
    if isinstance(found, Rejected):
        return found
    provider, event = found
    if event in _PING_EVENTS[provider]:
        return Ping(provider)
    if event not in _PUSH_EVENTS[provider]:
        return Rejected(400, f"{provider} event {event[:64]!r} is not handled (only push)")
    try:
        payload = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return Rejected(400, f"{provider} push: the body is not JSON (use content type application/json)")
    if not isinstance(payload, dict):
        return Rejected(400, f"{provider} push: the body is not a JSON object")
    return _push(provider, payload)


def _push(provider: Provider, payload: Mapping[str, Any]) -> PushEvent | Rejected:
    urls: list[str] = []
    default_branch = ""
    for section in ("repository", "project"):
        part = payload.get(section)
        if not isinstance(part, Mapping):
            continue
        for key in _URL_KEYS:
            value = part.get(key)
            if isinstance(value, str) and value and value not in urls:
                urls.append(value)
        if not default_branch and isinstance(part.get("default_branch"), str):
            default_branch = part["default_branch"]
    if not urls:
        return Rejected(400, f"{provider} push: no repository URL in the payload")
    ref = payload.get("ref")
    if not isinstance(ref, str):
        return Rejected(400, f"{provider} push: no ref in the payload")
    branch = ref.removeprefix("refs/heads/") if ref.startswith("refs/heads/") else None
    tags = (ref.removeprefix("refs/tags/"),) if ref.startswith("refs/tags/") else ()
    after = payload.get("after") or payload.get("checkout_sha") or ""
    return PushEvent(provider, tuple(urls), branch, tags, str(after), default_branch)


def normalize_repo_url(url: str) -> str:
    """``host/path`` (lower case, no scheme, user, port, ``.git`` or trailing slash); ``/path`` if local."""
    text = url.strip().lower()
    if "://" in text:
        parts = urlsplit(text)
        host, path = parts.hostname or "", parts.path
    elif (scp := _SCP_LIKE.match(text)) is not None:
        host, path = scp["host"], scp["path"]
    else:
        host, path = "", text
    path = path.strip("/").removesuffix(".git").rstrip("/")
    return f"{host}/{path}" if host else f"/{path}"


def revision_matches(target_revision: str, event: PushEvent) -> bool:
    """Whether a push of ``event`` moves ``target_revision`` (as Argo CD's webhook decides)."""
    target = target_revision.strip()
    for prefix in ("refs/heads/", "refs/tags/"):
        target = target.removeprefix(prefix)
    if target in ("", "HEAD"):
        return event.touched_head
    return target == event.branch or target in event.tags


def matching_applications(apps: Iterable[Application], event: PushEvent) -> tuple[AppKey, ...]:
    """The Applications that use the pushed repository at a revision the push moved, in the given order."""
    pushed = {normalize_repo_url(u) for u in event.repo_urls}
    return tuple(
        app.key
        for app in apps
        if normalize_repo_url(app.source.repo_url) in pushed
        and revision_matches(app.source.target_revision, event)
    )
