"""``Lookup.present``: many elements at once, found however the API server spells them (as ``respelled``)."""

from __future__ import annotations

from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from driftwarden.fieldtrie import Lookup

NODE: dict[str, Any] = {
    'v:"plain"': {},
    'v:"a\\u003cb"': {},  # Go's json escapes <, > and & (what the API server writes)
    'v:"caf\\u00e9"': {},  # an escape Go does not write, found by parsing the key
    ".": {},
}


def test_each_spelling_is_found_and_nothing_else() -> None:
    asked = ['v:"plain"', 'v:"a<b"', 'v:"café"', 'v:"other"', 'v:"a>b"']
    assert Lookup().present(NODE, asked) == ['v:"plain"', 'v:"a<b"', 'v:"café"']


@given(st.lists(st.sampled_from(['v:"plain"', 'v:"a<b"', 'v:"café"', 'v:"x&y"', "f:name", "."]), max_size=8))
def test_present_agrees_with_one_lookup_at_a_time(elements: list[str]) -> None:
    lookup = Lookup()
    one_by_one = [e for e in elements if e in NODE or lookup.respelled(NODE, e) is not None]
    assert lookup.present(NODE, elements) == one_by_one
