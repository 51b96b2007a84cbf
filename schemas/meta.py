"""Schema name/version stamped into every Parquet file's key/value metadata."""

from __future__ import annotations

import pyarrow as pa
import pyarrow.parquet as pq

KEY_NAME = b"corpusmill.schema"
KEY_VERSION = b"corpusmill.schema_version"


def schema_metadata(schema: pa.Schema, name: str, version: str) -> pa.Schema:
    """Return ``schema`` with corpusmill's name/version metadata attached."""
    meta = dict(schema.metadata or {})
    meta[KEY_NAME] = name.encode()
    meta[KEY_VERSION] = version.encode()
    return schema.with_metadata(meta)


def read_schema_metadata(path) -> tuple[str | None, str | None]:
    """(schema name, version) stamped in a Parquet file, or (None, None) if it has none."""
    meta = pq.read_schema(path).metadata or {}
    name = meta.get(KEY_NAME)
    version = meta.get(KEY_VERSION)
    return (name.decode() if name else None, version.decode() if version else None)
