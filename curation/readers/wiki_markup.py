"""Linear scans that remove wikitext markup before (and leftovers after) mwparserfromhell.

mwparserfromhell backtracks on unclosed constructs: 60 kB of unclosed ``{|`` tables took over 60 s,
growing faster than the page. Everything that is dropped anyway (comments, extension tags such as
``<ref>`` with their content, tables, file links with their captions) is cut here by scans that visit
each token once; formatting tags (``<span>``, ``<div>``, ...) are removed keeping their content, so
50,000 nested ``<span>`` never reach the parser's nesting limit. The parser then sees the text in
pieces of at most :data:`PARSER_PIECE_CHARS` (cut at paragraph or line ends), which bounds its
cost per piece: the whole conversion is linear in the page size.
"""

from __future__ import annotations

import re
from collections import Counter

#: work counters of the last conversions (parser input characters, largest piece): tests check that
#: they grow linearly with the page; cleared by the caller
COST: Counter = Counter()

#: the parser never sees more than this many characters at once
PARSER_PIECE_CHARS = 8_000

# extension / HTML tags dropped with their content (their content is raw up to the first closing tag)
DROP_TAGS = (
    "ref", "references", "table", "gallery", "math", "chem", "ce", "timeline", "imagemap", "score",
    "graph", "templatedata", "mapframe", "maplink", "hiero", "inputbox", "categorytree", "style",
    "script", "includeonly", "indicator", "templatestyles", "section",
)
_NAMES = "|".join(DROP_TAGS)
# an opening or self-closing tag, or a clean closing tag ("</ref name=x>" inside a reference is not one)
_DROP_TOKEN = re.compile(r"<(?:()(%s)\b[^<>]*?(/?)>|(/)(%s)\s*>)" % (_NAMES, _NAMES), re.I)

# HTML tags whose content is prose: the tags go, the content stays (block tags leave a line end)
_BLOCK_TAGS = ("div", "p", "br", "hr", "center", "blockquote", "li", "ul", "ol", "dl", "dt", "dd", "tr", "td", "th",
               "h1", "h2", "h3", "h4", "h5", "h6", "poem")
_INLINE_TAGS = ("span", "font", "small", "big", "sup", "sub", "b", "i", "u", "s", "strike", "em", "strong", "abbr",
                "cite", "code", "tt", "var", "kbd", "samp", "bdi", "bdo", "mark", "q", "ins", "del", "dfn", "time",
                "data", "wbr", "rb", "rp", "rt", "ruby", "nowiki", "onlyinclude", "caption", "thead", "tbody",
                "tfoot", "col", "colgroup")
_BLOCK_TAG = re.compile(r"</?(?:%s)\b[^<>]*>" % "|".join(_BLOCK_TAGS), re.I)
_INLINE_TAG = re.compile(r"</?(?:%s)\b[^<>]*>" % "|".join(_INLINE_TAGS), re.I)
# any tag of these names left over after parsing (stray or malformed)
LEFTOVER_TAG = re.compile(r"</?(?:%s)\b[^<>\n]{0,300}?/?>" % "|".join(DROP_TAGS + _BLOCK_TAGS + _INLINE_TAGS), re.I)
# image options left over from a file link that could not be removed whole ("thumb|250px|...")
LEFTOVER_FILE_OPTIONS = re.compile(
    r"(?:\b(?:file|image|datei|fichier|archivo|файл|изображение):[^|\n\]]*\|)?"
    r"(?:(?:thumb|thumbnail|frame|frameless|framed|border|left|right|center|centre|none|baseline|middle|"
    r"upright(?:=[\d.]+)?|\d+(?:x\d+)?px|x\d+px|(?:alt|link|page|class|lang)=[^|\n\]]*)\s*\|)+",
    re.I,
)


def drop_tag_blocks(text: str) -> str:
    """Drop ``<ref>...</ref>``, ``<gallery>...</gallery>``, ... with their content; a tag without its
    closing tag is dropped alone (its content stays)."""
    if "<" not in text:
        return text
    tokens = list(_DROP_TOKEN.finditer(text))
    COST["scan_tokens"] += len(tokens)
    if not tokens:
        return text
    closes: dict[str, list[int]] = {}
    for i, m in enumerate(tokens):
        if m.group(4):
            closes.setdefault(m.group(5).lower(), []).append(i)
    next_close = {name: 0 for name in closes}  # per name, index into closes[name]: moves forward only
    out, pos, i = [], 0, 0
    while i < len(tokens):
        m = tokens[i]
        out.append(text[pos : m.start()])
        pos = m.end()
        if m.group(4) or m.group(3):  # a stray closing tag or a self-closing one: the tag alone
            i += 1
            continue
        name = m.group(2).lower()
        lst = closes.get(name, [])
        k = next_close.get(name, 0)
        while k < len(lst) and lst[k] <= i:
            k += 1
        if name in next_close:
            next_close[name] = k
        if k == len(lst):  # never closed: drop the tag alone
            i += 1
            continue
        end = lst[k]
        pos = tokens[end].end()
        i = end + 1
    out.append(text[pos:])
    return "".join(out)


def strip_format_tags(text: str) -> str:
    """Remove formatting tags, keeping what they enclose (block tags become a line end)."""
    if "<" not in text:
        return text
    return _INLINE_TAG.sub("", _BLOCK_TAG.sub("\n", text))


_TABLE_OPEN = re.compile(r"^[ \t:]*\{\|")
_TABLE_CLOSE = re.compile(r"^[ \t]*\|\}")
_HEADING_LINE = re.compile(r"^=+[^=\n].*=+[ \t]*$")


def drop_tables(wikitext: str) -> str:
    """Remove ``{| ... |}`` tables line by line (nesting aware). When a table never closes, tables end
    at the next heading (or at the end of the page): dropped, not left to the parser."""
    if "{|" not in wikitext:
        return wikitext
    lines = wikitext.split("\n")
    COST["scan_tokens"] += len(lines)
    out, depth = _drop_table_lines(lines, headings_close=False)
    if depth:  # an unclosed table: again, with section headings closing open tables
        COST["scan_tokens"] += len(lines)
        out, _ = _drop_table_lines(lines, headings_close=True)
    return "\n".join(out)


def _drop_table_lines(lines: list[str], headings_close: bool) -> tuple[list[str], int]:
    out, depth = [], 0
    for line in lines:
        if _TABLE_OPEN.match(line):
            depth += 1
        elif depth and _TABLE_CLOSE.match(line):
            depth -= 1
            continue
        elif depth and headings_close and _HEADING_LINE.match(line):
            depth = 0
        if not depth:
            out.append(line)
    return out, depth


_LINK_TOKEN = re.compile(r"\[\[|\]\]")


def drop_file_links(wikitext: str, prefixes: frozenset[str]) -> str:
    """Remove ``[[File:...|thumb|250px|caption with [[links]]]]`` whole (nested links included). A
    file link that never closes is removed to the end of its line."""
    if "[[" not in wikitext:
        return wikitext
    stack: list[tuple[int, bool]] = []
    spans: list[tuple[int, int]] = []
    n_tokens = 0
    for m in _LINK_TOKEN.finditer(wikitext):
        n_tokens += 1
        if m.group() == "[[":
            head = wikitext[m.end() : m.end() + 40].lstrip()
            name, colon, _ = head.partition(":")
            stack.append((m.start(), bool(colon) and name.strip().lower() in prefixes))
        elif stack:
            start, is_file = stack.pop()
            if is_file:
                while spans and spans[-1][0] >= start:
                    spans.pop()
                spans.append((start, m.end()))
    COST["scan_tokens"] += n_tokens
    for start, is_file in stack:  # unclosed file links: to the end of the line
        if is_file and not (spans and spans[-1][0] <= start < spans[-1][1]):
            end = wikitext.find("\n", start)
            spans.append((start, len(wikitext) if end < 0 else end))
    if not spans:
        return wikitext
    spans.sort()
    out, pos = [], 0
    for start, end in spans:
        if start < pos:  # inside a span already removed
            continue
        out.append(wikitext[pos:start])
        pos = end
    out.append(wikitext[pos:])
    return "".join(out)


def pieces(text: str, size: int = PARSER_PIECE_CHARS) -> list[str]:
    """``text`` cut into pieces of at most ``size`` characters, at paragraph ends, else line ends,
    else spaces (else anywhere); ``"".join(pieces(text)) == text``."""
    out: list[str] = []
    pos, n = 0, len(text)
    while n - pos > size:
        window_end = pos + size
        cut = -1
        for sep in ("\n\n", "\n", " "):
            k = text.rfind(sep, pos + 1, window_end)
            if k > pos:
                cut = k + len(sep)
                break
        if cut <= pos:
            cut = window_end
        out.append(text[pos:cut])
        pos = cut
    if pos < n or not out:
        out.append(text[pos:])
    return out


__all__ = ["COST", "PARSER_PIECE_CHARS", "DROP_TAGS", "drop_tag_blocks", "strip_format_tags", "drop_tables",
           "drop_file_links", "pieces", "LEFTOVER_TAG", "LEFTOVER_FILE_OPTIONS"]
