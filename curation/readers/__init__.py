"""Readers: one raw shard (a still-compressed byte stream) -> records with stable positions.

Importing this package registers every reader in :data:`REGISTRY` (``warc``, ``wet``, ``wikipedia``,
``books``, ``jsonl``, ``parquet``); :func:`get_reader` builds one by name with its options.
"""

from curation.readers.base import REGISTRY, Reader, Record, get_reader, register
from curation.readers import books, jsonl, parquet, warc, wikipedia  # noqa: F401  (fill REGISTRY)

__all__ = ["REGISTRY", "Reader", "Record", "get_reader", "register"]
