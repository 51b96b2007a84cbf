"""MediaWiki XML dumps (``pages-articles*.xml[.bz2]``) -> plain-text articles.

Robust by construction: the decompressed text is stream-decoded and cut into ``<page>...</page>``
fragments, and each fragment is parsed on its own with ``xml.etree``. A malformed page is one error
record (``bad_xml``) and the next page reads fine; a cut or corrupt ``.bz2`` gives one error record
(``truncated_bz2`` / ``corrupt_bz2``) at the position where reading stopped, then the shard ends.
(``mwxml`` rejects a dump without ``<siteinfo>`` and needs UTF-8; we take both, and UTF-16, decoded line
by line so that a lost byte garbles one line, not the rest of the dump.)

Every ``<page>`` is a candidate record. Pages outside ``namespaces`` (default: articles, ns 0) are
dropped as ``wiki_namespace``, redirects as ``wiki_redirect``, pages with no text left as
``wiki_empty``. Articles become plain text with :func:`wikitext_to_text` (mwparserfromhell, after the
linear scans of :mod:`~corpusmill.curation.readers.wiki_markup`; ``{{PAGENAME}}`` from the title); sections
that are lists rather than prose (references, external links, see also, ...:
:data:`DEFAULT_DROP_SECTIONS`, reader option ``drop_sections``) are dropped.

Metadata: ``title``, ``page_id``, ``revision_id``, ``url`` (from the dump's ``<siteinfo>``: its
``<base>`` or its ``dbname``; None without siteinfo), ``wiki`` (dbname).
"""

from __future__ import annotations

import codecs
import logging
import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from typing import BinaryIO, Iterator
from urllib.parse import quote

from corpusmill.curation.readers.base import Reader, Record, register
from corpusmill.curation.readers.compression import CorruptInput, open_binary
from corpusmill.curation.readers.wiki_markup import (
    COST,
    DROP_TAGS,
    LEFTOVER_FILE_OPTIONS,
    LEFTOVER_TAG,
    PARSER_PIECE_CHARS,
    drop_file_links,
    drop_tables,
    drop_tag_blocks,
    pieces,
    strip_format_tags,
)
from corpusmill.curation.readers.wiki_templates import expand_templates

log = logging.getLogger("corpusmill")

_CHUNK = 1 << 20


# ---------------------------------------------------------------------------------------------------
# wikitext -> plain text
# ---------------------------------------------------------------------------------------------------

# tags whose content is not prose (or not visible): dropped with everything inside
_DROP_TAGS = frozenset(DROP_TAGS)
_NEWLINE_TAGS = frozenset({"br", "hr", "p"})
_DEFAULT_DROP_PREFIXES = frozenset({"file", "image", "media", "category"})
_INTERWIKI = re.compile(r"^[a-z]{2,3}(?:-[a-z0-9]+)*$|^simple$")
_MAGIC_WORD = re.compile(r"__[A-Z]+__")
_QUOTES = re.compile(r"'{2,}")
_EMPTY_PARENS = re.compile(r"\(\s*[,;:]?\s*\)")
_SPACES = re.compile(r"[ \t\u00a0]{2,}|[\t\u00a0]")
_BLANK_LINES = re.compile(r"\n{3,}")
_SPACE_BEFORE_PUNCT = re.compile(r" +([,.;:!?])")
_LEFTOVER = re.compile(r"\{\{|\}\}|\[\[|\]\]|\{\||\|\}|<ref[^>]*>|</ref>")


#: section titles (lower case) whose whole section is dropped: reference lists, link lists and
#: bibliographies at the end of articles, not prose (English and the other languages of the shared data
#: and the largest wikis; a reader option replaces the set)
DEFAULT_DROP_SECTIONS = frozenset(
    {
        # en
        "references", "external links", "see also", "further reading", "notes", "bibliography", "footnotes",
        "sources", "citations", "notes and references", "references and notes", "works cited",
        # bg / ru
        "източници", "външни препратки", "вижте също", "бележки", "литература", "примечания", "ссылки",
        "см. также",
        # de / nl / fr / es / it / pt
        "einzelnachweise", "weblinks", "siehe auch", "literatur", "anmerkungen", "externe links", "zie ook",
        "bronnen", "referenties", "noten", "références", "liens externes", "voir aussi", "notes et références",
        "bibliographie", "referencias", "enlaces externos", "véase también", "bibliografía", "notas",
        "note", "collegamenti esterni", "voci correlate", "referências", "ligações externas", "ver também",
    }
)
_HEADING = re.compile(r"^(={1,6})[ \t]*(.+?)[ \t]*\1[ \t]*$", re.M)
_HEADING_MARKUP = re.compile(r"\[\[(?:[^\]|]*\|)?([^\]]*)\]\]|'{2,}|<[^>]*>")


def drop_sections(wikitext: str, titles: frozenset[str] = DEFAULT_DROP_SECTIONS) -> str:
    """Remove every section whose heading (lower-cased, markup removed) is in ``titles``, down to the
    next heading of the same or a higher level (its subsections go with it)."""
    if not titles or "=" not in wikitext:
        return wikitext
    spans: list[tuple[int, int]] = []
    start = level = None
    for m in _HEADING.finditer(wikitext):
        lv = len(m.group(1))
        if start is not None:
            if lv > level:
                continue
            spans.append((start, m.start()))
            start = None
        title = " ".join(_HEADING_MARKUP.sub(lambda x: x.group(1) or "", m.group(2)).split()).lower().rstrip(":")
        if title in titles:
            start, level = m.start(), lv
    if start is not None:
        spans.append((start, len(wikitext)))
    if not spans:
        return wikitext
    out, pos = [], 0
    for a, b in spans:
        out.append(wikitext[pos:a])
        pos = b
    out.append(wikitext[pos:])
    return "".join(out)


def wikitext_to_text(
    wikitext: str,
    drop_prefixes: frozenset[str] = _DEFAULT_DROP_PREFIXES,
    sections: frozenset[str] = DEFAULT_DROP_SECTIONS,
    title: str | None = None,
) -> str:
    """Plain text of an article's wikitext (``title``: the page's, for ``{{PAGENAME}}``).

    Sections titled as in ``sections`` (references, external links, see also, ...) are dropped whole.

    Inline templates that carry prose (``convert``, ``lang``, ``flag``, ...) become their visible text
    (:mod:`corpusmill.curation.readers.wiki_templates`); other templates, tables, references, comments,
    files/images and category links, interlanguage links and magic words are removed; links keep
    their visible text; headings stay as lines of their own. Linear in the page size
    (:mod:`corpusmill.curation.readers.wiki_markup`).
    """
    import mwparserfromhell

    wikitext = _prestrip(drop_sections(wikitext, sections), drop_prefixes, title)
    wikitext = _SIMPLE_LINK.sub(lambda m: _simple_link(m, drop_prefixes), wikitext)
    parts = []
    for piece in pieces(wikitext, PARSER_PIECE_CHARS):
        COST["parser_chars"] += len(piece)
        COST["max_piece"] = max(COST["max_piece"], len(piece))
        parts.append(_strip(mwparserfromhell.parse(piece, skip_style_tags=True), drop_prefixes))
    text = "".join(parts)
    text = _MAGIC_WORD.sub("", text)
    text = _QUOTES.sub("", text)
    text = LEFTOVER_TAG.sub("", text)
    if "|" in text:  # (the pattern is slow to try at every position: only lines with a pipe)
        text = "\n".join(LEFTOVER_FILE_OPTIONS.sub("", ln) if "|" in ln else ln for ln in text.split("\n"))
    text = _LEFTOVER.sub("", text)
    text = _EMPTY_PARENS.sub("", text)
    text = _SPACE_BEFORE_PUNCT.sub(r"\1", _SPACES.sub(" ", text))
    text = "\n".join(line.strip() for line in text.split("\n"))
    return _BLANK_LINES.sub("\n\n", text).strip()


# [[target]] / [[target|text]] without nested brackets: resolved with a regex, before parsing (most
# links are like this, and building parser nodes for them is slow)
_SIMPLE_LINK = re.compile(r"\[\[([^\[\]|{}<>\n]*)(?:\|([^\[\]{}]*))?\]\]")


def _simple_link(m: re.Match, drop_prefixes: frozenset[str]) -> str:
    title, text = m.group(1).strip(), m.group(2)
    if title.startswith(":"):
        title = title[1:]
    elif ":" in title:
        prefix = title.split(":", 1)[0].strip().lower()
        if prefix in drop_prefixes or (text is None and _INTERWIKI.match(prefix)):
            return ""
    if text is not None and text.strip():
        return text
    return title


_COMMENT = re.compile(r"<!--.*?(?:-->|$)", re.S)
_LIST_MARKERS = re.compile(r"^[*#:;]+[ \t]*(?!\{\|)", re.M)


def _prestrip(wikitext: str, drop_prefixes: frozenset[str] = _DEFAULT_DROP_PREFIXES, title: str | None = None) -> str:
    """Cut comments, references and other dropped tags, templates, tables, file links and formatting
    tags with linear scans before parsing (mwparserfromhell is slow on them, super-linear on unclosed
    ones, and they are dropped anyway)."""
    wikitext = _COMMENT.sub("", wikitext)
    wikitext = drop_tag_blocks(wikitext)
    wikitext = _LIST_MARKERS.sub("", wikitext)  # "*", "#", ":", ";" at line starts: the parser's
    # list tags would be dropped anyway
    wikitext = expand_templates(wikitext, title=title)  # inline ones rendered, the rest dropped (wiki_templates.py)
    wikitext = drop_tables(wikitext)
    wikitext = drop_file_links(wikitext, drop_prefixes)
    return strip_format_tags(wikitext)


def _strip(code, drop_prefixes: frozenset[str]) -> str:
    n = _nodes()
    out: list[str] = []
    for node in code.nodes:
        if isinstance(node, n.Text):
            out.append(node.value)
        elif isinstance(node, n.Wikilink):
            out.append(_link_text(node, drop_prefixes))
        elif isinstance(node, n.Heading):
            out.append("\n" + _strip(node.title, drop_prefixes).strip() + "\n")
        elif isinstance(node, n.Tag):
            tag = str(node.tag).strip().lower()
            if tag in _DROP_TAGS:
                continue
            if tag in _NEWLINE_TAGS:
                out.append("\n")
            if node.contents is not None and not node.self_closing:
                out.append(_strip(node.contents, drop_prefixes))
        elif isinstance(node, n.ExternalLink):
            if node.title is not None:
                out.append(_strip(node.title, drop_prefixes))
            elif not node.brackets:
                out.append(str(node.url))
        elif isinstance(node, n.HTMLEntity):
            out.append(node.normalize())
        # Template, Comment, Argument: dropped
    return "".join(out)


_NODES = None


def _nodes():
    global _NODES
    if _NODES is None:
        from mwparserfromhell import nodes

        _NODES = nodes
    return _NODES


def _link_text(node, drop_prefixes: frozenset[str]) -> str:
    title = str(node.title).strip()
    if title.startswith(":"):  # [[:Category:X]] is a visible link
        title = title[1:]
    elif ":" in title:
        prefix = title.split(":", 1)[0].strip().lower()
        if prefix in drop_prefixes:
            return ""
        if node.text is None and _INTERWIKI.match(prefix):
            return ""  # interlanguage link
    if node.text is not None and str(node.text).strip():
        return _strip(node.text, drop_prefixes)
    return title


# ---------------------------------------------------------------------------------------------------
# dump -> page fragments
# ---------------------------------------------------------------------------------------------------


@dataclass
class SiteInfo:
    dbname: str | None = None
    base: str | None = None
    namespaces: dict[str, int] = field(default_factory=dict)  # lower-cased name -> key

    @classmethod
    def parse(cls, fragment: str) -> "SiteInfo":
        site = cls()
        try:
            el = ET.fromstring(_strip_xmlns(fragment))
        except ET.ParseError as e:
            log.warning("unreadable <siteinfo>: %s", e)
            return site
        site.dbname = (el.findtext("dbname") or "").strip() or None
        site.base = (el.findtext("base") or "").strip() or None
        for ns in el.iter("namespace"):
            try:
                site.namespaces[(ns.text or "").strip().lower()] = int(ns.get("key", ""))
            except ValueError:
                pass
        return site

    def url_prefix(self) -> str | None:
        if self.base and "/wiki/" in self.base:
            return self.base.rsplit("/wiki/", 1)[0] + "/wiki/"
        if self.dbname and self.dbname.endswith("wiki") and self.dbname != "wiki":
            return f"https://{self.dbname[:-4].replace('_', '-')}.wikipedia.org/wiki/"
        return None

    def drop_prefixes(self) -> frozenset[str]:
        local = {name for name, key in self.namespaces.items() if key in (-2, 6, 14) and name}
        return _DEFAULT_DROP_PREFIXES | local


def _strip_xmlns(fragment: str) -> str:
    return re.sub(r'\sxmlns(?::\w+)?="[^"]*"', "", fragment, count=4)


def _sniff_encoding(head: bytes) -> str:
    if head.startswith(codecs.BOM_UTF8):
        return "utf-8-sig"
    if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return "utf-16"
    if head.startswith(b"<\x00"):
        return "utf-16-le"
    if head.startswith(b"\x00<"):
        return "utf-16-be"
    return "utf-8"


def _fragments(stream: BinaryIO, max_page_chars: int) -> Iterator[tuple[str, str]]:
    """``("siteinfo"|"page"|"bad"|"oversize"|"truncated", text)`` in file order.

    Holds at most one page (up to ``max_page_chars``) in memory. Raises :class:`CorruptInput` (from
    the decompressor) where the data stops being readable.
    """
    first = stream.read(_CHUNK)
    encoding = _sniff_encoding(first)
    if encoding.startswith("utf-16"):  # re-aligned at every line end: a lost byte damages one line only
        stream, encoding = _Utf16AsUtf8(stream, first, encoding), "utf-8"
        first = stream.read(_CHUNK)
    decoder = codecs.getincrementaldecoder(encoding)(errors="replace")
    eof = not first
    buf = decoder.decode(first, final=eof)
    header_done = False  # <siteinfo> read, or the first <page> seen
    skipping = False  # inside an oversize page: drop text up to its end
    scanned = 0  # buf starts with "<page>" and buf[:scanned] holds no end/next-page marker
    while True:
        if skipping:
            end, nxt = buf.find("</page>"), buf.find("<page>")
            if nxt >= 0 and (end < 0 or nxt < end):
                buf, skipping = buf[nxt:], False
                continue
            if end >= 0:
                buf, skipping = buf[end + 7 :], False
                continue
            buf = buf[-7:]
        else:
            start = buf.find("<page>")
            if not header_done:
                s = buf.find("<siteinfo>")
                e = buf.find("</siteinfo>", s) if s >= 0 else -1
                if s >= 0 and e >= 0 and (start < 0 or s < start):
                    yield "siteinfo", buf[s : e + 11]
                    buf, header_done = buf[e + 11 :], True
                    continue
                header_done = start >= 0 or len(buf) > max_page_chars
            if start >= 0:
                if start:
                    buf, scanned = buf[start:], 0
                end = buf.find("</page>", max(6, scanned))
                nxt = buf.find("<page>", max(6, scanned), end if end >= 0 else len(buf))
                if nxt >= 0:  # a page that never closes: cut it at the next page's start
                    yield "bad", buf[:nxt]
                    buf, scanned = buf[nxt:], 0
                    continue
                if end >= 0:
                    yield "page", buf[: end + 7]
                    buf, scanned = buf[end + 7 :], 0
                    continue
                scanned = max(0, len(buf) - 7)
                if len(buf) > max_page_chars:
                    yield "oversize", buf[:2000]
                    buf, skipping = buf[-7:], True
            elif header_done or "<siteinfo>" not in buf:
                buf = buf[-10:]
        if eof:
            if not skipping and "<page>" in buf:
                yield "truncated", buf[:2000]
            return
        data = stream.read(_CHUNK)
        eof = not data
        buf += decoder.decode(data, final=eof)


class _Utf16AsUtf8:
    """A UTF-16 byte stream read as UTF-8, decoded line by line: each line starts after the byte pair
    of a line end wherever it is, so a byte lost or added (a cut, a bad sector) shifts the alignment
    of one line only, not of the rest of the dump."""

    def __init__(self, stream: BinaryIO, first: bytes, encoding: str) -> None:
        if first[:2] in (codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE):
            encoding = "utf-16-le" if first[:2] == codecs.BOM_UTF16_LE else "utf-16-be"
            first = first[2:]
        self._codec = encoding
        self._newline = "\n".encode(encoding)
        self._stream = stream
        self._buf = first
        self._eof = False

    def read(self, n: int = -1) -> bytes:
        while not self._eof and self._newline not in self._buf and len(self._buf) < 4 * _CHUNK:
            data = self._stream.read(_CHUNK)
            self._eof = not data
            self._buf += data
        if self._eof:
            cut = len(self._buf)
        elif (k := self._buf.rfind(self._newline)) >= 0:
            cut = k + 2
        else:  # a very long line: decode it in even-sized pieces
            cut = len(self._buf) & ~1
        head, self._buf = self._buf[:cut], self._buf[cut:]
        out, start = [], 0
        while start < len(head):  # line by line, each at its own alignment
            k = head.find(self._newline, start)
            end = len(head) if k < 0 else k + 2
            out.append(head[start:end].decode(self._codec, errors="replace"))
            start = end
        return "".join(out).encode("utf-8", "surrogatepass")


_TITLE = re.compile(r"<title>(.*?)</title>", re.S)


@register
class WikipediaReader(Reader):
    """MediaWiki XML dumps, UTF-8 or UTF-16, with or without ``<siteinfo>``, plain or .bz2/.gz/.zst.

    Options: ``namespaces`` (page namespaces kept, default ``[0]``), ``max_page_chars`` (larger pages
    are dropped as ``oversize`` without being held in memory, default 20 M), ``source_kind``.
    """

    name = "wikipedia"
    source_kind = "wikipedia"
    default_globs = ("*.xml", "*.xml.bz2", "*.xml.gz", "*.xml.zst", "*.xml-*.bz2")

    def __init__(
        self,
        *,
        namespaces: list[int] | tuple[int, ...] = (0,),
        max_page_chars: int = 20_000_000,
        source_kind: str | None = None,
        drop_sections: list[str] | tuple[str, ...] | None = None,
        **rest,
    ) -> None:
        super().__init__(**rest)
        self.namespaces = frozenset(int(n) for n in namespaces)
        self.drop_sections = (
            DEFAULT_DROP_SECTIONS if drop_sections is None else frozenset(" ".join(t.split()).lower() for t in drop_sections)
        )
        self.max_page_chars = int(max_page_chars)
        if source_kind:
            self.source_kind = source_kind

    def records(self, raw: BinaryIO, path: str) -> Iterator[Record]:
        site = SiteInfo()
        position = 0
        try:
            for kind, text in _fragments(open_binary(raw, path), self.max_page_chars):
                if kind == "siteinfo":
                    site = SiteInfo.parse(text)
                    continue
                if kind == "page":
                    yield self._page(position, text, site)
                else:
                    md = {"title": _title(text)}
                    if kind == "oversize":
                        yield Record(position, metadata=md, drop_reason="oversize")
                    elif kind == "truncated":
                        yield Record(position, metadata=md, drop_reason="truncated_record", error="the dump ends inside a <page>")
                    else:
                        yield Record(position, metadata=md, drop_reason="bad_xml", error="<page> without </page>")
                position += 1
        except CorruptInput as e:
            yield Record(position, drop_reason=e.kind, error=e.message)

    def _page(self, position: int, fragment: str, site: SiteInfo) -> Record:
        try:
            el = ET.fromstring(fragment)
        except ET.ParseError as e:
            return Record(position, metadata={"title": _title(fragment)}, drop_reason="bad_xml", error=f"bad page XML: {e}")
        title = (el.findtext("title") or "").strip()
        md: dict = {"title": title, "page_id": _int(el.findtext("id")), "wiki": site.dbname}
        revisions = el.findall("revision")
        rev = revisions[-1] if revisions else None
        md["revision_id"] = _int(rev.findtext("id")) if rev is not None else None
        prefix = site.url_prefix()
        md["url"] = prefix + quote(title.replace(" ", "_"), safe="/:(),'!*@;$~-._") if prefix and title else None
        ns = _int(el.findtext("ns"))
        if ns is None:
            ns = site.namespaces.get(title.split(":", 1)[0].strip().lower(), 0) if ":" in title else 0
        if ns not in self.namespaces:
            md["wiki_ns"] = ns
            return Record(position, metadata=md, drop_reason="wiki_namespace")
        wikitext = (rev.findtext("text") if rev is not None else None) or ""
        if el.find("redirect") is not None or re.match(r"\s*#redirect\b", wikitext, re.I):
            return Record(position, metadata=md, drop_reason="wiki_redirect")
        try:
            text = wikitext_to_text(wikitext, site.drop_prefixes(), self.drop_sections, title=title)
        except Exception as e:  # a parser failure on one page must not end the shard
            log.warning("page %r: wikitext conversion failed: %r", title, e, exc_info=True)
            return Record(position, metadata=md, drop_reason="bad_wikitext", error=repr(e)[:2000])
        if not text:
            return Record(position, metadata=md, drop_reason="wiki_empty")
        return Record(position, text=text, metadata=md)


def _title(fragment: str) -> str | None:
    m = _TITLE.search(fragment[:4000])
    return m.group(1).strip() if m else None


def _int(value: str | None) -> int | None:
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None


__all__ = ["WikipediaReader", "wikitext_to_text", "SiteInfo"]
