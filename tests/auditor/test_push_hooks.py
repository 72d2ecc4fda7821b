"""Push webhooks (pure): signatures of GitHub, GitLab and Gitea, payload parsing, URL and revision matching.

Signatures are computed here with ``hmac`` the way each provider documents them, independently of the
code under test.
"""

from __future__ import annotations

import hmac
from typing import Any

import pytest

from auditor.application import parse_application
from auditor.objects import AppKey
from auditor.push.hooks import (
    Ping,
    PushEvent,
    Rejected,
    matching_applications,
    normalize_repo_url,
    parse_hook,
    revision_matches,
)
from tests.support.auditor import application
from tests.support.pushevents import (
    GITEA,
    GITHUB,
    GITLAB,
    NO_REF,
    NO_REPO,
    PAYLOADS,
    SECRET,
    SHA,
    SIGNATURE_HEADER,
    body_of,
    headers_for,
    hex_hmac,
)


@pytest.mark.parametrize("provider", ["github", "gitlab", "gitea"])
def test_a_correctly_signed_push_is_parsed(provider: str) -> None:
    body = body_of(PAYLOADS[provider])
    event = parse_hook(headers_for(provider, body), body, secret=SECRET)
    assert isinstance(event, PushEvent)
    assert event.provider == provider
    assert (event.branch, event.tags, event.after, event.default_branch) == ("main", (), SHA, "main")
    host = "github.com" if provider == "github" else f"{provider}.example.com"
    assert {normalize_repo_url(u) for u in event.repo_urls} == {f"{host}/acme/infra"}
    assert len(event.repo_urls) == len(set(event.repo_urls)) >= 3


@pytest.mark.parametrize("provider", ["github", "gitlab", "gitea"])
def test_a_wrong_or_missing_signature_is_401(provider: str) -> None:
    body = body_of(PAYLOADS[provider])
    wrong = headers_for(provider, body, secret=b"not the secret")
    missing = {k: v for k, v in headers_for(provider, body).items() if k != SIGNATURE_HEADER[provider]}
    empty = {**headers_for(provider, body), SIGNATURE_HEADER[provider]: ""}
    for headers in (wrong, missing, empty):
        result = parse_hook(headers, body, secret=SECRET)
        assert isinstance(result, Rejected) and result.status == 401, headers
        assert SECRET.decode() not in result.reason
    if provider != "gitlab":  # GitLab's token does not cover the body; the others' signatures do
        tampered = body_of({**PAYLOADS[provider], "ref": "refs/heads/evil"})
        result = parse_hook(headers_for(provider, body), tampered, secret=SECRET)
        assert isinstance(result, Rejected) and result.status == 401


def test_github_needs_the_sha256_signature_with_its_prefix() -> None:
    body = body_of(GITHUB)
    bare = {"X-GitHub-Event": "push", "X-Hub-Signature-256": hex_hmac(SECRET, body)}
    sha1 = {"X-GitHub-Event": "push", "X-Hub-Signature": "sha1=" + hmac.new(SECRET, body, "sha1").hexdigest()}
    for headers in (bare, sha1):
        result = parse_hook(headers, body, secret=SECRET)
        assert isinstance(result, Rejected) and result.status == 401


def test_headers_are_matched_in_any_case() -> None:
    body = body_of(GITHUB)
    headers = {k.lower(): v for k, v in headers_for("github", body).items()}
    assert isinstance(parse_hook(headers, body, secret=SECRET), PushEvent)
    upper = {k.upper(): v for k, v in headers_for("gitea", body_of(GITEA)).items()}
    parsed = parse_hook(upper, body_of(GITEA), secret=SECRET)
    assert isinstance(parsed, PushEvent) and parsed.provider == "gitea"


def test_ping_is_accepted_only_when_signed() -> None:
    body = body_of({"zen": "Keep it logically awesome.", "hook_id": 1})
    assert parse_hook(headers_for("github", body, event="ping"), body, secret=SECRET) == Ping("github")
    bad = headers_for("github", body, secret=b"guess", event="ping")
    assert parse_hook(bad, body, secret=SECRET) == Rejected(401, "github webhook: missing or wrong signature")


@pytest.mark.parametrize(
    ("headers", "body", "status", "words"),
    [
        ({}, b"{}", 400, "no event header"),
        ({"X-Bitbucket-Event": "repo:push"}, b"{}", 400, "no event header"),
        (headers_for("github", b"{}", event="pull_request"), b"{}", 400, "not handled"),
        (headers_for("gitlab", b"{}", event="Merge Request Hook"), b"{}", 400, "not handled"),
        (headers_for("github", b"payload=%7B%7D"), b"payload=%7B%7D", 400, "application/json"),
        (headers_for("github", b"[1]"), b"[1]", 400, "not a JSON object"),
        (headers_for("github", NO_REPO), NO_REPO, 400, "no repository"),
        (headers_for("gitea", NO_REF), NO_REF, 400, "no ref"),
    ],
)  # fmt: skip
def test_requests_that_are_not_pushes_are_400(
    headers: dict[str, str], body: bytes, status: int, words: str
) -> None:
    result = parse_hook(headers, body, secret=SECRET)
    assert isinstance(result, Rejected)
    assert result.status == status and words in result.reason


def test_without_a_secret_nothing_is_accepted() -> None:
    body = body_of(GITHUB)
    result = parse_hook(headers_for("github", body, secret=b""), body, secret=b"")
    assert isinstance(result, Rejected) and result.status == 500


def test_a_tag_push_names_the_tag_and_no_branch() -> None:
    payload = {**GITLAB, "ref": "refs/tags/v1.2.0"}
    body = body_of(payload)
    event = parse_hook(headers_for("gitlab", body, event="Tag Push Hook"), body, secret=SECRET)
    assert isinstance(event, PushEvent)
    assert (event.branch, event.tags, event.touched_head) == (None, ("v1.2.0",), False)


@pytest.mark.parametrize(
    ("url", "normal"),
    [
        ("https://github.com/acme/infra", "github.com/acme/infra"),
        ("https://github.com/acme/infra.git", "github.com/acme/infra"),
        ("https://github.com/acme/infra/", "github.com/acme/infra"),
        ("https://github.com/acme/infra.git/", "github.com/acme/infra"),
        ("https://GitHub.com/Acme/Infra", "github.com/acme/infra"),
        ("http://github.com/acme/infra", "github.com/acme/infra"),
        ("https://user:token@github.com/acme/infra.git", "github.com/acme/infra"),
        ("https://github.com:443/acme/infra", "github.com/acme/infra"),
        ("git@github.com:acme/infra.git", "github.com/acme/infra"),
        ("github.com:acme/infra", "github.com/acme/infra"),
        ("ssh://git@github.com/acme/infra.git", "github.com/acme/infra"),
        ("ssh://git@gitea.example.com:2222/acme/infra.git", "gitea.example.com/acme/infra"),
        ("git://github.com/acme/infra.git", "github.com/acme/infra"),
        ("https://gitlab.example.com/group/sub/infra.git", "gitlab.example.com/group/sub/infra"),
        ("  https://github.com/acme/infra  ", "github.com/acme/infra"),
        ("file:///srv/git/infra.git", "/srv/git/infra"),
        ("/srv/git/infra", "/srv/git/infra"),
    ],
)
def test_repository_urls_are_normalised_as_argo_cd_does(url: str, normal: str) -> None:
    assert normalize_repo_url(url) == normal


def test_different_repositories_stay_different() -> None:
    names = ["https://github.com/acme/infra", "https://github.com/acme/infra2", "https://github.com/other/infra",
             "https://gitlab.com/acme/infra", "git@github.com:acme/infra-old.git"]  # fmt: skip
    assert len({normalize_repo_url(n) for n in names}) == len(names)


def push(**kwargs: Any) -> PushEvent:
    defaults: dict[str, Any] = {"provider": "github", "repo_urls": ("https://github.com/acme/infra",),
                                "branch": "main", "default_branch": "main"}  # fmt: skip
    return PushEvent(**{**defaults, **kwargs})


@pytest.mark.parametrize(
    ("target", "event", "matches"),
    [
        ("main", push(), True),
        ("refs/heads/main", push(), True),
        ("staging", push(), False),
        ("HEAD", push(), True),
        ("", push(), True),
        ("HEAD", push(branch="feature"), False),
        ("HEAD", push(branch="feature", default_branch=""), True),  # default unknown: any branch may be it
        ("v1.2.0", push(branch=None, tags=("v1.2.0",)), True),
        ("refs/tags/v1.2.0", push(branch=None, tags=("v1.2.0",)), True),
        ("v1.2.0", push(), False),
        ("HEAD", push(branch=None, tags=("v1.2.0",)), False),
        (SHA, push(after=SHA), False),  # a pinned commit never moves
    ],
)
def test_revision_matching(target: str, event: PushEvent, matches: bool) -> None:
    assert revision_matches(target, event) is matches


def test_matching_applications_picks_the_repository_at_the_pushed_revision() -> None:
    apps = [
        application("ssh-main", repo_url="git@github.com:acme/infra.git", path=".", namespace="a"),
        application("https-main", repo_url="https://github.com/acme/infra", path=".", namespace="a"),
        application("other-repo", repo_url="https://github.com/acme/other.git", path=".", namespace="a"),
        application("staging", repo_url="https://github.com/acme/infra.git", path=".", namespace="a"),
        application("head", repo_url="https://github.com/acme/infra.git", path=".", namespace="a"),
    ]
    apps[3]["spec"]["source"]["targetRevision"] = "staging"
    apps[4]["spec"]["source"]["targetRevision"] = "HEAD"
    body = body_of(GITHUB)
    event = parse_hook(headers_for("github", body), body, secret=SECRET)
    assert isinstance(event, PushEvent)
    found = matching_applications([parse_application(a) for a in apps], event)
    namespace = apps[0]["metadata"]["namespace"]
    assert found == (
        AppKey(namespace, "ssh-main"),
        AppKey(namespace, "https-main"),
        AppKey(namespace, "head"),
    )
