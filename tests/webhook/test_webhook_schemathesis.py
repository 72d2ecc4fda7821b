"""schemathesis against webhook/openapi.yaml: reviews that fit the description and reviews that break it,
sent over HTTPS to the real ``driftwarden webhook serve``.

Every answer must conform to the description (status code, content type, body schema: a denial's message
under 1 KB, warnings under 120 characters, at most 20), a review that breaks the description must be
refused with a 4xx, none may be a 5xx or be decided by an error, and each comes within seconds. Part of
the hostile-input suite (docs/security.md).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis import Case, CheckContext, Response

from tests.support.webhookproc import WebhookProcess, webhook_process

DESCRIPTION = Path(__file__).parents[2] / "webhook" / "openapi.yaml"
MAX_SECONDS = 5.0
schema = schemathesis.openapi.from_path(DESCRIPTION)
answers: Counter[str] = Counter()


@pytest.fixture(scope="module")
def webhook(tmp_path_factory: pytest.TempPathFactory) -> Iterator[WebhookProcess]:
    with webhook_process(tmp_path_factory.mktemp("schemathesis")) as served:
        yield served


def never_decided_by_an_error(_ctx: CheckContext, response: Response, _case: Case) -> bool | None:
    """No answer comes from the failsafe: the rules decided every review, so none was allowed by an error."""
    if response.status_code == 200:
        audit = response.json()["response"].get("auditAnnotations", {})
        if audit.get("reason") == "internal-error" or audit.get("decision") == "error":
            raise AssertionError(f"decided by an error: {audit}")
    return None


def answers_in_time(_ctx: CheckContext, response: Response, case: Case) -> bool | None:
    answers[f"{case.operation.label} -> {response.status_code}"] += 1
    if response.elapsed > MAX_SECONDS:
        raise AssertionError(f"answered after {response.elapsed:.1f}s")
    return None


@schema.parametrize()
@settings(max_examples=150, suppress_health_check=list(HealthCheck), deadline=None)
def test_the_webhook_keeps_its_openapi_description(case: Case, webhook: WebhookProcess) -> None:
    case.call_and_validate(
        base_url=webhook.url,
        verify=str(webhook.ca_file),
        timeout=10,
        additional_checks=[never_decided_by_an_error, answers_in_time],
    )


def test_the_process_is_alive_and_bounded_after_the_run(webhook: WebhookProcess) -> None:
    print("\nschemathesis answers:", dict(sorted(answers.items())))  # the figures in docs/security.md
    assert webhook.alive()
    assert webhook.rss_kib() < 400 * 1024
    assert "Traceback" not in webhook.log_file.read_text()
