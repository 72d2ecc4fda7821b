"""The Argo CD fields driftwarden parses, honours or refuses (auditor.application, auditor.refusals)."""

from __future__ import annotations

from typing import Any

import pytest

from auditor.application import Retry, parse_application
from auditor.durations import format_duration, parse_duration
from auditor.refusals import refusals
from auditor.specfields import InvalidSpecError


def app(**spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "driftwarden.io/v1alpha1",
        "kind": "Application",
        "metadata": {"name": "web", "namespace": "driftwarden-system"},
        "spec": {"source": {"repoURL": "https://git.example.com/x.git"}, **spec},
    }


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("5s", 5), ("3m", 180), ("1h30m", 5400), ("250ms", 0.25), ("5", 5), (7, 7), ("1.5h", 5400)],
)
def test_durations_read_as_go_and_argo_cd_write_them(text: object, seconds: float) -> None:
    assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize("text", ["", "5 minutes", "-5s", "h", True, None, "1d"])
def test_what_is_not_a_duration_says_so(text: object) -> None:
    with pytest.raises(ValueError, match=r"duration|negative"):
        parse_duration(text)


def test_durations_print_the_go_way() -> None:
    assert [format_duration(s) for s in (3600, 5400, 45, 125, 0)] == ["1h", "1h30m", "45s", "2m5s", "0s"]


def test_automated_enabled_false_switches_automation_off() -> None:
    off = parse_application(app(syncPolicy={"automated": {"enabled": False, "prune": True}}))
    assert off.sync_policy.automated is None
    on = parse_application(app(syncPolicy={"automated": {"enabled": True, "selfHeal": True}}))
    assert on.sync_policy.automated is not None and on.sync_policy.automated.self_heal
    with pytest.raises(InvalidSpecError, match=r"automated\.enabled"):
        parse_application(app(syncPolicy={"automated": {"enabled": "no"}}))


def test_retry_backs_off_up_to_its_limit_and_its_longest_wait() -> None:
    raw = {"limit": 4, "backoff": {"duration": "5s", "factor": 3, "maxDuration": "1m"}}
    retry = parse_application(app(syncPolicy={"retry": raw})).sync_policy.retry
    assert retry == Retry(limit=4, duration=5.0, factor=3.0, max_duration=60.0)
    assert [retry.delay(n) for n in range(5)] == [5.0, 15.0, 45.0, 60.0, None]
    assert Retry(limit=-1).delay(1000) == 180.0  # no limit
    assert Retry().delay(0) is None  # Argo CD's default limit: no retries
    assert parse_application(app()).sync_policy.retry is None
    with pytest.raises(InvalidSpecError, match=r"backoff\.duration"):
        parse_application(app(syncPolicy={"retry": {"backoff": {"duration": "soon"}}}))


def test_revision_history_limit_and_breakglass_hold() -> None:
    parsed = parse_application(app(revisionHistoryLimit=3, guard={"breakglassHold": "15m"}))
    assert parsed.revision_history_limit == 3 and parsed.guard.breakglass_hold == 900
    assert parse_application(app()).revision_history_limit == 10
    assert parse_application(app()).guard.breakglass_hold == 3600
    with pytest.raises(InvalidSpecError, match="revisionHistoryLimit"):
        parse_application(app(revisionHistoryLimit=0))


@pytest.mark.parametrize(
    ("spec", "reason"),
    [
        ({"destination": {"server": "https://10.0.0.1:6443"}}, "spec.destination.server"),
        ({"destination": {"name": "prod"}}, "spec.destination.name"),
        ({"project": "payments"}, "spec.project"),
        ({"syncPolicy": {"syncOptions": ["Foo=bar"]}}, "Foo=bar is not supported"),
        ({"syncPolicy": {"syncOptions": ["Validate=false"]}}, "Validate=false"),
        ({"syncPolicy": {"syncOptions": ["PrunePropagationPolicy=sideways"]}}, "PrunePropagationPolicy"),
    ],
)
def test_what_driftwarden_cannot_honour_is_refused_by_name(spec: dict[str, Any], reason: str) -> None:
    assert any(reason in r for r in refusals(parse_application(app(**spec))))


def test_what_it_honours_is_not_refused() -> None:
    honoured = app(
        project="default",
        destination={"server": "https://kubernetes.default.svc", "name": "in-cluster", "namespace": "web"},
        syncPolicy={"syncOptions": ["CreateNamespace=true", "ServerSideApply=true", "PruneLast=true",
                                    "RespectIgnoreDifferences=false", "PrunePropagationPolicy=foreground",
                                    "ApplyOutOfSyncOnly=true", "Validate=true", "Replace=false",
                                    "Replace=true", "Force=true"]},
    )  # fmt: skip
    parsed = parse_application(honoured)
    assert refusals(parsed) == ()
    assert parsed.sync_policy.prune_propagation == "Foreground"
