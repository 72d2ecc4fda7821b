"""Bounded messages keep their end (the reason) and shorten the middle."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from driftwarden.bounded import ELLIPSIS, MESSAGE_LIMIT, shorten, shorten_bytes


@given(st.text(), st.integers(min_value=0, max_value=2000))
def test_a_shortened_message_fits_and_keeps_its_end(text: str, limit: int) -> None:
    out = shorten(text, limit)
    assert len(out) <= limit
    if len(text) <= limit:
        assert out == text
    else:
        kept = limit - len(ELLIPSIS) if limit > len(ELLIPSIS) else limit
        end = kept - kept // 3 if limit > len(ELLIPSIS) else limit
        assert out.endswith(text[len(text) - end :])
        assert end >= kept // 2  # the end gets the larger share


@given(st.text(min_size=1, max_size=300), st.integers(min_value=MESSAGE_LIMIT, max_value=5000))
def test_the_reason_at_the_end_of_a_long_message_survives(reason: str, padding: int) -> None:
    message = "Deployment.apps prod/web: " + "x" * padding + " — " + reason
    out = shorten(message)
    assert len(out) == MESSAGE_LIMIT
    assert out.endswith(reason)
    assert out.startswith("Deployment.apps prod/web: ")


def test_an_immutable_field_error_keeps_field_is_immutable() -> None:
    message = "Job.batch ns/migrate: " + "spec.template: " * 200 + "field is immutable"
    assert shorten(message).endswith("field is immutable")
    assert shorten(message, 40).endswith("field is immutable")


@given(st.text(), st.integers(min_value=0, max_value=1100))
def test_a_byte_bound_is_kept_in_utf8_and_keeps_the_end(text: str, limit: int) -> None:
    out = shorten_bytes(text, limit)
    assert len(out.encode()) <= limit
    if len(text.encode()) <= limit:
        assert out == text
    elif out:
        assert text.endswith(out.rpartition(ELLIPSIS)[2])
