"""Per-shard run manifest (``manifest/*.parquet``), one row per input shard.

The accounting identity ``read == kept + sum(dropped.count) + errored`` holds for every row; the
engine checks it when the shard closes and again over the whole run (a mismatch fails the run).
"""

from __future__ import annotations

import pyarrow as pa

from corpusmill.schemas.meta import schema_metadata

MANIFEST_VERSION = "1.1"  # 1.1: repaired, skipped

DROP_COUNT_TYPE = pa.list_(
    pa.struct([("stage", pa.string()), ("reason", pa.string()), ("count", pa.int64())])
)

MANIFEST_SCHEMA = schema_metadata(
    pa.schema(
        [
            pa.field("shard", pa.string(), nullable=False),  # source_file (relative)
            pa.field("input_path", pa.string()),  # as given (absolute path or URL)
            pa.field("reader", pa.string()),
            pa.field("source_kind", pa.string()),
            pa.field("engine", pa.string()),
            pa.field("recipe_hash", pa.string()),
            pa.field("read", pa.int64(), nullable=False),
            pa.field("kept", pa.int64(), nullable=False),
            pa.field("dropped", pa.int64(), nullable=False),
            pa.field("errored", pa.int64(), nullable=False),
            pa.field("dropped_by", DROP_COUNT_TYPE),
            pa.field("errored_by", DROP_COUNT_TYPE),
            pa.field("input_bytes", pa.int64()),
            pa.field("kept_text_bytes", pa.int64()),
            pa.field("started_at", pa.timestamp("ms", tz="UTC")),
            pa.field("finished_at", pa.timestamp("ms", tz="UTC")),
            pa.field("seconds", pa.float64()),
            pa.field("stage_seconds", pa.map_(pa.string(), pa.float64())),
            pa.field("versions", pa.map_(pa.string(), pa.string())),
            # records repaired to be writable, by kind (curation.sanitize): they are counted in kept/dropped/errored too
            pa.field("repaired", pa.map_(pa.string(), pa.int64())),
            # input records that are not candidate documents, by type (e.g. WARC request, revisit, metadata):
            # not in read; read + sum(skipped) is the archive's record count
            pa.field("skipped", pa.map_(pa.string(), pa.int64())),
        ]
    ),
    "manifest",
    MANIFEST_VERSION,
)
