"""Curated and dropped document schemas.

Curated (``curated/*.parquet``), one row per kept document:

- ``id``: stable id, ``blake2b(source_file + NUL + position)`` as 16 hex digits. ``source_file`` is the
  path relative to the recipe input's root, so moving the data keeps the ids; reruns give the same ids.
- ``text``, ``source_kind`` (web, wet, wikipedia, book, jsonl, parquet ...), ``url``, ``title``,
  ``source_file``, ``position`` (ordinal of the record in its shard, counting every candidate record).
- ``language`` / ``language_score``: top fastText label and its probability (null before language ID).
- ``signals``: every quality signal a stage computed (kept docs too, so distributions can be studied
  later) as a list of ``{key: "<stage>.<signal>", value: float}`` sorted by key: the physical layout
  of an Arrow map, but a type every loader reads (HF ``datasets`` has no map type). One type for all
  recipes, so every file of every run concatenates; ``corpusmill stats`` views turn it back into a
  DuckDB ``MAP`` (``signals['gopher_quality.mean_word_length']``). Version 1.x files stored a map.
- ``toxicity``: score in [0, 1] (null when no toxicity stage ran).
- ``dedup_cluster`` / ``dedup_cluster_size``: near-duplicate cluster id (the survivor's id) and size
  (null / 1 when the doc is in no cluster).
- ``metadata_json``: any other reader metadata (WARC record id, dates, wiki page id ...) as JSON.

Dropped (``dropped/*.parquet``), one row per document that did not make it, for a filter's reason or
for an error while reading it (``status`` tells which): ``stage`` and ``reason`` say where and why;
``error`` holds the exception text for errors; ``signals`` as above; ``text`` is kept (truncated to
``dropped_text_chars``, default 2,000) so a user can see what a filter removed.
"""

from __future__ import annotations

import pyarrow as pa

from corpusmill.schemas.meta import schema_metadata

CURATED_VERSION = "2.0"
DROPPED_VERSION = "2.0"

SIGNALS_TYPE = pa.list_(pa.struct([pa.field("key", pa.string(), nullable=False), pa.field("value", pa.float64())]))
#: what version 1.x files stored (still read by ``corpusmill stats`` / ``report`` and the dedup phases)
SIGNALS_TYPE_V1 = pa.map_(pa.string(), pa.float64())

_common = [
    pa.field("id", pa.string(), nullable=False),
    pa.field("source_kind", pa.string()),
    pa.field("url", pa.string()),
    pa.field("title", pa.string()),
    pa.field("source_file", pa.string(), nullable=False),
    pa.field("position", pa.int64(), nullable=False),
    pa.field("language", pa.string()),
    pa.field("language_score", pa.float64()),
    pa.field("signals", SIGNALS_TYPE),
    pa.field("toxicity", pa.float64()),
]

CURATED_SCHEMA = schema_metadata(
    pa.schema(
        [_common[0], pa.field("text", pa.string(), nullable=False), *_common[1:]]
        + [
            pa.field("dedup_cluster", pa.string()),
            pa.field("dedup_cluster_size", pa.int64()),
            pa.field("metadata_json", pa.string()),
        ]
    ),
    "curated",
    CURATED_VERSION,
)

DROPPED_SCHEMA = schema_metadata(
    pa.schema(
        [
            _common[0],
            pa.field("status", pa.string(), nullable=False),  # "dropped" | "error"
            pa.field("stage", pa.string(), nullable=False),
            pa.field("reason", pa.string(), nullable=False),
            pa.field("error", pa.string()),
            pa.field("text", pa.string()),
            *_common[1:],
            pa.field("dedup_cluster", pa.string()),
            pa.field("dedup_cluster_size", pa.int64()),
            pa.field("metadata_json", pa.string()),
        ]
    ),
    "dropped",
    DROPPED_VERSION,
)
