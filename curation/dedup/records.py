"""Fixed-size records of the dedup work directory (numpy dtypes, little-endian)."""

from __future__ import annotations

import numpy as np

__all__ = ["RECORD", "EDGE"]

#: one record of a sorted run: a 128-bit key (h = high half, g = low half) and the doc key
RECORD = np.dtype([("h", "<u8"), ("g", "<u8"), ("key", "<u8")])
#: a candidate edge between two doc keys (a < b)
EDGE = np.dtype([("a", "<u8"), ("b", "<u8")])
