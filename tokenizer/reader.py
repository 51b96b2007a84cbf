"""Stream documents out of curated Parquet files, one record batch at a time.

:func:`expand_inputs` lists the Parquet files of globs / directories; :func:`id_unit` maps a document
id to a deterministic number in [0, 1) (blake2b) that decides the held-out / validation split (the same
hash for the tokenizer and ``pack``); :class:`Weights` turns ``source_kind=book:0.5`` options into a
per-document copy count. Why the split depends on the id alone: docs/tokenizer.md.
"""

from __future__ import annotations

import glob
import hashlib
import math
import os
import queue
import threading
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow.compute as pc
import pyarrow.parquet as pq

TEXT, ID, KIND, LANG = "text", "id", "source_kind", "language"


def expand_inputs(patterns: str | list[str]) -> list[Path]:
    """Sorted, de-duplicated Parquet files matched by globs (``**`` allowed) or directories."""
    if isinstance(patterns, (str, os.PathLike)):
        patterns = [patterns]
    found: set[Path] = set()
    for pat in patterns:
        pat = str(pat)
        if os.path.isdir(pat):
            found.update(Path(p) for p in glob.glob(os.path.join(pat, "**", "*.parquet"), recursive=True))
        else:
            found.update(Path(p) for p in glob.glob(pat, recursive=True) if os.path.isfile(p))
    if not found:
        raise FileNotFoundError(f"no Parquet files match {patterns}")
    return sorted(found)


def id_unit(doc_id: str, salt: str = "") -> float:
    """Deterministic uniform number in [0, 1) from a document id (first 8 bytes of blake2b)."""
    h = hashlib.blake2b((salt + doc_id).encode("utf-8", "surrogatepass"), digest_size=8).digest()
    return int.from_bytes(h, "little") / 2.0**64


def is_heldout(doc_id: str, fraction: float) -> bool:
    """True for the documents of the held-out / validation split (``id_unit(id) < fraction``)."""
    return fraction > 0 and id_unit(doc_id) < fraction


@dataclass
class Weights:
    """Sampling weights by column value, e.g. ``Weights.parse(["source_kind=book:0.5", "language=fr:2"])``.

    A document's weight is the product of the weights of its matching rules (1.0 when none match).
    Weight w gives ``floor(w)`` copies plus one more with probability ``w - floor(w)``, decided by the
    document id, so a weight of 0.5 keeps a fixed half of the documents and 2.0 repeats each twice.
    """

    rules: dict[str, dict[str, float]] = field(default_factory=dict)

    @classmethod
    def parse(cls, specs: list[str] | None) -> "Weights":
        rules: dict[str, dict[str, float]] = {}
        for spec in specs or []:
            try:
                key_col, w = spec.rsplit(":", 1)
                col, value = key_col.split("=", 1)
                weight = float(w)
            except ValueError:
                raise ValueError(f"bad weight {spec!r}: expected COLUMN=VALUE:WEIGHT, e.g. source_kind=book:0.5") from None
            if col not in (KIND, LANG):
                raise ValueError(f"bad weight {spec!r}: column must be {KIND} or {LANG}")
            if weight < 0 or not math.isfinite(weight):
                raise ValueError(f"bad weight {spec!r}: weight must be >= 0")
            rules.setdefault(col, {})[value] = weight
        return cls(rules)

    def __bool__(self) -> bool:
        return bool(self.rules)

    def weight(self, kind: str | None, lang: str | None) -> float:
        w = 1.0
        if KIND in self.rules:
            w *= self.rules[KIND].get(kind, 1.0)
        if LANG in self.rules:
            w *= self.rules[LANG].get(lang, 1.0)
        return w

    def copies(self, doc_id: str, kind: str | None, lang: str | None) -> int:
        w = self.weight(kind, lang)
        whole = int(w)
        return whole + (1 if id_unit(doc_id, "weight:") < w - whole else 0)

    def to_json(self) -> list[str]:
        return [f"{col}={val}:{w}" for col, vals in sorted(self.rules.items()) for val, w in sorted(vals.items())]


def parquet_rows(paths: list[Path]) -> int:
    """Total row count from the Parquet footers (no data read)."""
    return sum(pq.ParquetFile(p).metadata.num_rows for p in paths)


@dataclass
class DocBatch:
    """One record batch of documents, as Python lists (what tokenizers / tiktoken consume)."""

    path: Path
    ids: list[str]
    texts: list[str]
    kinds: list[str | None]
    langs: list[str | None]
    nbytes: list[int]  # UTF-8 bytes of each text


def iter_doc_batches(paths: list[Path], batch_rows: int = 1024, text_column: str = TEXT) -> Iterator[DocBatch]:
    """Yield :class:`DocBatch` es over every row of every file, in file then row order.

    Missing optional columns read as None; a file without an ``id`` column gets ``"<file name>:<row>"``.
    """
    for path in paths:
        pf = pq.ParquetFile(path)
        names = set(pf.schema_arrow.names)
        if text_column not in names:
            raise ValueError(f"{path}: no {text_column!r} column (has {sorted(names)})")
        cols = [c for c in (ID, text_column, KIND, LANG) if c in names]
        row = 0
        for rb in pf.iter_batches(batch_size=batch_rows, columns=cols):
            n = rb.num_rows
            text = rb.column(text_column)
            texts = text.to_pylist()
            # (not Array.fill_null: its first call imports pandas, ~1 s)
            nbytes = [n or 0 for n in pc.binary_length(text).to_pylist()]
            if ID in names:
                ids = rb.column(ID).to_pylist()
            else:
                ids = [f"{path.name}:{row + i}" for i in range(n)]
            kinds = rb.column(KIND).to_pylist() if KIND in names else [None] * n
            langs = rb.column(LANG).to_pylist() if LANG in names else [None] * n
            texts = [t if t is not None else "" for t in texts]
            yield DocBatch(path, ids, texts, kinds, langs, nbytes)
            row += n


def prefetch(items: Iterable, depth: int = 4) -> Iterator:
    """Iterate ``items`` in a background thread, up to ``depth`` ahead.

    Parquet decompression and decoding then overlap with the consumer (e.g. the BPE trainer's Rust
    threads counting words), instead of stalling them while the next batch is read. Exceptions are
    re-raised in the consumer.
    """
    q: queue.Queue = queue.Queue(maxsize=depth)
    done = object()
    stop = threading.Event()

    def run():
        try:
            for x in items:
                while not stop.is_set():
                    try:
                        q.put(x, timeout=0.1)
                        break
                    except queue.Full:
                        continue
                if stop.is_set():
                    return
            q.put(done)
        except BaseException as e:  # hand the error to the consumer
            q.put(e)

    t = threading.Thread(target=run, name="prefetch", daemon=True)
    t.start()
    try:
        while True:
            x = q.get()
            if x is done:
                return
            if isinstance(x, BaseException):
                raise x
            yield x
    finally:
        stop.set()
