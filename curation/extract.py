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


_VOID_KEYS = [int.from_bytes(v, "little") for v in _VOID]


def nesting_depth(html: str | bytes, stop_at: int = MAX_MAIN_CONTENT_DEPTH + 1) -> int:
    """Approximate maximum element nesting depth (opening minus closing tags, void and self-closing
    elements ignored, never below 0), capped at ``stop_at``; 0 when it cannot reach ``stop_at``."""
    lt, close, bang = ("<", "</", "<!") if isinstance(html, str) else (b"<", b"</", b"<!")
    n_lt = html.count(lt)
    # each increment is a "<" that is not "</" or "<!": with fewer of those than stop_at the depth is
    # below it (skips the scan on all real pages but one of the 17 in the shared WARCs, which has 7,542 "<")
    if n_lt < stop_at or n_lt - html.count(close) - html.count(bang) < stop_at:
        return 0
    return depth_scan(html, stop_at)


def depth_scan(html: str | bytes, stop_at: int) -> int:
    """The depth of the tags ``_TAG.finditer`` finds (a tag runs from ``<`` + name to the first ``>``),
    capped at ``stop_at``, computed with a few numpy array operations instead of one Python step per tag."""
    import numpy as np

    data = html.encode("utf-8", "surrogatepass") if isinstance(html, str) else html
    buf = np.frombuffer(data + bytes(10), np.uint8)  # padded: windows past the end read zeros
    lt = np.flatnonzero(buf == ord("<"))
    gt = np.flatnonzero(buf == ord(">"))
    closing = buf[lt + 1] == ord("/")
    name_at = lt + 1 + closing
    end = np.searchsorted(gt, lt)  # index of the first ">" after each "<"
    ok = (((buf[name_at] | 0x20) - ord("a")) < 26) & (end < len(gt))  # uint8: wraps below "a"
    # a match ends at its first ">" and the next starts after it: of the candidates sharing a ">", the
    # first is the match
    end, closing, name_at = end[ok], closing[ok], name_at[ok]
    first = np.ones(len(end), bool)
    first[1:] = end[1:] != end[:-1]
    end, closing, name_at = end[first], closing[first], name_at[first]
    # void elements: the lower-cased name (up to 7 bytes; longer names are no void element) as an integer
    win = buf[name_at[:, None] + np.arange(8)]
    low = win | 0x20
    letter = (low - ord("a")) < 26
    inside = np.logical_and.accumulate(letter | ((win - ord("0")) < 10), axis=1)
    win = np.where(letter & inside, low, np.where(inside, win, 0))
    key = np.ascontiguousarray(win).view("<u8").ravel()
    void = (key[:, None] == np.array(_VOID_KEYS, np.uint64)).any(axis=1) & ~inside[:, 7]
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
