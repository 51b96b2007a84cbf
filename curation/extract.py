"""HTML -> main text, for documents a reader marked ``needs_extraction`` (the ``warc`` reader).

``extractor: resiliparse`` (default; ``extract_plain_text`` with ``main_content=True``) or
``extractor: trafilatura`` (its defaults, no comments, no cross-document deduplication); extra keyword
options go to the chosen library function as is. Other documents pass through untouched; a page with no
main text left is dropped as ``empty_extraction``. Never fetches anything. Settings, why not
``favor_precision``, and the measured speed: docs/filters.md, "HTML extraction".
"""

from __future__ import annotations

import re

from typing import Any, Callable

from datatrove.data import Document

from corpusmill.curation.stage import Transform

NEEDS_EXTRACTION = "needs_extraction"
EXTRACTORS = ("resiliparse", "trafilatura")

_RESILIPARSE_DEFAULTS = {
    "main_content": True,
    "alt_texts": False,
    "links": False,
    "form_fields": False,
    "noscript": False,
    "list_bullets": True,
    "preserve_formatting": True,
}
#: deeper than this, resiliparse runs without main-content detection (see Extract.setup); real pages
#: rarely nest more than a few dozen levels
MAX_MAIN_CONTENT_DEPTH = 1000
_TAG = re.compile(rb"<(/?)([A-Za-z][A-Za-z0-9]*)[^>]*?(/?)>")
_VOID = frozenset(b"area base br col embed hr img input link meta param source track wbr".split())


def depth_scan_regex(html: str | bytes, stop_at: int) -> int:
    """The reference scan :func:`depth_scan` is tested against: one Python step per tag."""
    data = html.encode("utf-8", "surrogatepass") if isinstance(html, str) else html
    depth = best = 0
    for m in _TAG.finditer(data):
        if m.group(3) or m.group(2).lower() in _VOID:
            continue
        if m.group(1):
            depth = max(0, depth - 1)
        else:
            depth += 1
            if depth > best:
                best = depth
                if best >= stop_at:
                    break
    return best


def _void_tables():
    """Void names indexed by their first two (lower-case) bytes, which no two share: a 65,536-entry table
    of name numbers, then per number its bytes, byte mask and length in bits; and an is-alphanumeric table."""
    import numpy as np

    names = sorted(_VOID)
    first2 = np.zeros(1 << 16, np.uint8)
    for k, v in enumerate(names, 1):
        first2[int.from_bytes(v[:2], "little")] = k
    assert len(set(v[:2] for v in names)) == len(names)
    key = np.array([0] + [int.from_bytes(v, "little") for v in names], np.uint64)
    mask = np.array([0] + [(1 << 8 * len(v)) - 1 for v in names], np.uint64)
    shift = np.array([0] + [8 * len(v) for v in names], np.uint64)
    alnum = np.zeros(256, bool)
    alnum[list(b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789")] = True
    return first2, key, mask, shift, alnum


_VOID_TABLES = None


def nesting_depth(html: str | bytes, stop_at: int = MAX_MAIN_CONTENT_DEPTH + 1) -> int:
    """Approximate maximum element nesting depth (opening minus closing tags, void and self-closing
    elements ignored, never below 0), capped at ``stop_at``; 0 when it cannot reach ``stop_at``."""
    lt, close, bang = ("<", "</", "<!") if isinstance(html, str) else (b"<", b"</", b"<!")
    n_lt = html.count(lt)
    if n_lt < stop_at:
        return 0
    # each increment is a "<" that is not "</" or "<!": with fewer of those than stop_at the depth is
    # below it (clears every real page of the shared WARCs but one, which has 7,542 "<")
    n_open = n_lt - html.count(close)
    if n_open < stop_at or n_open - html.count(bang) < stop_at:
        return 0
    return depth_scan(html, stop_at)


def depth_scan(html: str | bytes, stop_at: int) -> int:
    """The depth of the tags ``_TAG.finditer`` finds (a tag runs from ``<`` + name to the first ``>``),
    capped at ``stop_at``, computed with a few numpy array operations instead of one Python step per tag."""
    import numpy as np

    global _VOID_TABLES
    if _VOID_TABLES is None:
        _VOID_TABLES = _void_tables()
    first2, vkey, vmask, vshift, alnum = _VOID_TABLES
    data = html.encode("utf-8", "surrogatepass") if isinstance(html, str) else bytes(html)
    padded = data + bytes(16)  # windows past the end read zeros
    buf = np.frombuffer(padded, np.uint8)
    pos = np.flatnonzero((buf | 2) == ord(">"))  # every "<" and ">" (0x3c, 0x3e)
    is_gt = buf[pos] == ord(">")
    lt_at = np.flatnonzero(~is_gt)
    lt, end = pos[lt_at], np.cumsum(is_gt)[lt_at]  # end: index of the first ">" after each "<"
    gt = pos[is_gt]
    closing = buf[lt + 1] == ord("/")
    name_at = lt + 1 + closing
    ok = (((buf[name_at] | 0x20) - ord("a")) < 26) & (end < len(gt))  # uint8: wraps below "a"
    # a match ends at its first ">" and the next starts after it: of the candidates sharing a ">", the
    # first is the match
    end, closing, name_at = end[ok], closing[ok], name_at[ok]
    first = np.ones(len(end), bool)
    first[1:] = end[1:] != end[:-1]
    end, closing, name_at = end[first], closing[first], name_at[first]
    # void elements: the 8 bytes at each name as one little-endian integer (an unaligned strided view);
    # its first two bytes, lower-cased, tell the only void name it can be; it is that name when the
    # name's bytes match and the next byte ends the name
    words = np.ndarray((len(data) + 8,), dtype="<u8", buffer=padded, strides=(1,))
    key = words[name_at]
    low = key | np.uint64(0x2020202020202020)  # lower case (void names are all letters)
    void = np.zeros(len(key), bool)
    cand = np.flatnonzero(first2[low & np.uint64(0xFFFF)])
    if len(cand):
        v = first2[low[cand] & np.uint64(0xFFFF)]
        hit = ((low[cand] & vmask[v]) == vkey[v]) & ~alnum[(key[cand] >> vshift[v]) & np.uint64(0xFF)]
        void[cand[hit]] = True
    keep = ~(void | (buf[gt[end] - 1] == ord("/")))  # self-closing: "/" right before the ">"
    closing = closing[keep]
    if not len(closing):
        return 0
    # depth never goes below 0: depth_k = S_k - min(0, min_{j<=k} S_j) for the plain prefix sums S
    s = np.cumsum(1 - 2 * closing.astype(np.int64))
    depth = s - np.minimum(np.minimum.accumulate(s), 0)
    return int(min(depth.max(), stop_at))


_TRAFILATURA_DEFAULTS = {
    "favor_precision": False,
    "include_comments": False,
    "include_tables": True,
    "include_images": False,
    "include_links": False,
    "deduplicate": False,
    "with_metadata": False,
}


def _parameters(extractor: str) -> set[str] | None:
    """Keyword options the library function takes (None if it cannot be told)."""
    import inspect

    if extractor == "resiliparse":
        from resiliparse.extract.html2text import extract_plain_text as fn
    else:
        from trafilatura import extract as fn
    try:
        params = inspect.signature(fn).parameters
    except (TypeError, ValueError):
        return None
    return {n for n, p in params.items() if n not in ("html", "filecontent") and p.kind is not p.VAR_KEYWORD}


class Extract(Transform):
    """Replace a web document's HTML by its main text."""

    name = "extract"

    def __init__(self, extractor: str = "resiliparse", **options: Any) -> None:
        if extractor not in EXTRACTORS:
            raise TypeError(f"extractor must be one of {', '.join(EXTRACTORS)}, got {extractor!r}")
        self.extractor = extractor
        defaults = _RESILIPARSE_DEFAULTS if extractor == "resiliparse" else _TRAFILATURA_DEFAULTS
        allowed = _parameters(extractor)
        unknown = sorted(k for k in options if allowed is not None and k not in allowed)
        if unknown:
            raise TypeError(f"extract ({extractor}): unknown option(s) {', '.join(unknown)}")
        self.options = {**defaults, **options}
        self._fn: Callable[[str, str | None], str] | None = None

    def setup(self) -> None:
        if self._fn is not None:
            return
        if self.extractor == "resiliparse":
            from resiliparse.extract.html2text import extract_plain_text

            opts = self.options
            flat = {**opts, "main_content": False}

            def run(html: str, url: str | None) -> str:
                # resiliparse's main-content heuristics are quadratic in tag nesting depth (8k nested
                # <div>s: 1.2 s, 16k: 6 s, 100k: minutes); its plain extraction stays linear, so a
                # pathologically deep page is extracted without the boilerplate heuristics.
                if opts.get("main_content") and nesting_depth(html) > MAX_MAIN_CONTENT_DEPTH:
                    return extract_plain_text(html, **flat)
                return extract_plain_text(html, **opts)

        else:
            import trafilatura

            opts = self.options

            def run(html: str, url: str | None) -> str:
                return trafilatura.extract(html, url=url, **opts) or ""

        self._fn = run

    def extract(self, html: str, url: str | None = None) -> str:
        """Main text of one HTML page (stripped; may be empty)."""
        if self._fn is None:
            self.setup()
        assert self._fn is not None
        return (self._fn(html, url) or "").strip()

    def transform(self, doc: Document) -> str | None:
        if not doc.metadata.pop(NEEDS_EXTRACTION, False):
            return None
        text = self.extract(doc.text, doc.metadata.get("url"))
        doc.text = text
        if not text:
            return "empty_extraction"
        return None


__all__ = ["Extract", "NEEDS_EXTRACTION", "EXTRACTORS"]
