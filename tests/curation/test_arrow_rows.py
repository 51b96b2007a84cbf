"""table_from_rows == pa.Table.from_pylist for the curated, dropped and manifest schemas, without pandas."""

from __future__ import annotations

import subprocess
import sys
from datetime import datetime, timezone

import pyarrow as pa
import pytest

from corpusmill.curation.arrow_rows import column, table_from_rows
from corpusmill.schemas import CURATED_SCHEMA, DROPPED_SCHEMA, MANIFEST_SCHEMA


def _rows(schema):
    from hypothesis import strategies as st

    text = st.one_of(st.none(), st.text(max_size=8))
    ints = st.one_of(st.none(), st.integers(-2**63, 2**63 - 1))
    floats = st.one_of(st.none(), st.floats(allow_nan=False), st.integers(-2**53, 2**53))
    stamps = st.one_of(st.none(), st.datetimes(min_value=datetime(1970, 1, 1), timezones=st.just(timezone.utc)))

    def value(t):
        if pa.types.is_string(t):
            return text
        if pa.types.is_int64(t):
            return ints
        if pa.types.is_float64(t):
            return floats
        if pa.types.is_timestamp(t):
            return stamps
        if pa.types.is_map(t):
            pairs = st.lists(st.tuples(st.text(max_size=4), value(t.item_type)), max_size=3)
            return st.one_of(st.none(), pairs, pairs.map(dict))
        if pa.types.is_list(t):
            return st.one_of(st.none(), st.lists(value(t.value_type), max_size=3))
        if pa.types.is_struct(t):
            fields = [t.field(i) for i in range(t.num_fields)]
            return st.fixed_dictionaries({f.name: (value(f.type).filter(lambda v: v is not None) if not f.nullable else value(f.type))
                                          for f in fields})
        raise AssertionError(t)

    return st.lists(st.fixed_dictionaries({f.name: value(f.type) for f in schema}), max_size=6)


@pytest.mark.parametrize("schema", [CURATED_SCHEMA, DROPPED_SCHEMA, MANIFEST_SCHEMA], ids=["curated", "dropped", "manifest"])
def test_same_table_as_from_pylist(schema):
    from hypothesis import given, settings

    @settings(max_examples=300, deadline=None)
    @given(_rows(schema))
    def check(rows):
        want = pa.Table.from_pylist(rows, schema=schema)
        got = table_from_rows(rows, schema)
        got.validate(full=True)
        assert got.equals(want) and got.to_pylist() == want.to_pylist()

    check()


def test_unexpected_values_take_pa_array():
    with pytest.raises(pa.ArrowException):
        column([True, None], pa.int64())  # pa.array refuses a bool for an integer
    with pytest.raises(pa.ArrowException):
        column([1.5, 2**60], pa.float64())  # pa.array refuses ints past 2**53 for a double
    assert column([datetime(2020, 1, 1, 0, 0, 0, 999)], pa.timestamp("ms")).to_pylist() == [datetime(2020, 1, 1)]
    with pytest.raises((pa.ArrowException, UnicodeError)):
        column(["\ud800"], pa.string())  # lone surrogate: pa.array's error
    with pytest.raises(pa.ArrowException):
        column([1], pa.string())


def test_no_pandas_import():
    code = ("import sys; from datetime import datetime, timezone; from corpusmill.curation.arrow_rows import table_from_rows;"
            "from corpusmill.schemas import MANIFEST_SCHEMA as M, CURATED_SCHEMA as C;"
            "table_from_rows([{'shard': 'a', 'read': 1, 'kept': 1, 'dropped': 0, 'errored': 0, 'dropped_by': [{'stage': 's', 'reason': 'r', 'count': 1}],"
            "'started_at': datetime.now(timezone.utc), 'versions': [('python', '3')], 'stage_seconds': {'x': 1.0}}], M);"
            "table_from_rows([{'id': 'x', 'text': 't', 'source_file': 'f', 'position': 0, 'signals': [{'key': 'k', 'value': 0.5}]}], C);"
            "print('pandas' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == "False"
