"""Pre-token counts for BPE training, at C speed: coarse chunks first, the split regex once per distinct chunk.

A document is cut at every space that follows a non-whitespace character (``str.split(" ")``, the other
spaces masked first). No pre-token of :data:`bpe.SPLIT_PATTERN` crosses such a cut and the pattern has no
look-behind, so splitting each chunk alone gives the same pre-tokens as splitting the whole document.
Chunks are counted with ``Counter`` (C); only *distinct* chunks go through the regex, in a few calls
(`` word``, the most common kind, is one pre-token: no regex at all). Counts are Python integers (no
overflow). Memory: the distinct pre-tokens with their counts, plus the distinct chunks of the current
window (folded into pre-tokens every ``window_bytes`` characters of text)."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable

import numpy as np

from corpusmill.tokenizer.bpe import SPLIT_PATTERN

# A space that does not start a chunk: one after whitespace (Python's \s is a superset of Unicode's
# White_Space, so a cut is never made where the split pattern could continue) or at the start. Such spaces
# are replaced by _KEEP (when the document has none) before str.split(" "), and put back in distinct chunks.
_BAD_SPACE = re.compile(r" (?<=\s )")  # starts with the literal: C-speed search
_KEEP = "\x00"
# The split pattern for pure-ASCII chunks in Python's own regex engine (twice as fast as the regex
# module's): for ASCII text \p{L} = [A-Za-z], \p{N} = [0-9] and \s = [\t\n\v\f\r ]. Possessive
# quantifiers need Python >= 3.11; before that the regex module splits everything.
_ASCII_PATTERN = (SPLIT_PATTERN.replace(r"\p{L}\p{N}", "A-Za-z0-9").replace(r"\p{L}+", "[A-Za-z]+")
                  .replace(r"\p{N}{1,3}", "[0-9]{1,3}"))
try:
    _ASCII_SPLIT = re.compile(_ASCII_PATTERN, re.ASCII).findall if r"\p" not in _ASCII_PATTERN else None
except re.error:
    _ASCII_SPLIT = None
# Distinct chunks are split in one call per group, joined by a tab: between a chunk's last character
# (not whitespace) and the next chunk's leading space, a tab is always a pre-token of its own.
_SEP = "\t"


class PretokenCounter:
    """Feed texts with :meth:`update`; :meth:`arrays` gives the distinct pre-tokens as bytes + counts."""

    def __init__(self, window_bytes: int = 256_000_000):
        import regex  # the split pattern needs \p{..} and possessive quantifiers

        self._split = regex.compile(SPLIT_PATTERN).findall
        self.window_bytes = window_bytes
        self.chunks: Counter = Counter()  # piece -> count; the chunk is " " + piece (_KEEP -> " ")
        self.first: Counter = Counter()  # a document's first piece: the chunk is the piece itself
        self.pretokens: dict[str, int] = {}
        self._pending = 0
        self.texts = 0

    def update(self, texts: Iterable[str]) -> None:
        chunks, first, bad, sub = self.chunks, self.first, _BAD_SPACE.search, _BAD_SPACE.sub
        pt = self.pretokens
        n = 0
        for t in texts:
            if not t:
                continue
            n += len(t)
            self.texts += 1
            if _KEEP in t:  # rare: the regex over the whole document
                for tok in self._split(t):
                    pt[tok] = pt.get(tok, 0) + 1
                continue
            if t[0] == " " or bad(t):
                t = sub(_KEEP, t)
                if t[0] == " ":
                    t = _KEEP + t[1:]
                pieces = t.split(" ")
            else:
                pieces = t.split(" ")
            chunks.update(pieces)
            p0 = pieces[0]
            chunks[p0] -= 1
            first[p0] += 1
        self._pending += n
        if self._pending >= self.window_bytes:
            self.fold()

    def _add_split(self, chunks: list[str], counts: list[int], split) -> None:
        """Split the chunks (each starts with a space followed by a non-space, ends with a non-space, has
        no tab) in one call and add their pre-tokens' counts."""
        if not chunks:
            return
        pt = self.pretokens
        get = pt.get
        toks = split(_SEP.join(chunks))
        if toks.count(_SEP) != len(chunks) - 1:  # never expected; stay exact anyway
            for ch, c in zip(chunks, counts):
                for tok in self._split(ch):
                    pt[tok] = get(tok, 0) + c
            return
        i, c = 0, counts[0]
        for tok in toks:
            if tok == _SEP:
                i += 1
                c = counts[i]
            else:
                pt[tok] = get(tok, 0) + c

    def fold(self) -> None:
        """Split the distinct chunks of the window into pre-tokens and add their counts."""
        pt, split = self.pretokens, self._split
        get = pt.get
        asc, asc_c, uni, uni_c = [], [], [], []
        for piece, c in self.chunks.items():
            if c <= 0:
                continue
            if piece.isalpha():  # " " + letters: one pre-token
                key = " " + piece
                pt[key] = get(key, 0) + c
            elif piece and _KEEP not in piece and _SEP not in piece and not piece[0].isspace() and not piece[-1].isspace():
                if piece.isascii() and _ASCII_SPLIT is not None:
                    asc.append(" " + piece)
                    asc_c.append(c)
                else:
                    uni.append(" " + piece)
                    uni_c.append(c)
            else:
                for tok in split(" " + piece.replace(_KEEP, " ")):
                    pt[tok] = get(tok, 0) + c
        self._add_split(asc, asc_c, _ASCII_SPLIT)
        self._add_split(uni, uni_c, split)
        for piece, c in self.first.items():
            piece = piece.replace(_KEEP, " ")
            if piece.isalpha():
                pt[piece] = get(piece, 0) + c
            elif piece:
                for tok in split(piece):
                    pt[tok] = get(tok, 0) + c
        self.chunks.clear()
        self.first.clear()
        self._pending = 0

    def arrays(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(UTF-8 bytes of all distinct pre-tokens concatenated as uint8, int64 offsets (n + 1), int64 counts)."""
        self.fold()
        enc = [t.encode("utf-8", "surrogatepass") for t in self.pretokens]
        counts = np.fromiter(self.pretokens.values(), dtype=np.int64, count=len(enc))
        offsets = np.zeros(len(enc) + 1, dtype=np.int64)
        np.cumsum(np.fromiter(map(len, enc), dtype=np.int64, count=len(enc)), out=offsets[1:])
        flat = np.frombuffer(b"".join(enc), dtype=np.uint8)
        return flat, offsets, counts


def count_pretokens(texts: Iterable[str]) -> dict[str, int]:
    """Pre-token counts of ``texts`` (what a BPE trainer that runs the split regex on every document counts)."""
    c = PretokenCounter()
    c.update(texts)
    c.fold()
    return c.pretokens
