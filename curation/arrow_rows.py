"""Python rows -> Arrow tables without ``pa.array`` on Python objects.

``pa.array`` (and ``Table.from_pylist``) imports pandas the first time it converts Python objects, which
is most of a short run's start-up; :func:`table_from_rows` builds the same arrays from buffers for the
types our schemas use (strings, int64, float64, UTC timestamps, lists, structs, maps) and hands any
other type or unexpected value to ``pa.array`` (same result, same errors).
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.types as pt

_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
_UNIT = {"s": timedelta(seconds=1), "ms": timedelta(milliseconds=1), "us": timedelta(microseconds=1)}


class _Fallback(Exception):
    """A value the buffer path does not handle: convert the column with ``pa.array``."""


def _validity(values: list) -> tuple[pa.Buffer | None, int]:
    valid = np.fromiter((v is not None for v in values), dtype=bool, count=len(values))
    nulls = len(values) - int(valid.sum())
    return (pa.py_buffer(np.packbits(valid, bitorder="little")) if nulls else None), nulls


def _offsets(lengths: list[int]) -> np.ndarray:
    off = np.zeros(len(lengths) + 1, dtype=np.int64)
    np.cumsum(lengths, out=off[1:])
    return off


def _strings(values: list, typ: pa.DataType) -> pa.Array:
    if not all(type(v) is str or v is None for v in values):
        raise _Fallback
    try:
        encoded = [v.encode("utf-8") if v is not None else b"" for v in values]
    except UnicodeEncodeError:  # lone surrogates: pa.array raises its own error
        raise _Fallback from None
    off = _offsets([len(b) for b in encoded])
    if pt.is_string(typ):
        if off[-1] >= 2**31:
            raise _Fallback  # pa.array makes it a chunked array
        off = off.astype(np.int32)
    validity, nulls = _validity(values)
    return pa.Array.from_buffers(typ, len(values), [validity, pa.py_buffer(off), pa.py_buffer(b"".join(encoded))], nulls)


def _numbers(values: list, typ: pa.DataType) -> pa.Array:
    if pt.is_int64(typ):
        if not all(type(v) is int or v is None for v in values):
            raise _Fallback
        dtype = np.int64
    else:
        # pa.array refuses ints a double cannot hold exactly
        if not all(type(v) is float or v is None or (type(v) is int and -2**53 <= v <= 2**53) for v in values):
            raise _Fallback
        dtype = np.float64
    try:
        data = np.array([0 if v is None else v for v in values], dtype=dtype)
    except OverflowError:
        raise _Fallback from None
    validity, nulls = _validity(values)
    return pa.Array.from_buffers(typ, len(values), [validity, pa.py_buffer(data)], nulls)


def _timestamps(values: list, typ: pa.DataType) -> pa.Array:
    unit = _UNIT.get(typ.unit)
    if unit is None or not all(v is None or (type(v) is datetime and v.tzinfo is not None and v >= _EPOCH) for v in values):
        raise _Fallback
    data = np.array([0 if v is None else (v - _EPOCH) // unit for v in values], dtype=np.int64)
    validity, nulls = _validity(values)
    return pa.Array.from_buffers(typ, len(values), [validity, pa.py_buffer(data)], nulls)


def _lists(values: list, typ: pa.DataType) -> pa.Array:
    if not all(type(v) is list or v is None for v in values):
        raise _Fallback
    off = _offsets([0 if v is None else len(v) for v in values])
    if off[-1] >= 2**31:
        raise _Fallback
    child = column([x for v in values if v is not None for x in v], typ.value_type)
    validity, nulls = _validity(values)
    return pa.Array.from_buffers(typ, len(values), [validity, pa.py_buffer(off.astype(np.int32))], nulls, children=[child])


def _structs(values: list, typ: pa.StructType) -> pa.Array:
    if not all(type(v) is dict or v is None for v in values):
        raise _Fallback
    names = [typ.field(i).name for i in range(typ.num_fields)]
    if any(v is not None and not set(v) <= set(names) for v in values):
        raise _Fallback
    children = [column([None if v is None else v.get(n) for v in values], typ.field(i).type) for i, n in enumerate(names)]
    validity, nulls = _validity(values)
    return pa.Array.from_buffers(typ, len(values), [validity], nulls, children=children)


def _maps(values: list, typ: pa.MapType) -> pa.Array:
    items: list = []
    lengths = []
    for v in values:
        if v is None:
            lengths.append(0)
            continue
        pairs = list(v.items()) if type(v) is dict else v
        if type(pairs) is not list or not all(type(p) is tuple and len(p) == 2 for p in pairs):
            raise _Fallback
        items.extend(pairs)
        lengths.append(len(pairs))
    keys = column([k for k, _ in items], typ.key_type)
    if keys.null_count:
        raise _Fallback
    entries = pa.StructArray.from_arrays([keys, column([x for _, x in items], typ.item_type)],
                                         fields=[typ.key_field, typ.item_field])
    validity, nulls = _validity(values)
    off = _offsets(lengths).astype(np.int32)
    return pa.Array.from_buffers(typ, len(values), [validity, pa.py_buffer(off)], nulls, children=[entries])


def column(values: list, typ: pa.DataType) -> pa.Array:
    """``pa.array(values, type=typ)``, from buffers when the type and values allow."""
    try:
        if pt.is_string(typ) or pt.is_large_string(typ):
            return _strings(values, typ)
        if pt.is_int64(typ) or pt.is_float64(typ):
            return _numbers(values, typ)
        if pt.is_timestamp(typ):
            return _timestamps(values, typ)
        if pt.is_map(typ):
            return _maps(values, typ)
        if pt.is_list(typ):
            return _lists(values, typ)
        if pt.is_struct(typ):
            return _structs(values, typ)
    except _Fallback:
        pass
    return pa.array(values, type=typ)


def table_from_rows(rows: list[dict[str, Any]], schema: pa.Schema) -> pa.Table:
    """``pa.Table.from_pylist(rows, schema=schema)`` without importing pandas."""
    return pa.Table.from_arrays([column([r.get(f.name) for r in rows], f.type) for f in schema], schema=schema)
