"""Readers: one raw shard (a still-compressed byte stream) -> records with stable positions.

Importing this package registers every reader in :data:`REGISTRY` (``warc``, ``wet``, ``wikipedia``,
``books``, ``jsonl``, ``parquet``); :func:`get_reader` builds one by name with its options.
"""

from typing import Any

from corpusmill.curation.readers.base import REGISTRY, Reader, Record, register
from corpusmill.curation.readers import books, jsonl, parquet, warc, wikipedia  # noqa: F401  (fill REGISTRY)


def get_reader(name: str, **options: Any) -> Reader:
    """The reader registered as ``name``, built with its options."""
    try:
        cls = REGISTRY[name]
    except KeyError:
        raise KeyError(f"unknown reader {name!r}; known: {', '.join(sorted(REGISTRY))}") from None
    return cls(**options)


__all__ = ["REGISTRY", "Reader", "Record", "get_reader", "register"]
