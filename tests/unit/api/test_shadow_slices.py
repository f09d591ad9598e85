"""How many records the event loop scores for a shadow challenger between two of its turns."""

from __future__ import annotations

import pytest

from churnops.api.rollout import INLINE_CHUNK, INLINE_SLICE_SECONDS, slice_records


@pytest.mark.parametrize(
    ("seconds_per_record", "expected"),
    [
        (INLINE_SLICE_SECONDS / 9.5, 9),  # about INLINE_SLICE_SECONDS' worth
        (INLINE_SLICE_SECONDS / 10.9, 10),  # never over it
        (INLINE_SLICE_SECONDS * 3, 1),  # a record longer than a slice: one at a time
        (1e-12, INLINE_CHUNK),  # a very fast model: at most a chunk
        (None, 1),  # no probe figure (scored on the thread): one at a time
    ],
)
def test_a_slice_holds_about_its_time_in_records(
    seconds_per_record: float | None, expected: int
) -> None:
    assert slice_records(seconds_per_record) == expected
