"""Project Gutenberg plain-text books: encoding detection, license header/footer removal, splitting.

One file is one book. A book is one record (``split: none``, the default), or one record per chapter
(``split: chapters``) or per chunk of about ``chunk_chars`` characters cut at paragraph boundaries
(``split: chunks``). A book is decoded whole (the largest PG books are a few MB; files over
``max_book_bytes`` are dropped as ``oversize`` after reading that much).

Encoding: BOM, then strict UTF-8, then the header's ``Character set encoding:`` line, then
charset-normalizer, then Latin-1 (which cannot fail). ISO-8859-1 is read as Windows-1252 when that
decodes (PG's "ISO-8859-1" files often hold cp1252 quotes).

Boilerplate: everything up to the end of the last start marker (modern ``*** START OF THE/THIS
PROJECT GUTENBERG EBOOK ...``, or the 1990s ``*END*THE SMALL PRINT!`` line) and from the first end
marker on (``*** END OF THE/THIS PROJECT GUTENBERG EBOOK``, ``End of (the) Project Gutenberg('s)
Etext/EBook ...``) is cut, and so is a leading "Produced by ..." credit paragraph.

Metadata: ``title``, ``author``, ``pg_language`` (the header's ``Language:`` line, as written),
``gutenberg_id`` (from ``[EBook #N]`` / ``[Etext #N]`` or a ``pgN`` file name), ``encoding``, and with
a split ``part`` / ``parts`` (and ``chapter``, the heading line).
"""

from __future__ import annotations

import codecs
import logging
import re
from typing import BinaryIO, Iterator

from corpusmill.curation.readers.base import Reader, Record, register
from corpusmill.curation.readers.compression import CorruptInput, open_binary

log = logging.getLogger("corpusmill")

SPLITS = ("none", "chapters", "chunks")

_START = re.compile(
    r"^[ \t]*\*{3}[ \t]*START OF (?:THE|THIS) PROJECT GUTENBERG E-?(?:BOOK|TEXT).*$"
    r"|^[ \t]*\*+[ \t]*END\b\*?[ \t]*THE SMALL PRINT!.*$",
    re.I | re.M,
)
_END = re.compile(
    r"^[ \t]*\*{3}[ \t]*END OF (?:THE|THIS) PROJECT GUTENBERG E-?(?:BOOK|TEXT)"
    r"|^[ \t]*End of (?:the )?Project Gutenberg(?:'s)?\b",
    re.I | re.M,
)
_CREDIT = re.compile(
    r"\A\s*(?:Produced by|Prepared by|Transcribed (?:from|by)|E-?text (?:prepared|produced) by"
    r"|This (?:e-?text|e-?book) was (?:produced|prepared|transcribed))\b.*?(?:\n[ \t]*\n|\Z)",
    re.I | re.S,
)
_FIELD = r"^[ \t]*{}:[ \t]*(.+(?:\n[ \t]+\S.*)*)"
_TITLE, _AUTHOR, _LANGUAGE, _CHARSET = (
    re.compile(_FIELD.format(name), re.I | re.M) for name in ("Title", "Author", "Language", "Character set encoding")
)
_OLD_TITLE = re.compile(r"Project Gutenberg (?:Etext|E-text|EBook) of (.+?),? by (.+?)\s*$", re.I | re.M)
_ID = re.compile(r"\[(?:E-?Book|E-?text)\s*#\s*(\d+)\]|E-?(?:Book|text)\s*#\s*(\d+)", re.I)
_FILE_ID = re.compile(r"(?:^|/)pg(\d+)", re.I)
_HEADING = re.compile(
    r"^[ \t]*(?:(?:CHAPTER|Chapter|BOOK|Book|PART|Part|ADVENTURE|Adventure|STAVE|Stave|LETTER|Letter|CANTO|Canto)"
    r"[ \t]+(?:[IVXLCDM]+|\d+|[A-Z][A-Za-z]+)\b[^\n]{0,80}"  # "CHAPTER IV: A MARKET", "Book Two"
    r"|[IVXLC]+\.[ \t]+[A-Z][A-Z0-9 ,;:'\-!?.]{2,80})$",  # "VII. THE BLUE CARBUNCLE" (upper case only)
    re.M,
)
_MIN_CHAPTER_CHARS = 500  # shorter sections (tables of contents, part titles) join the next one


def decode_book(data: bytes) -> tuple[str, str]:
    """``(text, encoding)``: BOM, strict UTF-8, declared charset, charset-normalizer, Latin-1."""
    for bom, name in ((codecs.BOM_UTF8, "utf-8-sig"), (codecs.BOM_UTF16_LE, "utf-16"), (codecs.BOM_UTF16_BE, "utf-16")):
        if data.startswith(bom):
            return data.decode(name, errors="replace"), name
    try:
        return data.decode("utf-8"), "utf-8"
    except UnicodeDecodeError:
        pass
    m = _CHARSET.search(data[:8000].decode("ascii", errors="replace"))
    if m:
        label = m.group(1).split("(")[0].strip().lower()
        for name in (["cp1252", "latin-1"] if label in ("iso-8859-1", "iso 8859-1", "latin-1", "latin1") else [label]):
            try:
                return data.decode(name), codecs.lookup(name).name
            except (UnicodeDecodeError, LookupError):
                continue
    try:
        from charset_normalizer import from_bytes

        best = from_bytes(data[:200_000]).best()
        if best is not None and best.encoding:
            return data.decode(best.encoding, errors="replace"), codecs.lookup(best.encoding).name
    except Exception as e:  # detection is best effort
        log.debug("charset detection failed: %r", e)
    return data.decode("latin-1"), "latin-1"


def strip_gutenberg(text: str) -> tuple[str, dict]:
    """The book's own text without PG's license header/footer, and metadata from the header."""
    starts = [m for m in _START.finditer(text) if m.start() < len(text) * 0.6]
    body_start = starts[-1].end() if starts else 0
    end = _END.search(text, body_start)
    body_end = end.start() if end else len(text)
    header = text[: body_start or 10_000]
    body = text[body_start:body_end]
    body = _CREDIT.sub("", body, count=1)
    return body.strip("\n").rstrip() + "\n", _metadata(header)


def _metadata(header: str) -> dict:
    def field(rx: re.Pattern) -> str | None:
        m = rx.search(header)
        return " ".join(m.group(1).split()) if m else None

    md = {"title": field(_TITLE), "author": field(_AUTHOR), "pg_language": field(_LANGUAGE)}
    if md["title"] is None:
        m = _OLD_TITLE.search(header[:2000])
        if m:
            md["title"] = m.group(1).strip()
            md["author"] = md["author"] or m.group(2).strip()
    m = _ID.search(header)
    md["gutenberg_id"] = int(m.group(1) or m.group(2)) if m else None
    return md


def split_chapters(body: str) -> list[tuple[str | None, str]]:
    """``(heading, text)`` per chapter; one part (heading None) when no chapter headings are found."""
    cuts = [m.start() for m in _HEADING.finditer(body)]
    if len(cuts) < 2:
        return [(None, body)]
    bounds = [0, *cuts, len(body)] if cuts[0] > 0 else [*cuts, len(body)]
    parts = [body[a:b] for a, b in zip(bounds, bounds[1:])]
    merged: list[str] = []
    carry = ""
    for part in parts:
        part = carry + part
        if len(part.strip()) < _MIN_CHAPTER_CHARS:
            carry = part
            continue
        merged.append(part)
        carry = ""
    if carry:
        if merged:
            merged[-1] += carry
        else:
            merged.append(carry)
    out = []
    for part in merged:
        m = _HEADING.search(part)
        out.append((m.group(0).strip() if m else None, part.strip("\n")))
    return out


def split_chunks(body: str, chunk_chars: int) -> list[str]:
    """Pieces of at most ``chunk_chars`` characters, cut between paragraphs (or lines, if one
    paragraph is longer than a chunk)."""
    chunks: list[str] = []
    current: list[str] = []
    size = 0
    for para in _pieces(body, chunk_chars):
        if size and size + len(para) + 2 > chunk_chars:
            chunks.append("\n\n".join(current))
            current, size = [], 0
        current.append(para)
        size += len(para) + 2
    if current:
        chunks.append("\n\n".join(current))
    return [c for c in chunks if c.strip()]


def _pieces(body: str, limit: int) -> Iterator[str]:
    for para in re.split(r"\n[ \t]*\n", body):
        if len(para) <= limit:
            yield para
            continue
        line_buf: list[str] = []
        size = 0
        for line in para.split("\n"):
            while len(line) > limit:  # a single enormous line: hard cut
                yield line[:limit]
                line = line[limit:]
            if size + len(line) + 1 > limit and line_buf:
                yield "\n".join(line_buf)
                line_buf, size = [], 0
            line_buf.append(line)
            size += len(line) + 1
        if line_buf:
            yield "\n".join(line_buf)


@register
class BooksReader(Reader):
    """Project Gutenberg ``.txt`` books (also ``.txt.gz`` / ``.txt.bz2`` / ``.txt.zst``).

    Options: ``split`` (``none`` | ``chapters`` | ``chunks``), ``chunk_chars`` (default 100,000),
    ``max_book_bytes`` (default 64 MB), ``source_kind``.
    """

    name = "books"
    source_kind = "book"
    default_globs = ("*.txt", "*.txt.gz", "*.txt.bz2", "*.txt.zst")

    def __init__(
        self,
        *,
        split: str = "none",
        chunk_chars: int = 100_000,
        max_book_bytes: int = 64 << 20,
        source_kind: str | None = None,
        **rest,
    ) -> None:
        super().__init__(**rest)
        if split not in SPLITS:
            raise TypeError(f"split must be one of {', '.join(SPLITS)}, got {split!r}")
        if not isinstance(chunk_chars, int) or chunk_chars < 1000:
            raise TypeError(f"chunk_chars must be an int >= 1000, got {chunk_chars!r}")
        self.split = split
        self.chunk_chars = chunk_chars
        self.max_book_bytes = int(max_book_bytes)
        if source_kind:
            self.source_kind = source_kind

    def records(self, raw: BinaryIO, path: str) -> Iterator[Record]:
        try:
            data = open_binary(raw, path).read(self.max_book_bytes + 1)
        except CorruptInput as e:
            yield Record(0, drop_reason=e.kind, error=e.message)
            return
        if len(data) > self.max_book_bytes:
            yield Record(0, metadata={"book_bytes": len(data)}, drop_reason="oversize")
            return
        text, encoding = decode_book(data)
        text = text.replace("\r\n", "\n").replace("\r", "\n")
        body, md = strip_gutenberg(text)
        if md["gutenberg_id"] is None:
            m = _FILE_ID.search(path)
            md["gutenberg_id"] = int(m.group(1)) if m else None
        md["encoding"] = encoding
        if not body.strip():
            yield Record(0, metadata=md, drop_reason="book_empty")
            return
        if self.split == "none":
            yield Record(0, text=body, metadata=md)
            return
        if self.split == "chapters":
            parts = split_chapters(body)
            for i, (heading, part) in enumerate(parts):
                yield Record(i, text=part, metadata={**md, "part": i, "parts": len(parts), "chapter": heading})
            return
        chunks = split_chunks(body, self.chunk_chars)
        for i, chunk in enumerate(chunks):
            yield Record(i, text=chunk, metadata={**md, "part": i, "parts": len(chunks)})


__all__ = ["BooksReader", "decode_book", "strip_gutenberg", "split_chapters", "split_chunks"]
