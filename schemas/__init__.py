"""Versioned Arrow schemas of every Parquet file corpusmill writes, and of the recipe.

Each Parquet file carries ``corpusmill.schema`` (its name) and ``corpusmill.schema_version`` in its
key/value metadata, so a reader can tell what it holds and refuse what it does not understand.
Bump a schema's version when a column changes meaning or is removed; adding a nullable column is a
minor change (x.y -> x.(y+1)).
"""

from corpusmill.schemas.documents import (
    CURATED_SCHEMA,
    CURATED_VERSION,
    DROPPED_SCHEMA,
    DROPPED_VERSION,
    SIGNALS_TYPE,
    SIGNALS_TYPE_V1,
)
from corpusmill.schemas.manifest import MANIFEST_SCHEMA, MANIFEST_VERSION
from corpusmill.schemas.meta import schema_metadata, read_schema_metadata

__all__ = [
    "CURATED_SCHEMA",
    "CURATED_VERSION",
    "DROPPED_SCHEMA",
    "DROPPED_VERSION",
    "SIGNALS_TYPE",
    "SIGNALS_TYPE_V1",
    "MANIFEST_SCHEMA",
    "MANIFEST_VERSION",
    "schema_metadata",
    "read_schema_metadata",
]
