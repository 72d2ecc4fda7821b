"""The hostile-input suite: Hypothesis strategies for every class of hostile review, sent over HTTPS to the
real ``driftwarden webhook serve`` (one process for the module).

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
from tests.webhook.reviews import AUDITOR, admission_review, changed, container, deployment

MAX_SECONDS = 5.0
MAX_RSS_KIB = 400 * 1024
LIMIT_DEPTH = 200
UID = "8c5b6f5e-0000-4000-8000-000000000001"
LONE = ("\ud800", "\udbff", "\udc00", "\udfff")
ODD = (
    "\x00",
    "\u200f",
    "\u202e",
    "\u2066",
    "\ufeff",
    "\u0301",
    "😀",
    "\U0010ffff",
    "\x7f",
    "\x1b[31m",
    *LONE,
)
examples = settings(
    max_examples=100, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large]
)


@pytest.fixture(scope="module")
def webhook(tmp_path_factory: pytest.TempPathFactory) -> Iterator[WebhookProcess]:
    with webhook_process(tmp_path_factory.mktemp("hostile")) as served:
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


def edit(mutate: Callable[[dict[str, Any]], object], *, old: dict[str, Any] | None = None) -> dict[str, Any]:
    """Jane's UPDATE of the managed Deployment (enforce mode): ``mutate`` applied to a copy of ``old``."""
    stored = old if old is not None else deployment()
    return admission_review(old=stored, new=changed(stored, mutate), user="jane", uid=UID)


def scaled(obj: dict[str, Any]) -> None:
    obj["spec"]["replicas"] = 9


def nested_text(depth: int, shape: str) -> str:
    """JSON ``depth`` levels deep, as text (json.dumps cannot write it that deep)."""
    kinds = {
        "object": ["o"] * depth,
        "list": ["l"] * depth,
        "mixed": ["o", "l"] * (depth // 2) + ["o"] * (depth % 2),
    }
    opening = "".join('{"k":' if kind == "o" else "[" for kind in kinds[shape])
    closing = "".join("}" if kind == "o" else "]" for kind in reversed(kinds[shape]))
    return f'{opening}"leaf"{closing}'


# --- deep nesting -------------------------------------------------------------------------------------


def _in_args(obj: dict[str, Any]) -> None:
    container(obj)["args"] = "@DEEP@"


def _in_unowned_spec(obj: dict[str, Any]) -> None:
    obj["spec"]["extra"] = "@DEEP@"


def _in_value_set(obj: dict[str, Any]) -> None:  # issue 13, item 7: inside a v:-keyed list
    container(obj)["command"] = ["@DEEP@"]
    owned = obj["metadata"]["managedFields"][0]["fieldsV1"]["f:spec"]["f:template"]["f:spec"]["f:containers"]
    owned['k:{"name":"web"}']["f:command"] = {"v:@DEEPKEY@": {}}


def _in_managed_fields(obj: dict[str, Any]) -> None:
    obj["metadata"]["managedFields"].append(
        {"manager": "mallory", "operation": "Update", "fieldsV1": "@DEEP@"}
    )


def _in_label(obj: dict[str, Any]) -> None:
    obj["metadata"]["labels"]["deep"] = "@DEEP@"


DEEP_PLACES = (_in_args, _in_unowned_spec, _in_value_set, _in_managed_fields, _in_label)


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


def _label_key(obj: dict[str, Any], key: str) -> None:
    obj["metadata"]["labels"][key] = "v"


def _annotation_key(obj: dict[str, Any], key: str) -> None:
    obj["metadata"]["annotations"][key] = "v"


def _spec_key(obj: dict[str, Any], key: str) -> None:
    obj["spec"][key] = 1


def _owned_field_key(obj: dict[str, Any], key: str) -> None:
    obj["metadata"]["managedFields"][0]["fieldsV1"]["f:spec"][f"f:{key}"] = {}


def _owned_element_key(obj: dict[str, Any], key: str) -> None:
    owned = obj["metadata"]["managedFields"][0]["fieldsV1"]["f:spec"]["f:template"]["f:spec"]["f:containers"]
    owned[f"k:{json.dumps({'name': key})}"] = {".": {}, "f:image": {}}
    obj["spec"]["template"]["spec"]["containers"].append({"name": key, "image": "x"})


def _manager_name(obj: dict[str, Any], key: str) -> None:
    obj["metadata"]["managedFields"].append(
        {"manager": key, "operation": "Update", "fieldsV1": {"f:spec": {}}}
    )


KEY_PLACES = (_label_key, _annotation_key, _spec_key, _owned_field_key, _owned_element_key, _manager_name)


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

odd_text = st.lists(st.one_of(st.sampled_from(ODD), st.characters()), min_size=1, max_size=8).map("".join)


def _rename_container(obj: dict[str, Any], text: str) -> None:  # issue 13, item 7: in a changed path
    container(obj)["name"] = text
    owned = obj["metadata"]["managedFields"][0]["fieldsV1"]["f:spec"]["f:template"]["f:spec"]["f:containers"]
    (key,) = owned
    owned[f"k:{json.dumps({'name': text}, ensure_ascii=False)}"] = owned.pop(key)


def _odd_label(obj: dict[str, Any], text: str) -> None:
    obj["metadata"]["labels"][text] = text


def _odd_image(obj: dict[str, Any], text: str) -> None:
    container(obj)["image"] = text


def _odd_manager(obj: dict[str, Any], text: str) -> None:
    obj["metadata"]["managedFields"][0]["manager"] = text


def _odd_name(obj: dict[str, Any], text: str) -> None:
    obj["metadata"]["name"] = text


UNICODE_PLACES = (_rename_container, _odd_label, _odd_image, _odd_manager, _odd_name)


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
        assert answer["allowed"] is (in_old and place is _odd_name)
        assert all(len(w) < 120 and w.isprintable() for w in answer.get("warnings", []))


# --- duplicate keys -----------------------------------------------------------------------------------

Path = tuple[str, ...]
DECOYS: list[tuple[Path, str, Any]] = [
    ((), "kind", "NotAReview"),
    (("request",), "operation", "CONNECT"),
    (("request",), "userInfo", {"username": AUDITOR, "groups": ["system:masters"]}),
    (("request", "userInfo"), "username", AUDITOR),
    (("request", "object", "metadata", "annotations"), contract.ANNOTATION_GUARD, "off"),
    (("request", "oldObject", "metadata", "annotations"), contract.ANNOTATION_GUARD, "off"),
    (("request", "oldObject", "metadata"), "managedFields", [{}]),
    (("request", "object", "spec"), "replicas", 2),
]


def dumps_with_decoys(value: Any, decoys: list[tuple[Path, str, Any]], path: Path = ()) -> str:
    """JSON for ``value`` where each object at a decoy's path first repeats its key with the decoy value."""
    if isinstance(value, dict):
        pairs = [f"{json.dumps(key)}:{json.dumps(decoy)}" for where, key, decoy in decoys if where == path]
        pairs += [f"{json.dumps(k)}:{dumps_with_decoys(v, decoys, (*path, k))}" for k, v in value.items()]
        return "{" + ",".join(pairs) + "}"
    if isinstance(value, list):
        return "[" + ",".join(dumps_with_decoys(v, decoys, path) for v in value) + "]"
    return json.dumps(value)


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

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=5),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
    max_leaves=8,
)


def paths_of(value: Any, path: tuple[Any, ...] = (), depth: int = 0) -> Iterator[tuple[Any, ...]]:
    yield path
    if depth >= 8:
        return
    if isinstance(value, dict):
        for key, child in value.items():
            yield from paths_of(child, (*path, key), depth + 1)
    elif isinstance(value, list):
        for index, child in enumerate(value):
            yield from paths_of(child, (*path, index), depth + 1)


TYPED_PATHS = [p for p in paths_of(edit(scaled)) if p]


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

ENCODINGS = [
    None,
    "",
    "identity",
    "IDENTITY",
    "gzip",
    "GZIP",
    "deflate",
    "br",
    "gzip, identity",
    "x-zip",
    "*",
]
CONTENT_TYPES = [
    "application/json", "APPLICATION/JSON", "application/json; charset=utf-8",
    "application/json; charset=UTF-8",
    "application/json; charset=utf-16", "application/json; charset=latin-1", "text/plain",
    "application/json-patch+json", "application/x-www-form-urlencoded", "",
]  # fmt: skip
BODY_CODECS = ["utf-8", "utf-8-sig", "utf-16", "utf-32", "latin-1"]


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

MANAGERS = [
    "driftwarden",
    "kubectl-edit",
    "argocd-controller",
    "kube-controller-manager",
    "mallory",
    "",
    "\x00",
]
field_keys = st.one_of(
    st.sampled_from(["f:spec", "f:replicas", "f:metadata", "f:labels", ".", "i:0", "i:-1", "i:99999999999"]),
    st.sampled_from(['k:{"name":"web"}', "k:{}", "k:[1]", "k:{", 'v:"x"', "v:[1,2]", "v:", "x:y", "f:"]),
    st.text(max_size=6).map(lambda t: f"f:{t}"),
)
fields_v1 = st.recursive(
    st.just({}) | st.none() | st.integers() | st.text(max_size=3),
    lambda inner: st.dictionaries(field_keys, inner, max_size=4),
    max_leaves=12,
)
entries = st.fixed_dictionaries(
    {"manager": st.sampled_from(MANAGERS), "fieldsV1": fields_v1},
    optional={
        "operation": st.sampled_from(["Apply", "Update", "Delete", None, 7]),
        "apiVersion": st.sampled_from(["apps/v1", "v1", ""]),
        "fieldsType": st.sampled_from(["FieldsV1", "FieldsV2", None]),
        "subresource": st.sampled_from(["", "status", "scale"]),
        "time": st.sampled_from(["2026-01-01T00:00:00Z", "yesterday", None]),
    },
)
managed_fields = st.one_of(
    st.just("keep"),
    st.sampled_from([[{}], [], None, "garbage", 0, {}, [None], [[]]]),
    st.lists(entries, max_size=4),
    st.lists(entries, max_size=3).map(lambda planted: ["keep", *planted]),
)


def _fields(stored: list[dict[str, Any]], chosen: Any) -> Any:
    if chosen == "keep":
        return stored
    if isinstance(chosen, list) and chosen[:1] == ["keep"]:
        return [*stored, *chosen[1:]]
    return chosen


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
    old = changed(base, lambda o: o["metadata"].update(managedFields=_fields(stored, old_fields)))
    edits: dict[str, Callable[[dict[str, Any]], object]] = {
        "replicas": scaled,
        "image": lambda o: container(o).update(image="evil"),
        "label": lambda o: o["metadata"]["labels"].update(app="evil"),
        "none": lambda o: None,
        "marker": lambda o: o["metadata"]["labels"].pop(contract.LABEL_APP),
    }

    def mutate(obj: dict[str, Any]) -> None:
        edits[change](obj)
        obj["metadata"]["managedFields"] = _fields(stored, new_fields)

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
                json.dumps(edit(lambda o: (_in_value_set(o), scaled(o))))
                .replace('"@DEEP@"', nested_text(970, "list"))
                .replace("@DEEPKEY@", "x")
                .encode()
            ),
            400,
        ),
        # A lone surrogate in a changed path: was allowed with reason internal-error.
        (lambda: json.dumps(edit(lambda o: (_rename_container(o, "\ud800"), scaled(o)))).encode(), 400),
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
