"""Decompressed bytes of a WARC file, gzip member by gzip member, with corruption reported in-band.

Common Crawl writes every WARC record as its own gzip member. :class:`_GzipMembers` decompresses member
by member with ``zlib`` (``wbits=31``, continuing on ``unused_data``): after a corrupt member it yields
ONE :class:`CorruptInput` (carrying what :func:`_salvage` could still decode of the member's start, so
the reader can name the record), resynchronises at the next gzip magic (``1f 8b 08``) whose member
decodes to a ``WARC/`` header, and goes on from there. A member's last bytes are released only once its
CRC is verified, so a damaged member never yields garbage data *and* an error.

Uncompressed input, and ``.bz2`` / ``.zst`` read as one stream, come through :func:`_plain_chunks`
(corruption there ends the stream). :class:`_Stream` is the pull buffer the WARC parser reads from: it
stops at a member boundary whose member begins a new record, so a record cannot run into the members
that follow it (see :mod:`corpusmill.curation.readers.warc`).
"""

from __future__ import annotations

import logging
import zlib
from dataclasses import dataclass
from typing import BinaryIO, Iterator

from corpusmill.curation.readers.compression import READ_SIZE, CorruptInput

log = logging.getLogger("corpusmill")

GZIP_MAGIC = b"\x1f\x8b\x08"
MAX_LINE_BYTES = 1 << 16  # _Stream.readline() returns a longer line in pieces
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

    def readline(self, limit: int = MAX_LINE_BYTES) -> bytes:
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


__all__ = ["GZIP_MAGIC", "MAX_LINE_BYTES"]
