"""Benchmark decontamination (``decontaminate``): drop or tag documents sharing word n-grams (default 13,
GPT-3's and datatrove's practice) with evaluation sets the user provides.

Evaluation texts come from JSONL / JSON / CSV (optionally ``.gz``) or Parquet files, one or more text
fields per row. Texts are normalised as for dedup (:mod:`corpusmill.curation.dedup.normalize`: case,
punctuation, digits, accents), and the 64-bit hashes of their word n-grams form the index: one sorted
``uint64`` array (8 bytes an n-gram) with a parallel array naming the evaluation set. A document's
n-grams are hashed in one pass and looked up with a binary search, so the check costs O(document
length x log index size). Details and measurements: docs/filters.md, "Decontamination".
"""

from __future__ import annotations

import csv
import gzip
import io
import json
import os
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
from datatrove.data import Document

from corpusmill.curation.dedup.normalize import shingle_hashes
from corpusmill.curation.text.languages import language_set
from corpusmill.curation.stage import Filter

ACTIONS = ("drop", "tag")


def _open_text(path: str) -> io.TextIOBase:
    if path.endswith(".gz"):
        return gzip.open(path, "rt", encoding="utf-8", newline="")
    return open(path, encoding="utf-8", newline="")


def eval_texts(path: str, fields: list[str]) -> Iterator[str]:
    """The non-empty values of ``fields`` in every row of an evaluation file (a list value: each item)."""
    name = path[:-3] if path.endswith(".gz") else path
    ext = os.path.splitext(name)[1].lower()

    def values(row: dict) -> Iterator[str]:
        for f in fields:
            v = row.get(f)
            for x in v if isinstance(v, list) else [v]:
                if isinstance(x, str) and x.strip():
                    yield x

    if ext == ".parquet":
        import pyarrow.parquet as pq

        pf = pq.ParquetFile(path)
        missing = [f for f in fields if f not in pf.schema_arrow.names]
        if missing:
            raise ValueError(f"{path}: no column {missing[0]!r} (columns: {', '.join(pf.schema_arrow.names)})")
        for batch in pf.iter_batches(columns=fields, batch_size=4096):
            for row in batch.to_pylist():
                yield from values(row)
    elif ext == ".csv":
        with _open_text(path) as f:
            reader = csv.DictReader(f)
            missing = [x for x in fields if x not in (reader.fieldnames or [])]
            if missing:
                raise ValueError(f"{path}: no column {missing[0]!r} (columns: {', '.join(reader.fieldnames or [])})")
            for row in reader:
                yield from values(row)
    elif ext in (".jsonl", ".json", ".ndjson"):
        with _open_text(path) as f:
            for i, line in enumerate(f):
                if line.strip():
                    try:
                        row = json.loads(line)
                    except json.JSONDecodeError as e:
                        raise ValueError(f"{path}: line {i + 1} is not JSON ({e.msg})") from None
                    if isinstance(row, dict):
                        yield from values(row)
    else:
        raise ValueError(f"{path}: unsupported evaluation file (use .jsonl, .json, .csv or .parquet, optionally .gz)")


def _eval_specs(eval_sets: Any) -> list[dict]:
    """``eval_sets`` as ``[{"path", "fields", "name"}]``; a plain path reads the ``text`` field."""
    if isinstance(eval_sets, (str, dict)):
        eval_sets = [eval_sets]
    if not isinstance(eval_sets, (list, tuple)) or not eval_sets:
        raise ValueError("eval_sets: expected a path or a list of {path, fields, name} entries")
    out = []
    for i, e in enumerate(eval_sets):
        if isinstance(e, str):
            e = {"path": e}
        if not isinstance(e, dict) or not isinstance(e.get("path"), str):
            raise ValueError(f"eval_sets[{i}]: expected a path or a mapping with 'path'")
        unknown = set(e) - {"path", "fields", "name"}
        if unknown:
            raise ValueError(f"eval_sets[{i}]: unknown key {sorted(unknown)[0]!r} (allowed: fields, name, path)")
        fields = e.get("fields", ["text"])
        fields = [fields] if isinstance(fields, str) else list(fields)
        if not fields or not all(isinstance(f, str) for f in fields):
            raise ValueError(f"eval_sets[{i}].fields: expected a list of field names")
        if not os.path.isfile(e["path"]):
            raise ValueError(f"eval_sets[{i}].path: no such file {e['path']!r}")
        try:
            next(iter(eval_texts(e["path"], fields)), None)  # readable, and the fields exist: say so now
        except (ValueError, OSError, UnicodeDecodeError) as err:
            raise ValueError(f"eval_sets[{i}]: {err}") from None
        name = e.get("name") or Path(e["path"]).name.split(".")[0]
        out.append({"path": e["path"], "fields": fields, "name": str(name)})
    return out


class NGramIndex:
    """Sorted distinct n-gram hashes with the evaluation set (index into ``names``) each came from."""

    def __init__(self, hashes: np.ndarray, sets: np.ndarray, names: list[str], n: int, texts: int) -> None:
        self.hashes, self.sets, self.names, self.n, self.texts = hashes, sets, names, n, texts

    @classmethod
    def build(cls, specs: list[dict], n: int, min_words: int) -> "NGramIndex":
        parts, owners = [], []
        texts = 0
        for k, spec in enumerate(specs):
            for text in eval_texts(spec["path"], spec["fields"]):
                if len(text.split()) < min_words:
                    continue
                h = shingle_hashes(text, n)
                parts.append(h)
                owners.append(np.full(h.size, k, dtype=np.uint16))
                texts += 1
        if not parts:
            return cls(np.empty(0, np.uint64), np.empty(0, np.uint16), [s["name"] for s in specs], n, 0)
        h = np.concatenate(parts)
        o = np.concatenate(owners)
        order = np.argsort(h, kind="stable")
        h, o = h[order], o[order]
        keep = np.ones(h.size, dtype=bool)
        keep[1:] = h[1:] != h[:-1]  # an n-gram in several sets names the first
        return cls(h[keep], o[keep], [s["name"] for s in specs], n, texts)

    def matches(self, doc_hashes: np.ndarray) -> np.ndarray:
        """Positions in the index of the document's hashes that are in it."""
        if self.hashes.size == 0 or doc_hashes.size == 0:
            return np.empty(0, dtype=np.int64)
        pos = np.searchsorted(self.hashes, doc_hashes)
        pos[pos == self.hashes.size] = 0
        return pos[self.hashes[pos] == doc_hashes]

    def __len__(self) -> int:
        return int(self.hashes.size)


_INDEX_CACHE: dict[tuple, NGramIndex] = {}  # one index per process for the same files and settings


class Decontaminate(Filter):
    """Drop (``action="drop"``, reason ``contaminated``) or tag (``"tag"``) documents that share more than
    ``max_matches`` word ``n``-grams with the evaluation sets.

    Args:
        eval_sets: a path, or a list of paths / ``{path, fields: [question, answer], name}`` entries.
        n: n-gram length in normalised words (13: GPT-3, datatrove uses 12 by default).
        min_words: evaluation texts with fewer words are skipped (a text shorter than ``n`` words is one
            n-gram of itself and only matches a document of exactly that text).
        max_matches: matched n-grams tolerated (0: any shared n-gram contaminates, as GPT-3).

    Sets ``metadata["contaminated_by"]`` (set names, comma-separated) on a match. Signals
    (``decontaminate.*``): ``matched_ngrams``, ``matched_fraction`` (of the document's n-grams).
    """

    name = "decontaminate"
    THRESHOLDS = {"matched_ngrams": [("max", "drop_above")]}

    def __init__(
        self,
        eval_sets: Any,
        n: int = 13,
        min_words: int = 0,
        max_matches: int = 0,
        action: str = "drop",
        languages: Iterable[str] | str | None = None,
    ):
        if isinstance(n, bool) or not isinstance(n, int) or n < 1:
            raise ValueError(f"n must be an integer >= 1, got {n!r}")
        if isinstance(max_matches, bool) or not isinstance(max_matches, int) or max_matches < 0:
            raise ValueError(f"max_matches must be an integer >= 0, got {max_matches!r}")
        if action not in ACTIONS:
            raise ValueError(f"action must be one of {', '.join(ACTIONS)}, got {action!r}")
        self.specs = _eval_specs(eval_sets)
        self.n, self.min_words, self.max_matches, self.action = n, int(min_words), max_matches, action
        self.drop_above = max_matches + 0.5 if action == "drop" else None  # the report's line between counts
        self._index: NGramIndex | None = None
        self.languages = language_set(languages)

    def __getstate__(self) -> dict:
        state = self.__dict__.copy()
        state["_index"] = None
        return state

    def _key(self) -> tuple:
        files = tuple((s["path"], tuple(s["fields"]), s["name"], os.path.getmtime(s["path"])) for s in self.specs)
        return files, self.n, self.min_words

    def setup(self) -> None:
        if self._index is None:
            key = self._key()
            if key not in _INDEX_CACHE:
                _INDEX_CACHE[key] = NGramIndex.build(self.specs, self.n, self.min_words)
            self._index = _INDEX_CACHE[key]

    @property
    def index(self) -> NGramIndex:
        self.setup()
        return self._index

    def filter(self, doc: Document) -> bool | tuple[bool, str]:
        index = self.index
        h = shingle_hashes(doc.text, self.n)
        pos = index.matches(h)
        s = self.signals(doc)
        s["matched_ngrams"] = pos.size
        s["matched_fraction"] = pos.size / h.size if h.size else 0.0
        if pos.size == 0:
            return True
        doc.metadata["contaminated_by"] = ",".join(index.names[k] for k in sorted(set(index.sets[pos].tolist())))
        if self.action == "drop" and pos.size > self.max_matches:
            return False, "contaminated"
        return True


def contaminated_sets(docs: Iterable[Document]) -> dict[str, int]:
    """Documents per evaluation set name among ``docs`` (a helper for reports and tests)."""
    out: dict[str, int] = {}
    for d in docs:
        for name in filter(None, (d.metadata.get("contaminated_by") or "").split(",")):
            out[name] = out.get(name, 0) + 1
    return out
