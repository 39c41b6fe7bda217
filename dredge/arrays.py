"""Arrow arrays from numpy columns without ``pa.array``'s detour through ``numpy.ma``.

``pa.array(ndarray)`` asks whether its argument is a masked array, which imports
``numpy.ma`` on first use: 10-19 ms of every one-shot command for a module Dredge never uses.
:func:`arrow` wraps the same memory (zero copy, as ``pa.array`` does for numbers) with
``Array.from_buffers``.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import pyarrow as pa


def arrow(values: npt.NDArray[np.generic], type: pa.DataType | None = None,
          mask: npt.NDArray[np.bool_] | None = None) -> pa.Array:
    """``pa.array(values, type, mask=mask)`` for a 1-d numeric ``values`` whose items are
    ``type``'s width (a timestamp over int64, say); anything else goes to ``pa.array``."""
    dtype = values.dtype
    target = pa.from_numpy_dtype(dtype) if type is None else type
    if (values.ndim != 1 or dtype.kind not in "iuf" or dtype.byteorder == ">"
            or getattr(target, "bit_width", 0) != dtype.itemsize * 8
            or pa.types.is_boolean(target) or pa.types.is_decimal(target)):
        return pa.array(values, target, mask=mask)
    data = pa.py_buffer(np.ascontiguousarray(values))
    if mask is None or not mask.any():
        return pa.Array.from_buffers(target, len(values), [None, data], null_count=0)
    valid = np.packbits(~np.asarray(mask, bool), bitorder="little")
    return pa.Array.from_buffers(target, len(values), [pa.py_buffer(valid), data],
                                 null_count=int(np.count_nonzero(mask)))
