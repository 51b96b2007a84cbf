"""HTTP payloads of WARC response records: head, content type, transfer/content encodings, charset.

We control charset decoding rather than take datatrove's (it tries UTF-8, then cchardet's guess, ignores
the declared charset and silently skips a page that fails; the shared CC-MAIN-2020-34 sample has GBK
pages declared ``gb2312``/``gbk`` in a ``<meta>`` that must decode to Chinese). :func:`decode_html`
tries a BOM, strict UTF-8, the HTTP charset, the ``<meta>`` charset, then charset-normalizer;
:func:`normalize_charset` maps labels whose Python codec is wrong for web pages as the WHATWG Encoding
Standard does. :func:`is_html` decides which payloads are HTML. :func:`parse_http` undoes a chunked
transfer (only when the body really is chunked: archives often keep the header on a de-chunked body) and a gzip/deflate ``Content-Encoding`` left in place, and reports any other encoding in
:attr:`HttpResponse.undecodable` rather than raising.
"""

from __future__ import annotations

import codecs
import logging
import re
import zlib
from dataclasses import dataclass

log = logging.getLogger("corpusmill")

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


_CHUNK_SIZE = re.compile(rb"([0-9a-fA-F]{1,15})[ \t]*(?:;[^\r\n]*)?\r?\n")
_TRAILER = re.compile(rb"(?:[!-9;-~]+:[^\r\n]*\r?\n)*\r?\n?\s*")


def _dechunk(body: bytes) -> bytes:
    """The body de-chunked if it is a valid chunked body, else ``body`` unchanged.

    Archives often store the de-chunked body with the ``Transfer-Encoding: chunked`` header left in
    (and such a body may start with a blank line). Valid: hex size lines, each chunk followed by a line
    end, a 0-size chunk, trailers and nothing but white space after; or a body cut off (a truncated
    capture) after or inside a chunk that follows at least one complete chunk.
    """
    out: list[bytes] = []
    pos, n = 0, len(body)
    while True:
        m = _CHUNK_SIZE.match(body, pos)
        if m is None:
            return b"".join(out) if out and pos >= n else body
        size = int(m.group(1), 16)
        start = m.end()
        if size == 0:
            end = _TRAILER.match(body, start)
            return b"".join(out) if end is not None and end.end() == n else body
        if start + size > n:  # cut inside this chunk
            return b"".join(out) + body[start:] if out else body
        out.append(body[start : start + size])
        pos = start + size
        if body.startswith(b"\r\n", pos):
            pos += 2
        elif body.startswith(b"\n", pos):
            pos += 1
        elif pos < n:
            return body


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


__all__ = ["HTML_TYPES", "HttpResponse", "parse_http", "is_html", "normalize_charset", "decode_html"]
