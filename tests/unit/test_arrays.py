"""``dredge.arrays.arrow`` gives what ``pa.array`` gives, over the same memory."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest

from dredge.arrays import arrow

CASES = [
    (np.arange(10, dtype=np.int8), None, None),
    (np.arange(10, dtype=np.uint64), None, None),
    (np.arange(20, dtype=np.int64)[::2], pa.timestamp("s"), None),  # strided: copied
    (np.arange(13, dtype=np.int32), None, np.arange(13) % 3 == 0),
    (np.arange(13, dtype=np.int16), None, np.zeros(13, bool)),
    (np.array([1.5, -0.0, 2.0]), None, np.array([False, False, True])),
    (np.arange(5, dtype=np.int64), pa.int32(), None),  # a cast: pa.array's
    (np.array([True, False]), None, None),  # booleans are bits in Arrow: pa.array's
    (np.arange(6, dtype=np.int32).reshape(2, 3)[0], None, None),
    (np.array([], dtype=np.int64), None, None),
]


@pytest.mark.parametrize(("values", "type", "mask"), CASES)
def test_the_same_array_as_pa_array(values: np.ndarray, type: pa.DataType | None,
                                    mask: np.ndarray | None) -> None:
    got = arrow(values, type, mask)
    got.validate(full=True)
    assert got.equals(pa.array(values, type, mask=mask))


def test_numbers_are_not_copied() -> None:
    values = np.arange(1000, dtype=np.int64)
    got = arrow(values)
    assert got.buffers()[1].address == values.ctypes.data
