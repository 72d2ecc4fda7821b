"""The hostile-input suite: Hypothesis strategies for every class of hostile review, sent over HTTPS to the
real ``driftwarden webhook serve`` (one process for the module on each event loop: uvloop, asyncio's).

Classes: deep nesting, huge keys, odd unicode (lone surrogates, NUL, RTL marks, byte-order marks), duplicate
JSON keys, wrong types, wrong encodings and content types, planted and stripped managedFields. Invariants,
checked on every answer (``answered``): never a 5xx; a 4xx is one of 400, 413, 415 with an error that says
why; a 200 echoes the uid, and no review is ever decided by an error (no ``internal-error``, so no
allow-by-error); every answer within ``MAX_SECONDS``; and at the end the process is alive, answering, and
its memory bounded. docs/security.md lists the classes with their results.
"""

from __future__ import annotations

import gzip
import json
import zlib
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from hypothesis.control import currently_in_test_context

from driftwarden import contract
from tests.support.webhookproc import Response, WebhookProcess, webhook_process
from tests.webhook.hostile import (
    BODY_CODECS,
    CONTENT_TYPES,
    DECOYS,
    DEEP_PLACES,
    ENCODINGS,
    KEY_PLACES,
    TYPED_PATHS,
    UID,
    UNICODE_PLACES,
    dumps_with_decoys,
    edit,
    in_value_set,
    json_values,
    managed_fields,
    nested_text,
    odd_name,
    odd_text,
    rename_container,
    scaled,
    with_fields,
)
from tests.webhook.reviews import changed, container, deployment

MAX_SECONDS = 5.0
MAX_RSS_KIB = 400 * 1024
LIMIT_DEPTH = 200
examples = settings(
    max_examples=100, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large]
)


@pytest.fixture(scope="module")
def webhook(tmp_path_factory: pytest.TempPathFactory, loop_name: str) -> Iterator[WebhookProcess]:
    """The real process on each event loop (``--event-loop``): the suite runs once on each."""
    with webhook_process(tmp_path_factory.mktemp("hostile"), "--event-loop", loop_name) as served:
        yield served


def answered(response: Response) -> dict[str, Any] | None:
    """The invariants every answer keeps; the AdmissionReview response of a 200, else None."""
    assert response.status < 500, response.body[:500]
    assert response.seconds < MAX_SECONDS
    if currently_in_test_context():
        event(f"HTTP {response.status}")
    if response.status != 200:
        assert response.status in (400, 413, 415), response.status
        assert response.json()["error"], response.body[:500]
        return None
    answer: dict[str, Any] = response.json()["response"]
    assert answer["uid"] == UID
    audit = answer.get("auditAnnotations", {})
    assert audit.get("reason") != "internal-error" and audit.get("decision") != "error", answer
    return answer


# --- deep nesting -------------------------------------------------------------------------------------


@examples
@given(
    depth=st.one_of(st.integers(1, 260), st.integers(900, 1500)),
    shape=st.sampled_from(["object", "list", "mixed"]),
    place=st.sampled_from(DEEP_PLACES),
    both=st.booleans(),
)
def test_deep_nesting(webhook: WebhookProcess, depth: int, shape: str, place: Any, both: bool) -> None:
    old = changed(deployment(), place) if both else deployment()
    deep = nested_text(depth, shape)
    text = json.dumps(edit(place, old=old)).replace('"@DEEP@"', deep)
    text = text.replace("@DEEPKEY@", json.dumps(deep)[1:-1])  # the same JSON, as a v: key's text
    response = webhook.post("/validate", text.encode())
    answer = answered(response)
    if depth > LIMIT_DEPTH:
        assert response.status == 400 and "levels deep" in response.json()["error"]
    elif depth < LIMIT_DEPTH - 20:
        assert answer is not None  # within the limit the review is decided


# --- huge keys ----------------------------------------------------------------------------------------


@examples
@given(
    size=st.one_of(st.sampled_from([1, 10_000, 300_000, 1_100_000]), st.integers(1, 1_200_000)),
    count=st.integers(1, 3),
    place=st.sampled_from(KEY_PLACES),
    in_old=st.booleans(),
    char=st.sampled_from(["a", "é", "[", '"', "\\", "😀"]),
)
def test_huge_keys(
    webhook: WebhookProcess, size: int, count: int, place: Any, in_old: bool, char: str
) -> None:
    def plant(obj: dict[str, Any]) -> None:
        for index in range(count):
            place(obj, f"{index}{char * size}")

    old = changed(deployment(), plant) if in_old else deployment()
    body = json.dumps(edit(lambda o: (plant(o), scaled(o)), old=old)).encode()
    event(f"body {'over' if len(body) > 3 * 1024 * 1024 else 'within'} 3 MiB")
    response = webhook.post("/validate", body)
    answer = answered(response)
    if len(body) > 3 * 1024 * 1024:
        assert response.status == 413
    else:
        assert answer is not None and answer["allowed"] is False  # replicas are Git's: denied


@examples
@given(count=st.integers(1, 60_000), nested=st.booleans())
def test_many_keys(webhook: WebhookProcess, count: int, nested: bool) -> None:
    many = {f"k{index}": ({"x": index} if nested else index) for index in range(count)}
    body = json.dumps(edit(lambda o: (o["spec"].update(extra=many), scaled(o)))).encode()
    answer = answered(webhook.post("/validate", body))
    assert answer is None or answer["allowed"] is False


# --- odd unicode --------------------------------------------------------------------------------------


@examples
@given(text=odd_text, place=st.sampled_from(UNICODE_PLACES), in_old=st.booleans(), ascii_only=st.booleans())
def test_odd_unicode(webhook: WebhookProcess, text: str, place: Any, in_old: bool, ascii_only: bool) -> None:
    old = changed(deployment(), lambda o: place(o, text)) if in_old else deployment()
    review = edit(lambda o: (place(o, text), scaled(o)), old=old)
    review["request"]["userInfo"]["groups"].append(text)
    body = json.dumps(review, ensure_ascii=ascii_only).encode("utf-8", "surrogatepass")
    response = webhook.post("/validate", body)
    answer = answered(response)
    # With \u escapes a high surrogate followed by a low one is a valid pair; as UTF-8 bytes it never is.
    seen = json.loads(json.dumps(text)) if ascii_only else text
    if any("\ud800" <= ch <= "\udfff" for ch in seen):
        assert response.status == 400  # the API server never writes one
    else:
        assert answer is not None
        # A stored object renamed is no longer the one its tracking annotation names: unmanaged.
        assert answer["allowed"] is (in_old and place is odd_name)
        assert all(len(w) < 120 and w.isprintable() for w in answer.get("warnings", []))


# --- duplicate keys -----------------------------------------------------------------------------------


@examples
@given(
    chosen=st.lists(st.sampled_from(range(len(DECOYS))), min_size=1, unique=True),
    endpoint=st.sampled_from(["/validate", "/mutate"]),
)
def test_duplicate_keys_read_as_the_api_server_reads_them(
    webhook: WebhookProcess, chosen: list[int], endpoint: str
) -> None:
    review = edit(scaled)
    twice = answered(webhook.post(endpoint, dumps_with_decoys(review, [DECOYS[i] for i in chosen]).encode()))
    once = answered(webhook.post(endpoint, json.dumps(review).encode()))
    assert once is not None and twice is not None
    assert (twice["allowed"], twice.get("status")) == (once["allowed"], once.get("status"))  # the last wins


# --- wrong types --------------------------------------------------------------------------------------


@examples
@given(
    where=st.sampled_from(TYPED_PATHS), value=json_values, endpoint=st.sampled_from(["/validate", "/mutate"])
)
def test_wrong_types(webhook: WebhookProcess, where: tuple[Any, ...], value: Any, endpoint: str) -> None:
    review = edit(scaled)
    target: Any = review
    for step in where[:-1]:
        target = target[step]
    target[where[-1]] = value
    answered(webhook.post(endpoint, json.dumps(review).encode()))


# --- wrong encodings and content types ----------------------------------------------------------------


@examples
@given(
    encoding=st.sampled_from(ENCODINGS),
    compress=st.sampled_from([None, "gzip", "deflate"]),
    content_type=st.sampled_from(CONTENT_TYPES),
    codec=st.sampled_from(BODY_CODECS),
)
def test_wrong_encodings(
    webhook: WebhookProcess, encoding: str | None, compress: str | None, content_type: str, codec: str
) -> None:
    text = json.dumps(
        edit(lambda o: (scaled(o), o["metadata"]["labels"].update(team="équipe"))), ensure_ascii=False
    )
    body = text.encode(codec)
    if compress == "gzip":
        body = gzip.compress(body)
    elif compress == "deflate":
        body = zlib.compress(body)
    headers = {"Content-Type": content_type}
    if encoding is not None:
        headers["Content-Encoding"] = encoding
    response = webhook.post("/validate", body, headers)
    answer = answered(response)
    media, _, parameters = content_type.lower().partition(";")
    charset = parameters.strip().removeprefix("charset=") or "utf-8"
    if (
        media.strip() != "application/json"
        or charset != "utf-8"
        or (encoding or "identity").lower() != "identity"
    ):
        assert response.status == 415
    elif compress is not None or codec != "utf-8":
        assert response.status == 400  # a compressed body, or one not in UTF-8, is not JSON
    else:
        assert answer is not None and answer["allowed"] is False


# --- planted and stripped managedFields ---------------------------------------------------------------


@examples
@given(
    old_fields=managed_fields,
    new_fields=managed_fields,
    change=st.sampled_from(["replicas", "image", "label", "none", "marker"]),
    mode=st.sampled_from(["enforce", "warn", "off"]),
    endpoint=st.sampled_from(["/validate", "/mutate"]),
)
def test_planted_and_stripped_managed_fields(
    webhook: WebhookProcess, old_fields: Any, new_fields: Any, change: str, mode: str, endpoint: str
) -> None:
    base = deployment()
    base["metadata"]["annotations"][contract.ANNOTATION_GUARD] = mode
    stored = base["metadata"]["managedFields"]
    old = changed(base, lambda o: o["metadata"].update(managedFields=with_fields(stored, old_fields)))
    edits: dict[str, Callable[[dict[str, Any]], object]] = {
        "replicas": scaled,
        "image": lambda o: container(o).update(image="evil"),
        "label": lambda o: o["metadata"]["labels"].update(app="evil"),
        "none": lambda o: None,
        "marker": lambda o: o["metadata"]["labels"].pop(contract.LABEL_APP),
    }

    def mutate(obj: dict[str, Any]) -> None:
        edits[change](obj)
        obj["metadata"]["managedFields"] = with_fields(stored, new_fields)

    answer = answered(webhook.post(endpoint, json.dumps(edit(mutate, old=old)).encode()))
    assert answer is not None  # every one of these is a well-formed review


# --- the issue's reproductions, and the process after all of the above --------------------------------


@pytest.mark.parametrize(
    ("make", "status"),
    [
        # JSON nested 977 deep in an 8 KB body: was a 500 (RecursionError).
        (lambda: b"[" * 977 + b"]" * 977, 400),
        # Depth ~970 inside a v:-keyed list: was allowed with reason internal-error.
        (
            lambda: (
                json.dumps(edit(lambda o: (in_value_set(o), scaled(o))))
                .replace('"@DEEP@"', nested_text(970, "list"))
                .replace("@DEEPKEY@", "x")
                .encode()
            ),
            400,
        ),
        # A lone surrogate in a changed path: was allowed with reason internal-error.
        (lambda: json.dumps(edit(lambda o: (rename_container(o, "\ud800"), scaled(o)))).encode(), 400),
    ],
)
def test_the_issues_reproductions_get_clear_4xx(webhook: WebhookProcess, make: Any, status: int) -> None:
    response = webhook.post("/validate", make())
    answered(response)
    assert response.status == status


def test_gzip_on_a_plain_body_is_a_415_not_a_500(webhook: WebhookProcess) -> None:
    response = webhook.post("/validate", json.dumps(edit(scaled)).encode(), {"Content-Encoding": "gzip"})
    answered(response)
    assert response.status == 415 and "Content-Encoding" in response.json()["error"]


def test_after_the_suite_the_process_is_alive_answering_and_bounded(webhook: WebhookProcess) -> None:
    assert webhook.alive()
    answer = answered(webhook.post("/validate", json.dumps(edit(scaled)).encode()))
    assert answer is not None and answer["allowed"] is False
    assert webhook.rss_kib() < MAX_RSS_KIB
    log = webhook.log_file.read_text()
    assert "Traceback" not in log, log[-3000:]
