"""JSON Lines documents (``.jsonl`` / ``.json`` / ``.ndjson``, plain or ``.gz`` / ``.bz2`` / ``.zst``).

One non-blank line is one candidate record. The text comes from ``text_field`` (default ``text``);
``id_field`` (default ``id``) is kept as metadata ``original_id``, ``url_field`` (default ``url``)
as ``url`` and ``title_field`` (default ``title``) as ``title``. Field names may be dotted paths into nested objects (``metadata.url`` for dolma files).
Every other top-level field is kept in metadata under its own name, unless the name is one of
corpusmill's reserved keys (:data:`corpusmill.curation.document.RESERVED_KEYS`, and ``cm_*``), which are
left out. Values Parquet or JSON cannot hold (lone surrogates, a non-string url or title, NaN) are
repaired and counted by :mod:`corpusmill.curation.sanitize`.

Errors (one record each, reading goes on with the next line): ``bad_json_line`` (not JSON, or not a
JSON object), ``undecodable`` (not UTF-8/16/32), ``missing_text_field``, ``bad_text_field`` (not a
string), ``oversize`` (a line over ``max_line_bytes``, skipped without being held in memory). A
corrupt or cut compressed file gives one ``corrupt_*`` / ``truncated_*`` record and ends the shard.
(In a one-member gzip the damage may only show at the final CRC: lines decoded from damaged data
before that come out as ``bad_json_line`` / ``undecodable`` errors, then the ``corrupt_gzip`` one.)

Not supported: a ``.json`` file holding one JSON array (each of its lines would be a
``bad_json_line``); convert it to JSON Lines first.
"""

from __future__ import annotations

import json
from typing import Any, BinaryIO, Iterator

from corpusmill.curation.document import RESERVED_KEYS
from corpusmill.curation.readers.base import Reader, Record, register
from corpusmill.curation.readers.compression import CorruptInput, open_binary

_OWN_KEYS = frozenset({"original_id", "source_kind", "source_file", "position"})


def get_path(obj: dict, path: str) -> tuple[bool, Any]:
    """``(found, value)`` for a key, or a dotted path into nested objects."""
    if path in obj:
        return True, obj[path]
    cur: Any = obj
    for part in path.split("."):
        if not isinstance(cur, dict) or part not in cur:
            return False, None
        cur = cur[part]
    return True, cur


@register
class JsonlReader(Reader):
    """Options: ``text_field``, ``id_field``, ``url_field``, ``title_field``, ``max_line_bytes`` (default 64 MB),
    ``source_kind`` (default ``jsonl``)."""

    name = "jsonl"
    source_kind = "jsonl"
    default_globs = ("*.jsonl", "*.jsonl.gz", "*.jsonl.zst", "*.jsonl.bz2", "*.json", "*.json.gz", "*.json.zst", "*.ndjson")

    def __init__(
        self,
        *,
        text_field: str = "text",
        id_field: str | None = "id",
        url_field: str | None = "url",
        title_field: str | None = "title",
        max_line_bytes: int = 64 << 20,
        source_kind: str | None = None,
        **rest,
    ) -> None:
        super().__init__(**rest)
        self.text_field = text_field
        self.id_field = id_field
        self.url_field = url_field
        self.title_field = title_field
        self.max_line_bytes = int(max_line_bytes)
        if source_kind:
            self.source_kind = source_kind
        # top-level names consumed by the options above: not copied again
        self._consumed = {f for f in (text_field, id_field, url_field, title_field) if f}
        self._consumed |= {f.split(".", 1)[0] for f in (text_field,) if "." in f}

    def records(self, raw: BinaryIO, path: str) -> Iterator[Record]:
        stream = open_binary(raw, path)
        position = 0
        try:
            while True:
                line = stream.readline(self.max_line_bytes + 1)
                if not line:
                    return
                if len(line) > self.max_line_bytes and not line.endswith(b"\n"):
                    size = len(line)
                    while line and not line.endswith(b"\n"):  # skip the rest of the line
                        line = stream.readline(1 << 20)
                        size += len(line)
                    yield Record(position, metadata={"line_bytes": size}, drop_reason="oversize")
                    position += 1
                    continue
                if not line.strip():
                    continue
                yield self._record(position, line)
                position += 1
        except CorruptInput as e:
            yield Record(position, drop_reason=e.kind, error=e.message)

    def _record(self, position: int, line: bytes) -> Record:
        try:
            obj = json.loads(line)
        except UnicodeDecodeError as e:
            return Record(position, drop_reason="undecodable", error=f"line is not valid UTF-8/16/32: {e}")
        except ValueError as e:
            return Record(position, drop_reason="bad_json_line", error=f"invalid JSON: {e}")
        except RecursionError:  # thousands of nested arrays/objects: this line only, not the rest of the shard
            return Record(position, drop_reason="bad_json_line", error="invalid JSON: nested too deeply")
        if not isinstance(obj, dict):
            return Record(position, drop_reason="bad_json_line", error=f"a JSON {type(obj).__name__}, not an object")
        md: dict[str, Any] = {
            k: v
            for k, v in obj.items()
            if k not in self._consumed and k not in RESERVED_KEYS and k not in _OWN_KEYS and not k.startswith("cm_")
        }
        if self.id_field:
            found, value = get_path(obj, self.id_field)
            if found and value is not None:
                md["original_id"] = value
        for field, key in ((self.url_field, "url"), (self.title_field, "title")):
            if field:
                found, value = get_path(obj, field)
                if found and value is not None:
                    md[key] = value
        found, text = get_path(obj, self.text_field)
        if not found or text is None:
            return Record(position, metadata=md, drop_reason="missing_text_field", error=f"no {self.text_field!r} field")
        if not isinstance(text, str):
            return Record(position, metadata=md, drop_reason="bad_text_field", error=f"{self.text_field!r} is a {type(text).__name__}")
        return Record(position, text=text, metadata=md)


__all__ = ["JsonlReader", "get_path"]
