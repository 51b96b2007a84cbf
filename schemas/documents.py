"""Curated and dropped document schemas.

``CURATED_SCHEMA`` (``curated/*.parquet``): one row per kept document: a stable ``id`` (blake2b of
``source_file`` + NUL + ``position``), the text and its provenance, language and score, ``signals`` (a
sorted list of ``{key: "<stage>.<signal>", value}``: an Arrow map's layout in a type every loader reads),
toxicity, dedup cluster and size, and other reader metadata as JSON. ``DROPPED_SCHEMA``
(``dropped/*.parquet``): one row per dropped or errored document, with ``status``, ``stage``, ``reason``,
``error`` and the text truncated to ``dropped_text_chars``. Every column: docs/stats.md, "The curated and
dropped schemas".
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
