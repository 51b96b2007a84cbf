"""Open a raw shard stream decompressed, with one exception type for corrupt or cut data.

Readers get the raw, still-compressed byte stream of a shard. :func:`open_binary` / :func:`open_text`
wrap it in a streaming decompressor chosen by the file name (``.gz``, ``.bz2``, ``.zst``; anything
else is read as is) and translate every decompression failure into :class:`CorruptInput`, whose
``kind`` is the short drop reason a reader puts on its error record:

- ``corrupt_gzip`` / ``corrupt_bz2`` / ``corrupt_zstd``: the compressed data is invalid (bad header,
  bad CRC, flipped bytes);
- ``truncated_gzip`` / ``truncated_bz2`` / ``truncated_zstd``: the file ends inside a compressed
  member/stream/frame (a cut or partially downloaded file).

Both mean "nothing more can be read from here" for these single-stream formats: the reader yields one
error record and ends the shard. (The WARC reader decompresses gzip member by member itself, so it can
resynchronise after a corrupt member; see :mod:`corpusmill.curation.readers.gzip_members`.)

Python's ``gzip`` and ``bz2`` modules raise the right errors on their own (``EOFError`` for a cut
file). ``zstandard``'s stream reader silently returns EOF on a cut frame, so zstd goes through a small
frame-by-frame decompressor here that notices an unfinished frame.
"""

from __future__ import annotations

import bz2
import gzip
import io
import zlib
from typing import BinaryIO, Literal

Compression = Literal["gzip", "bz2", "zstd"]

READ_SIZE = 1 << 16

_EXTENSIONS: dict[str, Compression] = {
    ".gz": "gzip",
    ".gzip": "gzip",
    ".bz2": "bz2",
    ".zst": "zstd",
    ".zstd": "zstd",
}


class CorruptInput(Exception):
    """Compressed input that cannot be decompressed further. ``kind`` is the drop reason."""

    def __init__(self, kind: str, message: str, head: bytes = b"") -> None:
        super().__init__(message)
        self.kind = kind
        self.message = message
        #: what could still be decoded from the start of the damaged unit (lets a reader name the record)
        self.head = head


def compression_of(path: str) -> Compression | None:
    """The compression a file name implies (by its last extension), or None for plain files."""
    name = path.lower().rstrip("/")
    for ext, comp in _EXTENSIONS.items():
        if name.endswith(ext):
            return comp
    return None


def _translate(comp: str, e: BaseException) -> CorruptInput:
    if isinstance(e, EOFError):
        return CorruptInput(f"truncated_{comp}", f"{comp} stream ends before its end marker (cut file?): {e}")
    return CorruptInput(f"corrupt_{comp}", f"invalid {comp} data: {type(e).__name__}: {e}")


class _Guarded(io.RawIOBase):
    """A decompressing file object whose decompression errors come out as :class:`CorruptInput`."""

    def __init__(self, inner: BinaryIO, comp: str, errors: tuple[type[BaseException], ...]) -> None:
        self._inner = inner
        self._comp = comp
        self._errors = errors

    def readable(self) -> bool:
        return True

    def readinto(self, b) -> int:  # type: ignore[override]
        try:
            data = self._inner.read(len(b))
        except CorruptInput:
            raise
        except self._errors as e:
            raise _translate(self._comp, e) from e
        n = len(data)
        b[:n] = data
        return n


class _ZstdReader(io.RawIOBase):
    """zstd frames decompressed one after another; a frame cut short raises ``truncated_zstd``."""

    def __init__(self, raw: BinaryIO) -> None:
        import zstandard

        self._zstd = zstandard
        self._raw = raw
        self._dctx = zstandard.ZstdDecompressor()
        self._obj = self._dctx.decompressobj()
        self._in_frame = False  # bytes were fed to the current frame and it has not ended
        self._out = b""
        self._eof = False

    def readable(self) -> bool:
        return True

    def _fill(self) -> None:
        data = b""
        if self._obj.eof:
            data = self._obj.unused_data
            self._obj = self._dctx.decompressobj()
            self._in_frame = False
        if not data:
            data = self._raw.read(READ_SIZE)
        if not data:
            if self._in_frame:
                raise CorruptInput("truncated_zstd", "zstd stream ends inside a frame (cut file?)")
            self._eof = True
            return
        try:
            self._out = self._obj.decompress(data)
        except self._zstd.ZstdError as e:
            raise _translate("zstd", e) from e
        self._in_frame = not self._obj.eof

    def readinto(self, b) -> int:  # type: ignore[override]
        while not self._out and not self._eof:
            self._fill()
        n = min(len(b), len(self._out))
        b[:n] = self._out[:n]
        self._out = self._out[n:]
        return n


def open_binary(raw: BinaryIO, path: str, compression: Compression | None | Literal["infer"] = "infer") -> BinaryIO:
    """``raw`` decompressed (by ``path``'s extension unless ``compression`` is given), buffered.

    Reading the result raises :class:`CorruptInput` on invalid or cut compressed data.
    """
    comp = compression_of(path) if compression == "infer" else compression
    if comp is None:
        return io.BufferedReader(_Passthrough(raw), READ_SIZE)
    first = raw.read(1)
    if not first:  # a 0-byte file holds no records, whatever its name (bz2 would call it truncated)
        return io.BufferedReader(_Passthrough(io.BytesIO(b"")), READ_SIZE)
    raw = _Prepended(first, raw)
    if comp == "gzip":
        inner = _Guarded(gzip.GzipFile(fileobj=raw, mode="rb"), "gzip", (gzip.BadGzipFile, EOFError, zlib.error))
    elif comp == "bz2":
        # bz2 reports bad data as a plain OSError("Invalid data stream")
        inner = _Guarded(bz2.BZ2File(raw, mode="rb"), "bz2", (OSError, EOFError, ValueError))
    elif comp == "zstd":
        inner = _ZstdReader(raw)
    else:
        raise ValueError(f"unknown compression {comp!r}")
    return io.BufferedReader(inner, READ_SIZE)


def open_text(
    raw: BinaryIO,
    path: str,
    encoding: str = "utf-8",
    errors: str = "strict",
    compression: Compression | None | Literal["infer"] = "infer",
) -> io.TextIOWrapper:
    """:func:`open_binary` decoded as text (universal newlines off: lines end in ``\\n`` as stored)."""
    return io.TextIOWrapper(open_binary(raw, path, compression), encoding=encoding, errors=errors, newline="")


class _Prepended:
    """``head`` (bytes already read from ``raw``), then the rest of ``raw``."""

    def __init__(self, head: bytes, raw: BinaryIO) -> None:
        self._head = head
        self._raw = raw

    def read(self, n: int = -1) -> bytes:
        if not self._head or n == 0:
            return self._raw.read(n)
        head, self._head = self._head, b""  # one byte: n >= 1 here
        return head + (self._raw.read() if n is None or n < 0 else self._raw.read(n - 1))  # full reads (gzip needs them)


class _Passthrough(io.RawIOBase):
    """Adapts any object with ``read`` to a RawIOBase (so it can be buffered)."""

    def __init__(self, raw: BinaryIO) -> None:
        self._raw = raw

    def readable(self) -> bool:
        return True

    def readinto(self, b) -> int:  # type: ignore[override]
        data = self._raw.read(len(b))
        n = len(data)
        b[:n] = data
        return n


__all__ = ["CorruptInput", "compression_of", "open_binary", "open_text", "READ_SIZE"]
