"""Common Crawl WARC and WET readers, resilient to corrupt and cut files.

Why our own parser rather than datatrove's ``WarcReader`` (warcio) or FastWARC:

* Common Crawl writes every WARC record as its own gzip member. warcio reads the file as one
  stream; on the shared CC-MAIN-2020-34 sample (warcio 1.8.1) three bytes flipped in the 6th response
  made it print zlib errors and then stop silently after 6 of 16 responses; a file cut inside the 6th
  response gave that record as if complete; a Content-Length 300 bytes too long went unnoticed.
  None of these raised, so none could be counted. We decompress member by member
  (:mod:`corpusmill.curation.readers.gzip_members`): after a corrupt member we count ONE error record,
  resynchronise at the next member that begins a WARC record, and lose no other record.
* A record must end inside the gzip member it started in when the next member begins a new record, so
  a wrong ``Content-Length`` cannot swallow the following records (in an uncompressed ``.warc`` we
  look for the next ``WARC/1.`` header inside the over-long block instead).
* We control charset decoding and HTML filtering (:mod:`corpusmill.curation.readers.http_payload`; a non-HTML
  payload is counted as ``non_html_payload``, not silently skipped) and oversize records (skipped
  without being read into memory).

Accepted inputs: per-record gzip (``.warc.gz``, the CC layout), a whole-file gzip, an uncompressed
``.warc`` (detected by content, not by name), ``.warc.bz2`` / ``.warc.zst`` (read as one stream: a
corrupt byte there ends the shard with one error record).

Error records (``drop_reason``): ``corrupt_gzip``, ``truncated_gzip`` (and the bz2/zstd variants),
``truncated_record`` (data ends before ``Content-Length`` bytes), ``bad_content_length`` (the block
does not end where its ``Content-Length`` says), ``bad_warc_header`` (unparsable headers, a damaged
``WARC/`` line, a missing or unknown ``WARC-Type``), ``undecodable`` (an HTTP
``Content-Encoding`` such as ``br`` left in place). Dropped, not errors: ``non_html_payload``,
``oversize`` (over ``max_record_bytes``, skipped unread). A corruption whose record type
is known to be skipped (request, metadata, ...) is logged but not an error; one whose type cannot be
read is an error, since it may have been a response. Records of other types (warcinfo, request,
metadata, revisit, resource, ...) are not candidates: they are counted by type in ``Reader.skipped``
(the manifest's ``skipped`` map), so that read + skipped is the archive's record count.
"""

from __future__ import annotations

import logging
import re
from collections import Counter
from dataclasses import dataclass
from typing import BinaryIO, Iterator

from corpusmill.curation.readers.base import Reader, Record, register
from corpusmill.curation.readers.compression import READ_SIZE, CorruptInput, compression_of, open_binary
from corpusmill.curation.readers.gzip_members import GZIP_MAGIC, _GzipMembers, _MemberStart, _plain_chunks, _Stream
from corpusmill.curation.readers.http_payload import HTML_TYPES, HttpResponse, decode_html, is_html, normalize_charset, parse_http  # noqa: F401  (re-exported)

log = logging.getLogger("corpusmill")

MAX_HEADER_BYTES = 1 << 16  # a WARC header block longer than this is corrupt
_NEXT_RECORD = re.compile(rb"WARC/1\.[01]\r?\n")  # the next record's start inside a block that runs too long
SKIP_READ_BYTES = 1 << 20  # records of unwanted types up to this size are read (and checked), larger ones skipped
# WARC 1.1 record types; any other WARC-Type value is a damaged header
WARC_TYPES = frozenset({"warcinfo", "response", "resource", "request", "metadata", "revisit", "conversion", "continuation"})


# ---------------------------------------------------------------------------------------------------
# WARC records (read from a gzip_members._Stream)
# ---------------------------------------------------------------------------------------------------


@dataclass
class WarcRecord:
    headers: dict[str, str]  # lower-cased names
    block: bytes | None  # None when the record was skipped (oversize)
    length: int

    @property
    def type(self) -> str:
        return self.headers.get("warc-type", "")


@dataclass
class WarcError:
    headers: dict[str, str] | None
    kind: str
    message: str


def _open_items(raw: BinaryIO, path: str) -> Iterator[bytes | _MemberStart | CorruptInput]:
    """Pick the decompression by content (gzip magic / ``WARC/``) first, then by file name."""
    head = raw.read(READ_SIZE)
    if head.startswith(GZIP_MAGIC):
        return iter(_GzipMembers(raw, head))
    comp = compression_of(path)
    if comp in ("bz2", "zstd") and not head.lstrip().startswith(b"WARC/"):
        stream = open_binary(_Prefixed(head, raw), path, comp)
        return _plain_chunks(stream)
    if comp == "gzip" and not head.lstrip().startswith(b"WARC/"):
        return iter(_GzipMembers(raw, head))  # damaged first member: resync finds the next
    return _plain_chunks(_Prefixed(head, raw))


class _Prefixed:
    """A byte stream with some already-read bytes put back in front."""

    def __init__(self, head: bytes, raw: BinaryIO) -> None:
        self._head = head
        self._raw = raw

    def read(self, n: int = -1) -> bytes:
        if self._head:
            if n < 0:
                out, self._head = self._head + self._raw.read(), b""
                return out
            out, self._head = self._head[:n], self._head[n:]
            return out
        return self._raw.read(n)


def _parse_headers(lines: list[bytes]) -> dict[str, str]:
    headers: dict[str, str] = {}
    last = None
    for raw_line in lines:
        line = raw_line.decode("utf-8", errors="replace").rstrip("\r\n")
        if line[:1] in (" ", "\t") and last is not None:
            headers[last] += " " + line.strip()
            continue
        name, sep, value = line.partition(":")
        if not sep:
            raise ValueError(f"not a header line: {line[:80]!r}")
        last = name.strip().lower()
        headers[last] = value.strip()
    return headers


def _headers_from(head: bytes) -> dict[str, str] | None:
    """The WARC headers readable at the start of a damaged record, if any."""
    if not head.startswith(b"WARC/"):
        return None
    lines = head.split(b"\n")[1:-1]  # the last piece may be cut
    out: dict[str, str] = {}
    for line in lines:
        if not line.strip():
            break
        try:
            out.update(_parse_headers([line]))
        except ValueError:
            break
    return out or None


def iter_warc(
    raw: BinaryIO, path: str, wanted: frozenset[str], max_record_bytes: int, skipped: Counter | None = None
) -> Iterator[WarcRecord | WarcError]:
    """Records of type ``wanted`` (blocks over ``max_record_bytes`` skipped unread) and errors.

    Never raises on bad data. Records of other types are counted in ``skipped`` by type (damaged ones
    too: their errors are only logged).
    """
    if skipped is None:
        skipped = Counter()
    items = _open_items(raw, path)
    s = _Stream(items)
    absorb_until = -1  # while s.members == this, corruption belongs to an error already counted
    rec_member = 0  # s.members when the current record's header was found
    absorbing = False  # the bytes up to the next "WARC/" line belong to an error already counted

    def error(headers, kind, message) -> WarcError | None:
        nonlocal absorb_until, absorbing
        absorb_until = rec_member
        absorbing = True
        rtype = headers.get("warc-type") if headers else None
        if rtype is not None and rtype.lower() in WARC_TYPES and rtype not in wanted:
            skipped[rtype.lower()] += 1
            log.info("%s: skipped %s record damaged (%s): %s", path, headers.get("warc-type"), kind, message)
            return None
        return WarcError(headers, kind, message)

    while True:
        headers: dict[str, str] | None = None
        rec_member = s.members
        try:
            # -- find the next "WARC/x.y" line, crossing member boundaries. Other non-blank lines
            # here are a record whose "WARC/" line is damaged (or the rest of one already counted)
            junk: list[bytes] = []
            while True:
                rec_member = s.members
                line = s.readline()
                if line.startswith(b"WARC/") and len(line) < 32:
                    break
                k = line.find(b"WARC/1.", 1)  # damage glued to the next record's first line ("xWARC/1.0")
                if k > 0 and line[k:].rstrip() in (b"WARC/1.0", b"WARC/1.1"):
                    if not absorbing and (junk or line[:k].strip()) and len(junk) < 200:
                        junk.append(line[:k])
                    line = line[k:]
                    break
                if not absorbing and (junk or line.strip()) and len(junk) < 200:
                    junk.append(line)
                if not line:
                    if s.unblock():
                        continue
                    if s.eof:
                        break
            if junk:
                junk_headers = _damaged_headers(junk)
                err = error(junk_headers, "bad_warc_header", "a record without its 'WARC/1.x' line (damaged header?)")
                if err is not None:
                    yield err
            if not line:
                return
            absorbing = False
            # -- header block
            lines: list[bytes] = []
            size = 0
            while True:
                hl = s.readline()
                size += len(hl)
                k = hl.find(b"WARC/1.")
                if k >= 0 and hl[k:].rstrip() in (b"WARC/1.0", b"WARC/1.1"):  # the next record begins: this one was cut
                    s.unread(hl[k:])
                    try:
                        headers = _parse_headers(lines + ([hl[:k]] if hl[:k].strip() else [])) or None
                    except ValueError:
                        headers = None
                    raise _BadRecord("truncated_record", "WARC header block cut short by the next record")
                if hl in (b"\r\n", b"\n"):
                    break
                if not hl or size > MAX_HEADER_BYTES:
                    raise _BadRecord("truncated_record" if not hl else "bad_warc_header", "WARC header block not terminated")
                lines.append(hl)
            try:
                headers = _parse_headers(lines)
                length = int(headers["content-length"])
                if length < 0:
                    raise ValueError("negative Content-Length")
            except (ValueError, KeyError) as e:
                headers = headers if headers else None
                raise _BadRecord("bad_warc_header", f"bad WARC header: {e!r}") from None
            rtype = headers.get("warc-type", "")
            if rtype.lower() not in WARC_TYPES:  # damaged or missing: it may have been a response
                s.skip(length)
                raise _BadRecord("bad_warc_header", f"missing or unknown WARC-Type {rtype!r}")
            # -- block
            # small records of other types are read too, so that a Content-Length that runs into the next
            # record is noticed (and that record given back) as for the wanted ones
            if length > max_record_bytes or (rtype not in wanted and length > SKIP_READ_BYTES):
                got = s.skip(length)
                block = None
            else:
                block = s.read(length)
                got = len(block)
            if got < length:
                if s.blocked:
                    raise _BadRecord("bad_content_length", f"gzip member ends {length - got} bytes before Content-Length {length}")
                if block is not None and (m := _NEXT_RECORD.search(block)) is not None:
                    s.unread(block[m.start() :])  # a record cut short, then the next ones: give them back
                    raise _BadRecord("bad_content_length", f"Content-Length {length} runs into the next record")
                raise _BadRecord("truncated_record", f"file ends {length - got} bytes before Content-Length {length}")
            # -- the "\r\n\r\n" that ends a record
            trailer = s.read(4)
            if trailer != b"\r\n\r\n" and trailer.strip() != b"":
                extra = s.readline()
                rest = trailer.lstrip(b"\r\n") + extra
                if _NEXT_RECORD.match(rest):
                    s.unread(rest)  # short or missing trailer, the next record follows directly
                else:
                    # Content-Length too long? the next record may start in the block or straddle its end
                    look = (block or b"") + trailer + extra
                    if block is not None and (m := _NEXT_RECORD.search(look)) is not None:
                        s.unread(look[m.start() :])  # give back the next records
                        raise _BadRecord("bad_content_length", f"Content-Length {length} runs into the next record")
                    s.unread(extra)
                    raise _BadRecord("bad_content_length", f"record does not end after Content-Length {length} bytes")
        except _BadRecord as e:
            err = error(headers, e.kind, e.message)
            if err is not None:
                yield err
            continue
        except CorruptInput as e:
            if s.members == absorb_until and headers is None:
                continue  # same damaged member as the error just counted
            if headers is None:
                headers = _headers_from(e.head)
            err = error(headers, e.kind, e.message)
            if err is not None:
                yield err
            continue
        if rtype in wanted:
            yield WarcRecord(headers, block, length)
        else:
            skipped[rtype.lower()] += 1


def _damaged_headers(lines: list[bytes]) -> dict[str, str] | None:
    """The ``WARC-*`` headers readable in the first lines of a record whose ``WARC/`` line is damaged."""
    out: dict[str, str] = {}
    for line in lines:
        if not line.strip():
            if out:
                break
            continue
        try:
            parsed = _parse_headers([line])
        except ValueError:
            continue
        for k, v in parsed.items():
            if k.startswith("warc-"):
                out.setdefault(k, v)
    return out or None


class _BadRecord(Exception):
    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind
        self.message = message

# ---------------------------------------------------------------------------------------------------
# Readers
# ---------------------------------------------------------------------------------------------------


def _provenance(headers: dict[str, str]) -> dict[str, str | None]:
    return {
        "url": headers.get("warc-target-uri") or None,
        "warc_record_id": headers.get("warc-record-id") or None,
        "warc_date": headers.get("warc-date") or None,
    }


@register
class WarcReader(Reader):
    """HTML pages of Common Crawl ``response`` records, decoded to text, to be extracted later.

    Options: ``max_record_bytes`` (default 50 MB; larger records are skipped unread, drop reason
    ``oversize``), ``source_kind``.
    """

    name = "warc"
    source_kind = "web"
    default_globs = ("*.warc.gz", "*.warc")
    record_types = frozenset({"response"})

    def __init__(self, *, max_record_bytes: int = 50 << 20, source_kind: str | None = None, **rest) -> None:
        super().__init__(**rest)
        if not isinstance(max_record_bytes, int) or max_record_bytes <= 0:
            raise TypeError(f"max_record_bytes must be a positive int, got {max_record_bytes!r}")
        self.max_record_bytes = max_record_bytes
        if source_kind:
            self.source_kind = source_kind

    def records(self, raw: BinaryIO, path: str) -> Iterator[Record]:
        self.skipped = Counter()
        for position, item in enumerate(iter_warc(raw, path, self.record_types, self.max_record_bytes, self.skipped)):
            if isinstance(item, WarcError):
                md = _provenance(item.headers) if item.headers else {}
                yield Record(position, metadata=md, drop_reason=item.kind, error=item.message)
            elif item.block is None:
                md = _provenance(item.headers)
                md["record_bytes"] = item.length
                yield Record(position, metadata=md, drop_reason="oversize")
            else:
                try:
                    yield self._record(position, item)
                except Exception as e:  # one odd payload must not end the shard
                    log.warning("%s: record %d: %r", path, position, e, exc_info=True)
                    yield Record(position, metadata=_provenance(item.headers), drop_reason="bad_record", error=repr(e)[:2000])

    def _record(self, position: int, rec: WarcRecord) -> Record:
        md = _provenance(rec.headers)
        resp = parse_http(rec.block or b"")
        md["http_status"] = resp.status
        md["content_type"] = resp.mime or rec.headers.get("warc-identified-payload-type") or None
        if rec.headers.get("warc-truncated"):
            md["warc_truncated"] = rec.headers["warc-truncated"]
        if not is_html(resp, rec.headers.get("warc-identified-payload-type")):
            return Record(position, metadata=md, drop_reason="non_html_payload")
        if resp.undecodable:
            return Record(position, metadata=md, drop_reason="undecodable", error=resp.undecodable)
        text, charset = decode_html(resp.body, resp.charset)
        md["charset"] = charset
        md["needs_extraction"] = True
        return Record(position, text=text, metadata=md)


@register
class WetReader(WarcReader):
    """Plain text of Common Crawl WET ``conversion`` records, as is (UTF-8)."""

    name = "wet"
    default_globs = ("*.warc.wet.gz", "*.wet.gz", "*.warc.wet")
    record_types = frozenset({"conversion"})

    def _record(self, position: int, rec: WarcRecord) -> Record:
        md = _provenance(rec.headers)
        md["cc_language"] = rec.headers.get("warc-identified-content-language") or None
        return Record(position, text=(rec.block or b"").decode("utf-8", errors="replace"), metadata=md)


__all__ = ["WarcReader", "WetReader", "iter_warc", "WarcRecord", "WarcError", "decode_html", "parse_http", "is_html"]