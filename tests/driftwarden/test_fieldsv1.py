"""One fieldsV1 model: leaves, locations and values agree on the managedFields the real API server wrote."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from driftwarden.fieldsv1 import (
    element_json,
    leaf_paths,
    locate,
    manager_entries,
    parse_fields_v1,
    value_at,
)
from tests.webhook.reviews import deployment


def test_every_owned_path_locates_the_value_it_names() -> None:
    obj = deployment()
    for entry in manager_entries(obj["metadata"]["managedFields"]):
        for path in entry.fields:
            found, value = value_at(obj, path)
            location = locate(obj, path)
            assert found == (location is not None)
            if location is not None:
                node = obj
                for step in location:
                    node = node[step]
                assert node is value


def test_leaves_are_the_paths_with_nothing_beneath_them() -> None:
    fields = {
        "f:metadata": {"f:labels": {".": {}, "f:team": {}}},
        "f:spec": {"f:list": {"i:0": {".": {}}}, "f:keep": {".": {}, "x:unknown": {}}},
    }
    assert parse_fields_v1(fields) >= leaf_paths(fields)
    assert leaf_paths(fields) == {
        ("f:metadata", "f:labels", "f:team"),
        ("f:spec", "f:list", "i:0"),
        ("f:spec", "f:keep"),  # an unreadable key beside "." does not hide the node's own membership
    }


def test_locate_matches_keyed_and_set_elements_as_json_does() -> None:
    obj = {"ports": [{"port": 1, "protocol": "TCP"}, {"port": 1.0, "protocol": "UDP"}], "flags": [1, True]}
    assert locate(obj, ("f:ports", 'k:{"port":1,"protocol":"TCP"}')) == ("ports", 0)
    assert locate(obj, ("f:ports", 'k:{"port":1,"protocol":"UDP"}')) is None  # 1.0 is not 1 in JSON
    assert locate(obj, ("f:flags", "v:true")) == ("flags", 1)
    assert locate(obj, ("f:flags", "i:7")) is None


@given(
    st.recursive(
        st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text(),
        lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
        max_leaves=8,
    )
)
def test_element_json_reads_what_json_loads_reads(value: object) -> None:
    # Issue 17: orjson first, for speed, but never another value than the stdlib's (a big integer stays one).
    text = json.dumps(value)
    assert repr(element_json(text)) == repr(json.loads(text))


def test_element_json_keeps_big_integers_whole_and_refuses_what_json_refuses() -> None:
    assert element_json('{"port":100000000000000000000000}') == {"port": 10**23}
    assert element_json("NaN") != element_json("NaN")  # read by json.loads, as before
    with pytest.raises(ValueError):
        element_json("{not json")
