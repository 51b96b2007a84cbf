"""Shared pieces of the fuzz suite: real shared files cut into units (a WARC gzip member, a JSONL line,
a Wikipedia <page>), byte mutations, and the checks every reader run must pass.

Budget: ``CORPUSMILL_FUZZ_EXAMPLES`` (default 25 per reader test; e.g. 500 locally) and
``CORPUSMILL_FUZZ_RUN_EXAMPLES`` (end-to-end runs, default 3). By default hypothesis is derandomised
(CI sees the same cases every time); ``CORPUSMILL_FUZZ_RANDOM=1`` draws new ones.
"""

from __future__ import annotations

import bz2
import gzip
import io
import os
import zlib
from collections import Counter
from pathlib import Path

import pyarrow as pa
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

from corpusmill.curation.document import DROPPED, ERRORED, EVENT, REASON, SHARD_END, STATUS
from corpusmill.curation.readers import get_reader
from corpusmill.curation.rows import curated_row, dropped_row
from corpusmill.curation.sanitize import sanitize
from corpusmill.schemas import CURATED_SCHEMA, DROPPED_SCHEMA

EXAMPLES = int(os.environ.get("CORPUSMILL_FUZZ_EXAMPLES", "25"))
RUN_EXAMPLES = max(1, int(os.environ.get("CORPUSMILL_FUZZ_RUN_EXAMPLES", str(max(3, EXAMPLES // 8)))))
RANDOM = os.environ.get("CORPUSMILL_FUZZ_RANDOM", "") not in ("", "0")


def fuzz_settings(n: int = EXAMPLES):
    return settings(
        max_examples=n,
        deadline=None,
        derandomize=not RANDOM,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.function_scoped_fixture],
    )


# -------------------------------------------------------------------------------------- mutations

INTERESTING = [
    b"\x00", b"\r\n", b"\n", b"\n\n", b"\r\n\r\n", b"\xff\xfe", b"\xfe\xff", b"\xef\xbb\xbf", b"\xed\xa0\x80",
    b"\xc3", b"\x80", b"\\ud800", b'"', b"NaN", b"-Infinity", b"[[", b"]]", b"{{", b"}}", b"{|", b"|}",
    b"<ref>", b"</ref>", b"<page>", b"</page>", b"<!--", b"<span>", b"&amp;", b"&#xD800;", b"]]>",
    b"WARC/1.0\r\n", b"Content-Length: 99999999\r\n", b"Transfer-Encoding: chunked\r\n", b"WARC-Type: revisit\r\n",
    b"0\r\n\r\n", b"*** END OF THE PROJECT GUTENBERG EBOOK", b"\x1f\x8b\x08\x00", b"BZh91AY&SY",
]

mutation = st.one_of(
    st.tuples(st.just("flip"), st.integers(0, 1 << 30), st.integers(1, 255)),
    st.tuples(st.just("insert"), st.integers(0, 1 << 30), st.binary(min_size=1, max_size=48) | st.sampled_from(INTERESTING)),
    st.tuples(st.just("delete"), st.integers(0, 1 << 30), st.integers(1, 300)),
    st.tuples(st.just("truncate"), st.integers(0, 1 << 30), st.just(0)),
    st.tuples(st.just("repeat"), st.integers(0, 1 << 30), st.integers(1, 300)),
)
mutations = st.lists(mutation, min_size=1, max_size=3)


def mutate(data: bytes, ops) -> bytes:
    for op, at, arg in ops:
        i = at % (len(data) + 1)
        if op == "flip" and data:
            i %= len(data)
            data = data[:i] + bytes([data[i] ^ arg]) + data[i + 1 :]
        elif op == "insert":
            data = data[:i] + arg + data[i:]
        elif op == "delete":
            data = data[:i] + data[i + arg :]
        elif op == "truncate":
            data = data[:i]
        elif op == "repeat":
            data = data[:i] + data[i : i + arg] + data[i:]
    return data


# -------------------------------------------------------------------------------------- units of real files


def gzip_members(data: bytes) -> list[bytes]:
    """The decompressed members of a multi-member gzip file."""
    out, i = [], 0
    while i < len(data):
        d = zlib.decompressobj(31)
        out.append(d.decompress(data[i:]))
        i = len(data) - len(d.unused_data)
    return out


def page_units(xml: str) -> tuple[str, list[str], str]:
    """A dump split into (head, [<page>...</page> with the text before it], tail)."""
    first = xml.index("<page>")
    head, rest = xml[:first], xml[first:]
    pages = []
    while True:
        end = rest.find("</page>")
        if end < 0:
            break
        pages.append(rest[: end + 7])
        rest = rest[end + 7 :]
    return head, pages, rest


def decompress_any(path: Path) -> bytes:
    raw = path.read_bytes()
    if path.suffix == ".bz2":
        return bz2.decompress(raw)
    if path.suffix == ".gz":
        return gzip.decompress(raw)
    return raw


# -------------------------------------------------------------------------------------- checks


def writable(doc) -> None:
    """The record survives the sink's path: sanitising, the row, and Arrow conversion with the schema."""
    sanitize(doc)
    if doc.metadata.get(STATUS) is None:
        pa.Table.from_pylist([curated_row(doc)], schema=CURATED_SCHEMA)
    else:
        pa.Table.from_pylist([dropped_row(doc, 2000)], schema=DROPPED_SCHEMA)


def read_checked(reader: str, data: bytes, name: str, **options) -> list:
    """All documents of one shard, checking what every shard must satisfy: no exception, a shard-end
    event whose count equals the records given, increasing positions, unique ids, every rejected
    record with a reason, every record writable."""
    docs = list(get_reader(reader, **options).documents(io.BytesIO(data), name, name))
    assert docs and docs[-1].metadata.get(EVENT) == SHARD_END
    records = docs[:-1]
    assert docs[-1].metadata["read"] == len(records)
    positions = [d.metadata["position"] for d in records]
    assert positions == sorted(set(positions)), positions
    assert len({d.id for d in records}) == len(records)
    for d in records:
        assert d.metadata.get(EVENT) is None
        status = d.metadata.get(STATUS)
        assert status in (None, DROPPED, ERRORED)
        if status is not None:
            assert d.metadata.get(REASON), d.metadata
        writable(d)
    return records


def key(doc) -> tuple:
    md = doc.metadata
    return (md.get(STATUS), md.get(REASON), md.get("url"), md.get("title"), doc.text)


def assert_nothing_lost_or_duplicated(clean: list, fuzzed: list, damaged: Counter) -> None:
    """Every record of the clean file outside the damaged unit comes out exactly as often as in the clean
    file; a clean record comes out more often only by as many records as the damaged unit gave."""
    want = Counter(key(d) for d in clean)
    got = Counter(key(d) for d in fuzzed)
    from_damaged = max(0, len(fuzzed) - (len(clean) - sum(damaged.values())))
    for k, n in want.items():
        outside = n - damaged.get(k, 0)
        assert outside <= got.get(k, 0) <= outside + from_damaged, (
            k[:4], (k[4] or "")[:80], n, got.get(k, 0), damaged.get(k, 0))
