"""Decision time is linear in the size of the review, whatever its shape, and a 3 MiB review (the API
server's largest) costs a few parses of itself (issue 13: a 458 KB review took 60 s).

Times are process CPU time, the least of several runs, so that other work on a shared machine weighs
as little as it can (it still slows a core it shares caches with); the shapes are in tests/webhook/bulky.py.
What moves with the machine, the 3 MiB figures against issue 13's 100 ms, is measured by
``benchmarks/decision_time.py`` (``make bench``; docs/webhook.md): on this project's 2-core machine the same
shape's least time moved between 61 and 106 ms from one quiet run to the next, so a test of it would judge
the machine. Here each 3 MiB decision is compared with parsing the same two objects in the same process.
"""

from __future__ import annotations

import copy
import gc
import json
import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from benchmarks.decision_time import least_cpu
from tests.webhook.bulky import API_SERVER_LIMIT, SHAPES, Bulky, bulky, sized
from webhook.admission.decision import decide

TARGET = 0.100
"""Seconds for issue 13's own review (0.8 MiB, about 16 ms): the webhook answers with room to spare."""

PARSES = 4
"""A 3 MiB decision costs less than this many ``json.loads`` of the review's two objects (2.7 at most
measured, for atomic keyed elements; a walk that went quadratic again would cost thousands)."""


def _cpu(*reviews: Bulky, runs: int = 5, enough: float = 0.0) -> list[float]:
    """The least CPU time of ``runs`` decisions of each review, the reviews taken in turn; it stops early
    once every least time is under ``enough``."""
    best = [float("inf")] * len(reviews)
    # The collector's full passes scan every object the process holds: the webhook holds a few thousand
    # besides the review, a test run that has got this far hundreds of thousands. Freeze those out of its
    # view, and decide fresh copies of the reviews, which it sees as the webhook's collector would.
    gc.collect()
    gc.freeze()
    try:
        return _least(copy.deepcopy(reviews), best, runs=runs, enough=enough)
    finally:
        gc.unfreeze()


def _least(reviews: tuple[Bulky, ...], best: list[float], *, runs: int, enough: float) -> list[float]:
    for _ in range(runs):
        for index, review in enumerate(reviews):
            gc.collect()  # what an earlier decision left is not this one's cost
            started = time.process_time()
            decide(review.request, review.settings)
            best[index] = min(best[index], time.process_time() - started)
        if max(best) < enough:
            break
    return best


@settings(max_examples=20, deadline=None)
@given(st.sampled_from(sorted(SHAPES)), st.integers(min_value=250, max_value=600))
def test_decision_time_grows_linearly_with_the_review(shape: str, n: int) -> None:
    small, large = bulky(shape, n), bulky(shape, 4 * n)
    assert 2.5 * small.size < large.size < 4 * small.size  # the Deployment around the units is fixed
    small_time, large_time = _cpu(small, large, runs=3)
    # Linear grows 4 times, quadratic 16 times; below a millisecond the clock says little.
    assert large_time < 8 * max(small_time, 0.001), (shape, n, small_time, large_time)


@pytest.mark.parametrize("shape", sorted(SHAPES))
def test_a_review_of_3_mib_is_decided_within_a_few_parses_of_it(shape: str) -> None:
    review = sized(shape)
    assert 0.95 * API_SERVER_LIMIT < review.size <= API_SERVER_LIMIT
    body = json.dumps([review.request.old_object, review.request.object])
    parse = least_cpu(lambda: json.loads(body), runs=5)
    (spent,) = _cpu(review, runs=25, enough=PARSES * parse / 2)
    decision = decide(review.request, review.settings)
    print(f"\n{shape}: {review.size / 2**20:.2f} MiB decided in {spent * 1000:.1f} ms, "
          f"{spent / parse:.2f} parses ({decision.reason})")  # fmt: skip
    assert spent < PARSES * parse
    assert decision.reason != "internal-error"
    assert decision.allowed == (not decision.violation)  # enforce mode: every violation is denied


def test_the_issue_13_review_is_denied_and_names_its_fields() -> None:
    """The shape of the 60 s review: a keyed list with 4,000 changed Git-owned items, now in milliseconds."""
    review = bulky("keyed", 4000)
    (spent,) = _cpu(review, runs=3)
    decision = decide(review.request, review.settings)
    assert (decision.allowed, decision.reason, decision.field_count) == (False, "owned-fields-changed", 4000)
    assert "and 3" in decision.message and "more" in decision.message  # "... and 39xx more"
    assert spent < TARGET
