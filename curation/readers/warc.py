"""Common Crawl WARC and WET readers, resilient to corrupt and cut files.

Why our own parser rather than datatrove's ``WarcReader`` (warcio) or FastWARC:

* Common Crawl writes every WARC record as its own gzip member. warcio reads the file as one
  stream; on the shared CC-MAIN-2020-34 sample (warcio 1.8.1) three bytes flipped in the 6th response
  made it print zlib errors and then stop silently after 6 of 16 responses; a file cut inside the 6th
  response gave that record as if complete; a Content-Length 300 bytes too long went unnoticed.
  None of these raised, so none could be counted. We decompress member by member
  with ``zlib`` (``wbits=31``, continuing on ``unused_data``): after a corrupt member we count ONE
  error record, resynchronise at the next gzip magic (``1f 8b 08``) whose member decodes to a
  ``WARC/1.`` header, and lose no other record.
* A record's last bytes are released only once its member's CRC is verified, so a damaged member never
  yields a garbage document *and* an error: it yields exactly one error record.
* A record must end inside the gzip member it started in when the next member begins a new record, so
  a wrong ``Content-Length`` cannot swallow the following records (in an uncompressed ``.warc`` we
  look for the next ``WARC/1.`` header inside the over-long block instead).
* We control charset decoding (datatrove's tries UTF-8, then cchardet's guess, ignores the declared
  charset and silently skips a page that fails; the shared CC-MAIN-2020-34 sample has GBK pages
  declared ``gb2312``/``gbk`` in a ``<meta>`` that must decode to Chinese), HTML filtering (counted as
  ``non_html_payload``, not silently skipped) and oversize records (skipped without being read into
  memory).

Accepted inputs: per-record gzip (``.warc.gz``, the CC layout), a whole-file gzip, an uncompressed
``.warc`` (detected by content, not by name), ``.warc.bz2`` / ``.warc.zst`` (read as one stream: a
corrupt byte there ends the shard with one error record).

Error records (``drop_reason``): ``corrupt_gzip``, ``truncated_gzip`` (and the bz2/zstd variants),
``truncated_record`` (data ends before ``Content-Length`` bytes), ``bad_content_length`` (the block
does not end where its ``Content-Length`` says), ``bad_warc_header`` (unparsable headers, a damaged
``WARC/`` line, a missing or unknown ``WARC-Type``), ``undecodable`` (an HTTP
``Content-Encoding`` such as ``br`` left in place). Dropped, not errors: ``non_html_payload``,
``oversize`` (over ``max_record_bytes``, skipped unread). A corruption whose record type
is known to be skipped (request, metadata, ...) is logged but not counted; one whose type cannot be
read is counted, since it may have been a response.
"""

from __future__ import annotations

import codecs
import logging
import re
import zlib
from dataclasses import dataclass
from typing import BinaryIO, Iterator

from curation.readers.base import Reader, Record, register
from curation.readers.compression import READ_SIZE, CorruptInput, compression_of, open_binary

log = logging.getLogger("corpusmill")

GZIP_MAGIC = b"\x1f\x8b\x08"
MAX_HEADER_BYTES = 1 << 16  # a WARC header block longer than this is corrupt
# WARC 1.1 record types; any other WARC-Type value is a damaged header
WARC_TYPES = frozenset({"warcinfo", "response", "resource", "request", "metadata", "revisit", "conversion", "continuation"})
_OUT_CHUNK = 1 << 20  # decompressed bytes per zlib call (bounds memory on gzip bombs)
_HOLD = 8  # last bytes of a member held back until its CRC is checked
_RETAIN = 8 << 20  # compressed bytes of the current member kept to resync from its start


# ---------------------------------------------------------------------------------------------------
# Layer 1: decompressed byte chunks, with gzip member boundaries and corruption reported in-band
# ---------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _MemberStart:
    """A new gzip member begins; ``warc`` if its data starts with a ``WARC/`` header line."""

    warc: bool


class _GzipMembers:
    """Iterate a multi-member gzip stream as ``bytes`` / :class:`_MemberStart` / :class:`CorruptInput`.

    Corruption is yielded, not raised, so iteration can go on after resynchronising.
    """

    def __init__(self, raw: BinaryIO, head: bytes) -> None:
        self._raw = raw
        self._buf = bytearray(head)  # compressed bytes; _buf[0] is at file offset self._offset
        self._offset = 0
        self._raw_eof = False

    def _more(self) -> bool:
        if self._raw_eof:
            return False
        data = self._raw.read(READ_SIZE)
        if not data:
            self._raw_eof = True
            return False
        self._buf += data
        return True

    def __iter__(self) -> Iterator[bytes | _MemberStart | CorruptInput]:
        index = 0
        while True:
            while len(self._buf) < len(GZIP_MAGIC) and self._more():
                pass
            if not self._buf:
                return
            if not self._buf.startswith(GZIP_MAGIC):
                at = self._offset
                if not self._buf.strip(b"\x00") and not self._more():
                    return  # zero padding at the end of the file
                junk = bytes(self._buf[: 1 << 14])
                found = self._resync(0)
                # a member whose gzip header is damaged still inflates: then a record was lost
                head = _salvage(junk[10:], -15)
                msg = f"{self._offset - at} non-gzip bytes at offset {at} (skipped to the next member)"
                if at == 0 or head.startswith(b"WARC/"):
                    yield CorruptInput("corrupt_gzip", msg, head)
                else:
                    log.warning("%s", msg)
                if not found:
                    return
            ok = yield from self._member(index)
            index += 1
            if not ok:
                return

    def _member(self, index: int) -> Iterator[bytes | _MemberStart | CorruptInput]:
        """Decompress the member at the start of ``_buf``; returns False when nothing more can follow."""
        d = zlib.decompressobj(31)
        fed = 0  # bytes of _buf given to d
        member_at = 0  # index of the member's first byte in _buf (None once trimmed)
        pending = b""  # output not yet released
        started = False
        tail = b""
        try:
            while not d.eof:
                if tail:
                    inp = tail
                else:
                    if fed >= len(self._buf) and not self._more():
                        raise CorruptInput("truncated_gzip", f"file ends inside the gzip member at offset {self._offset + (member_at or 0)}")
                    inp = bytes(self._buf[fed : fed + READ_SIZE])
                    fed += len(inp)
                out = d.decompress(inp, _OUT_CHUNK)
                tail = d.unconsumed_tail if not d.eof else b""
                if out:
                    pending += out
                if not started and (len(pending) >= _HOLD or d.eof):
                    started = True
                    if index:
                        yield _MemberStart(pending.startswith(b"WARC/"))
                if started and len(pending) > _HOLD and not d.eof:
                    yield pending[:-_HOLD]
                    pending = pending[-_HOLD:]
                if fed > _RETAIN and not tail:
                    del self._buf[:fed]
                    self._offset += fed
                    fed = 0
                    member_at = None
        except (zlib.error, CorruptInput) as e:
            where = self._offset + (member_at or 0)
            head = b""
            if member_at is not None:
                damaged = bytes(self._buf[member_at : member_at + (1 << 14)])
                head = _salvage(damaged, 31)
                if not head.startswith(b"WARC/"):  # a damaged gzip header: the deflate data may be fine
                    head = _salvage(damaged[10:], -15)
            if not started and index:  # announce the member, so its error is not taken for the last one's
                yield _MemberStart(head.startswith(b"WARC/"))
            if isinstance(e, CorruptInput):
                e.head = head
                yield e
            else:
                yield CorruptInput("corrupt_gzip", f"bad gzip member at offset {where}: {e}", head)
            return self._resync(member_at + 1 if member_at is not None else fed)
        if not started and index:
            yield _MemberStart(pending.startswith(b"WARC/"))
        if pending:
            yield pending
        end = fed - len(d.unused_data)
        del self._buf[:end]
        self._offset += end
        return True

    def _resync(self, start: int) -> bool:
        """Drop ``_buf`` up to the next gzip member (at or after ``start``) that decodes to ``WARC/``."""
        while True:
            i = self._buf.find(GZIP_MAGIC, start)
            if i < 0:
                keep = max(start, len(self._buf) - len(GZIP_MAGIC) + 1)
                del self._buf[:keep]
                self._offset += keep
                start = 0
                if not self._more():
                    self._buf.clear()
                    return False
                continue
            while len(self._buf) - i < READ_SIZE and self._more():
                pass
            try:
                probe = zlib.decompressobj(31).decompress(bytes(self._buf[i : i + READ_SIZE]), 64)
            except zlib.error:
                probe = b""
            if probe.startswith(b"WARC/"):
                del self._buf[:i]
                self._offset += i
                return True
            start = i + 1


def _salvage(data: bytes, wbits: int) -> bytes:
    """The output a damaged deflate stream gives before failing (fed in small pieces)."""
    d = zlib.decompressobj(wbits)
    out = []
    for i in range(0, len(data), 64):
        try:
            out.append(d.decompress(data[i : i + 64]))
        except zlib.error:
            break
        if d.eof:
            break
    return b"".join(out)


def _plain_chunks(stream: BinaryIO) -> Iterator[bytes | CorruptInput]:
    """Chunks of an uncompressed (or single-stream decompressed) file; corruption ends it."""
    try:
        while True:
            data = stream.read(READ_SIZE)
            if not data:
                return
            yield data
    except CorruptInput as e:
        yield e


# ---------------------------------------------------------------------------------------------------
# Layer 2: a pull buffer that stops at member boundaries that begin a new record
# ---------------------------------------------------------------------------------------------------


class _Stream:
    def __init__(self, items: Iterator[bytes | _MemberStart | CorruptInput]) -> None:
        self._items = iter(items)
        self._buf = b""
        self._pos = 0
        self.blocked = False  # a member that starts a new record is next: reads stop here
        self.eof = False
        self.members = 0  # member starts seen so far

    def _pull(self) -> bool:
        """Append the next chunk to the buffer. False at a record boundary or at the end."""
        if self.blocked or self.eof:
            return False
        item = next(self._items, None)
        if item is None:
            self.eof = True
            return False
        if isinstance(item, _MemberStart):
            self.members += 1
            if item.warc:
                self.blocked = True
                return False
            return True
        if isinstance(item, CorruptInput):
            self._buf, self._pos = b"", 0  # what was buffered belongs to the damaged record
            raise item
        self._buf = self._buf[self._pos :] + item if self._pos < len(self._buf) else item
        self._pos = 0
        return True

    def unblock(self) -> bool:
        if self.blocked:
            self.blocked = False
            return True
        return False

    def unread(self, data: bytes) -> None:
        self._buf = data + self._buf[self._pos :]
        self._pos = 0

    def readline(self, limit: int = MAX_HEADER_BYTES) -> bytes:
        """One line (with its ``\\n``), or what is left before a boundary / the end (may be b"")."""
        while True:
            i = self._buf.find(b"\n", self._pos, self._pos + limit)
            if i >= 0:
                line = self._buf[self._pos : i + 1]
                self._pos = i + 1
                return line
            if len(self._buf) - self._pos >= limit or not self._pull():
                n = min(limit, len(self._buf) - self._pos)
                line = self._buf[self._pos : self._pos + n]
                self._pos += n
                return line

    def read(self, n: int) -> bytes:
        """Up to ``n`` bytes; fewer only at a boundary or at the end."""
        avail = len(self._buf) - self._pos
        if avail >= n:
            out = self._buf[self._pos : self._pos + n]
            self._pos += n
            return out
        parts = [self._buf[self._pos :]]
        got = avail
        self._buf, self._pos = b"", 0
        while got < n and self._pull():
            take = self._buf[: n - got]
            parts.append(take)
            got += len(take)
            self._pos = len(take)
        return b"".join(parts)

    def skip(self, n: int) -> int:
        """Discard up to ``n`` bytes without keeping them; returns how many were skipped."""
        done = 0
        while True:
            avail = len(self._buf) - self._pos
            take = min(avail, n - done)
            self._pos += take
            done += take
            if done >= n or not self._pull():
                return done


# ---------------------------------------------------------------------------------------------------
# Layer 3: WARC records
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
    raw: BinaryIO, path: str, wanted: frozenset[str], max_record_bytes: int
) -> Iterator[WarcRecord | WarcError]:
    """Records of type ``wanted`` (blocks over ``max_record_bytes`` skipped unread) and errors.

    Never raises on bad data. Errors of a record whose type is known and not wanted are only logged.
    """
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
            if rtype not in wanted or length > max_record_bytes:
                got = s.skip(length)
                block = None
            else:
                block = s.read(length)
                got = len(block)
            if got < length:
                if s.blocked:
                    raise _BadRecord("bad_content_length", f"gzip member ends {length - got} bytes before Content-Length {length}")
                raise _BadRecord("truncated_record", f"file ends {length - got} bytes before Content-Length {length}")
            # -- the "\r\n\r\n" that ends a record
            trailer = s.read(4)
            if trailer != b"\r\n\r\n" and trailer.strip() != b"":
                rest = trailer.lstrip(b"\r\n")
                if b"WARC/".startswith(rest[:5]):
                    s.unread(rest)  # short or missing trailer, the next record follows directly
                elif block is not None and (i := block.find(b"\r\n\r\nWARC/")) >= 0:
                    s.unread(block[i + 4 :] + trailer)  # Content-Length too long: give back the next records
                    raise _BadRecord("bad_content_length", f"Content-Length {length} runs into the next record")
                else:
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
# HTTP payloads: head, content type, transfer/content encodings, charset
# ---------------------------------------------------------------------------------------------------

HTML_TYPES = frozenset({"text/html", "application/xhtml+xml", "application/vnd.wap.xhtml+xml"})
_GENERIC_TYPES = frozenset({"", "application/octet-stream", "binary/octet-stream", "unknown/unknown", "application/unknown"})
_HTML_SNIFF = re.compile(rb"<(?:!doctype\s+html|html|head|body|title|meta|div|p)[\s>/]", re.I)


@dataclass
class HttpResponse:
    status: int | None
    headers: dict[str, str]
    body: bytes
    #: why the body could not be decoded (an unsupported or broken Content-Encoding), else None
    undecodable: str | None = None

    @property
    def mime(self) -> str:
        return self.headers.get("content-type", "").split(";")[0].strip().lower()

    @property
    def charset(self) -> str | None:
        m = re.search(r"charset\s*=\s*[\"']?([\w.:\-]+)", self.headers.get("content-type", ""), re.I)
        return m.group(1) if m else None


def parse_http(block: bytes) -> HttpResponse:
    """Split an HTTP response block into status, headers (lower-cased) and decoded body."""
    if not block.startswith(b"HTTP/"):
        return HttpResponse(None, {}, block)
    ends = [i for i in (block.find(b"\r\n\r\n"), block.find(b"\n\n")) if i >= 0]
    if not ends:
        head, body = block, b""
    else:
        end = min(ends)
        sep = 4 if block[end : end + 4] == b"\r\n\r\n" else 2
        head, body = block[:end], block[end + sep :]
    lines = head.decode("latin-1").splitlines()
    status = None
    parts = lines[0].split(None, 2) if lines else []
    if len(parts) >= 2 and parts[1].isdigit():
        status = int(parts[1])
    headers: dict[str, str] = {}
    for line in lines[1:]:
        name, sep, value = line.partition(":")
        if sep:
            headers[name.strip().lower()] = value.strip()
    body, problem = _decode_transfer(headers, body)
    return HttpResponse(status, headers, body, problem)


def _decode_transfer(headers: dict[str, str], body: bytes) -> tuple[bytes, str | None]:
    """Undo chunked transfer and gzip/deflate content encoding if the crawler left them in place.

    (Common Crawl stores decoded payloads and renames the headers to ``X-Crawler-*``.) Returns the
    body and, if it is still encoded, why.
    """
    if "chunked" in headers.get("transfer-encoding", "").lower():
        body = _dechunk(body)
    enc = headers.get("content-encoding", "").lower().strip()
    if enc in ("", "identity", "none", "utf-8", "text"):
        return body, None
    if enc in ("gzip", "x-gzip", "deflate"):
        for wbits in (47, -15):  # gzip or zlib (auto-detected), then raw deflate
            try:
                return zlib.decompressobj(wbits).decompress(body, 256 << 20), None
            except zlib.error:
                continue
        return body, f"Content-Encoding {enc}: body does not decompress"
    return body, f"Content-Encoding {enc!r} is not supported"


def _dechunk(body: bytes) -> bytes:
    out, pos = [], 0
    try:
        while pos < len(body):
            eol = body.index(b"\n", pos)
            size = int(body[pos:eol].split(b";")[0].strip() or b"0", 16)
            if size == 0:
                break
            out.append(body[eol + 1 : eol + 1 + size])
            pos = eol + 1 + size + 2
        return b"".join(out)
    except ValueError:
        return body  # not really chunked


def is_html(resp: HttpResponse, identified: str | None) -> bool:
    mime = resp.mime
    ident = (identified or "").split(";")[0].strip().lower()
    if mime in HTML_TYPES:
        # a server calling a PDF or an image "text/html": trust Common Crawl's content detection
        return not ident or ident in HTML_TYPES or ident.startswith("text/") or ident.endswith("xml")
    if mime in _GENERIC_TYPES:
        if ident:
            return ident in HTML_TYPES
        return bool(_HTML_SNIFF.search(resp.body[:2048]))
    return False


# charset labels whose Python codec is not the right one for web pages (WHATWG Encoding Standard)
_CHARSET_ALIASES = {
    "gb2312": "gb18030", "gbk": "gb18030", "x-gbk": "gb18030", "gb_2312-80": "gb18030", "gb_2312": "gb18030",
    "csgb2312": "gb18030", "chinese": "gb18030", "iso-ir-58": "gb18030", "cp936": "gb18030", "windows-936": "gb18030",
    "iso-8859-1": "cp1252", "iso8859-1": "cp1252", "latin1": "cp1252", "latin-1": "cp1252", "l1": "cp1252",
    "us-ascii": "cp1252", "ascii": "cp1252", "ansi_x3.4-1968": "cp1252", "iso-8859-9": "cp1254", "latin5": "cp1254",
    "tis-620": "cp874", "iso-8859-11": "cp874", "big5": "big5hkscs", "euc-kr": "cp949", "ks_c_5601-1987": "cp949",
    "shift_jis": "cp932", "shift-jis": "cp932", "sjis": "cp932", "x-sjis": "cp932", "windows-31j": "cp932",
    "utf8": "utf-8", "unicode-1-1-utf-8": "utf-8", "x-user-defined": "cp1252",
    # a page that reached us as bytes and declares UTF-16 in a <meta> is really ASCII-compatible
    "utf-16": "utf-8", "utf-16le": "utf-8", "utf-16be": "utf-8",
}
_META_CHARSET = re.compile(
    rb"""<meta[^>]*?charset\s*=\s*["']?\s*([a-zA-Z0-9_.:\-]+)|<\?xml[^>]*?encoding\s*=\s*["']([a-zA-Z0-9_.:\-]+)""",
    re.I,
)
_BOMS = ((codecs.BOM_UTF8, "utf-8-sig"), (codecs.BOM_UTF16_LE, "utf-16"), (codecs.BOM_UTF16_BE, "utf-16"))


def normalize_charset(label: str | None) -> str | None:
    """A Python codec name for an HTTP/HTML charset label, or None if unknown."""
    if not label:
        return None
    label = label.strip().strip("\"'").lower()
    label = _CHARSET_ALIASES.get(label, label)
    try:
        return codecs.lookup(label).name
    except LookupError:
        return None


def _decode_ok(body: bytes, charset: str) -> str | None:
    """``body`` decoded; None if the charset is clearly wrong (many undecodable bytes)."""
    try:
        return body.decode(charset)
    except UnicodeDecodeError:
        pass
    except LookupError:
        return None
    text = body.decode(charset, errors="replace")
    if text.count("\ufffd") <= 2 + len(text) // 1000:  # a cut multi-byte char or a few stray bytes
        return text
    return None


def decode_html(body: bytes, http_charset: str | None) -> tuple[str, str]:
    """Decode an HTML payload: BOM, strict UTF-8 when there are non-ASCII bytes (valid UTF-8 is UTF-8
    whatever the label: servers often send a default ``charset=iso-8859-1``), HTTP charset,
    ``<meta>`` charset in the first 4 KB, charset-normalizer, then UTF-8 with replacement.
    Returns ``(text, codec name)``."""
    for bom, name in _BOMS:
        if body.startswith(bom):
            return body.decode(name, errors="replace"), name
    if not body.isascii():
        try:
            return body.decode("utf-8"), "utf-8"
        except UnicodeDecodeError:
            pass
    candidates = [normalize_charset(http_charset)]
    m = _META_CHARSET.search(body[:4096])
    if m:
        candidates.append(normalize_charset((m.group(1) or m.group(2)).decode("ascii", "replace")))
    for cs in candidates:
        if cs:
            text = _decode_ok(body, cs)
            if text is not None:
                return text, cs
    try:
        return body.decode("utf-8"), "utf-8"
    except UnicodeDecodeError:
        pass
    try:
        from charset_normalizer import from_bytes

        best = from_bytes(body[: 1 << 16]).best()
        cs = normalize_charset(best.encoding) if best is not None else None
        if cs:
            return body.decode(cs, errors="replace"), cs
    except Exception as e:  # detection is best effort
        log.debug("charset detection failed: %r", e)
    return body.decode("utf-8", errors="replace"), "utf-8"


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
        for position, item in enumerate(iter_warc(raw, path, self.record_types, self.max_record_bytes)):
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
