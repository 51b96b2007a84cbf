"""Text normalisation and word n-gram shingles for deduplication, vectorised with numpy.

Normalisation (FineWeb / datatrove style, see ``docs/dedup.md``): two texts that differ only in case,
punctuation, digits, accents or spacing normalise to the same word sequence. :func:`normalize_codepoints`
applies, in this order:

1. Unicode compatibility decomposition (NFKD), so that accents become separate combining marks,
   ligatures and full-width forms fold (``ﬁ`` -> ``fi``, ``Ｂ`` -> ``B``);
2. lower case, code point by code point (Greek final sigma is not special-cased);
3. every code point is classified with a table built from ``unicodedata.category``:

   - combining marks (``Mn``: the diacritics of step 1) and format characters (``Cf``: soft hyphen,
     zero-width joiner, byte-order mark) are deleted;
   - decimal digits (``Nd``, any script) are digits: a maximal run of digits, including the separators
     ``. , ، ٫ ⎖ ⎗ ⎘`` *between* two digits (``3.14``, ``1,234,567``), becomes one ``0``;
   - punctuation (``P*``), symbols (``S*``), control characters (``Cc``) and separators (``Z*``) become
     spaces;
   - everything else (letters, ``Mc``/``Me`` marks, numbers that are not decimal digits, private use)
     is kept;
4. runs of spaces collapse to one space; leading and trailing spaces go.

The result is a sequence of words separated by single spaces (:func:`normalize_text`).

Steps 1-3 are one table look-up per code point (tables built once per process from ``unicodedata``);
the loops run compiled (numba, :mod:`corpusmill.curation.dedup.kernels`) or, as a fallback, in numpy. Only a
text holding a character that decomposes into several non-punctuation characters (``ﬁ``, ``½``,
``™``, Hangul syllables) is NFKD-normalised as a string first.

Differences from datatrove's ``simplify_text``: datatrove strips a fixed list of ~100 punctuation
characters, we strip whole Unicode categories; a digit group with several separators becomes one ``0``
(datatrove: ``0 0``); words are whitespace-separated (datatrove splits with spaCy's language tokenizer,
about 50x slower). For scripts written without spaces (Chinese, Japanese, Thai) a "word" is then a
whole phrase and MinHash on such text is coarse: a known limitation.

Shingles (:func:`shingle_hashes`): the word n-grams (n = 5 by default) of the normalised text, each
hashed to 64 bits as the *string* ``"w1 w2 w3 w4 w5"`` without ever building it: every code point c is
mapped to ``v(c) = fmix64(c + 0x9E3779B97F4A7C15)``, a string ``c_0..c_{L-1}`` hashes to
``fmix64(sum_i v(c_i) * M**(L-1-i) mod 2**64)`` with ``M = 0x9E3779B97F4A7C15`` (a polynomial hash,
computed for every window at once from one prefix sum, as in Rabin-Karp) and ``fmix64`` is the
MurmurHash3 64-bit finaliser. A text with fewer than n words (but at least one) has one shingle, its
whole normalised text, so short pages still deduplicate; an empty normalised text has none.
"""

from __future__ import annotations

import sys
import unicodedata

import numpy as np

from corpusmill.curation.dedup.kernels import jit_kernels

__all__ = [
    "normalize_codepoints",
    "normalize_text",
    "normalize_words",
    "shingle_hashes",
    "shingles_from_codepoints",
    "codepoints_to_text",
    "fmix64",
]

U64 = np.uint64
U32 = np.uint32

# code point classes
# (odd classes become spaces once digit runs are resolved: a separator outside a number is a space)
_KEEP, _SPACE, _DELETE, _DIGIT, _DIGIT_SEP, _EXPAND = 0, 1, 2, 4, 5, 8
_DIGIT_SEPARATORS = ".,\u060c\u066b\u2396\u2397\u2398"
_SPACE_CP = 32
_ZERO_CP = 48
# planes 4-13 hold no assigned character, 15-16 only private use: their code points map to themselves
_TABLE_RANGES = ((0, 0x40000), (0xE0000, 0xE1000))

_MAP: np.ndarray | None = None
_CLASS: np.ndarray | None = None


def _category_class(cat: str) -> int:
    if cat == "Nd":
        return _DIGIT
    if cat == "Mn" or cat == "Cf":
        return _DELETE
    if cat[0] in "PSZ" or cat == "Cc":
        return _SPACE
    return _KEEP


def _tables() -> tuple[np.ndarray, np.ndarray]:
    """Per code point: the character it normalises to (``MAP``) and its class (``CLASS``).

    ``MAP[c]`` is ``lower(NFKD(c) without combining marks)`` when that is one character; a character
    whose decomposition is several characters is ``_EXPAND`` (the text is then NFKD-normalised as a
    string first) unless all of them become spaces (``…`` -> ``...``: ``_SPACE``). Built once per
    process (~1 s)."""
    global _MAP, _CLASS
    if _MAP is None:
        size = sys.maxunicode + 1
        cmap = np.arange(size, dtype=U32)
        ccls = np.zeros(size, dtype=np.uint8)
        cat, norm = unicodedata.category, unicodedata.normalize
        for lo, hi in _TABLE_RANGES:
            for cp in range(lo, hi):
                ch = chr(cp)
                c = cat(ch)
                if c == "Cn" or c == "Co" or c == "Cs":
                    continue
                if cp < 128:
                    low = ch.lower()
                else:
                    d = norm("NFKD", ch)
                    if len(d) > 1 or d != ch:
                        d = "".join(x for x in d if cat(x) != "Mn")
                    low = d.lower()
                if len(low) == 1:
                    cmap[cp] = ord(low)
                    ccls[cp] = _category_class(cat(low))
                elif len(low) == 0:
                    ccls[cp] = _DELETE
                elif all(_category_class(cat(x)) in (_SPACE, _DELETE) for x in low):
                    ccls[cp] = _SPACE
                else:
                    ccls[cp] = _EXPAND
        for ch in _DIGIT_SEPARATORS:
            ccls[ord(ch)] = _DIGIT_SEP
        _MAP, _CLASS = cmap, ccls
    return _MAP, _CLASS


def _to_codepoints(text: str) -> np.ndarray:
    try:
        raw = text.encode("utf-32-le")
    except UnicodeEncodeError:  # lone surrogates (broken input): keep them as code points
        raw = text.encode("utf-32-le", "surrogatepass")
    return np.frombuffer(raw, dtype=U32)


def _normalize_array(cp: np.ndarray, cls: np.ndarray) -> np.ndarray:
    """Steps 2-4 on code points whose decompositions are done (all but the final strip)."""
    cmap = _tables()[0]
    out = np.take(cmap, cp)
    digit = cls == _DIGIT
    if digit.any():
        if (cls == _DIGIT_SEP).any():  # a separator between two digits belongs to the number
            digit[1:-1] |= (cls[1:-1] == _DIGIT_SEP) & digit[:-2] & digit[2:]
        np.copyto(out, _ZERO_CP, where=digit)
        # a digit (or inner separator) right after another is deleted; the first one stays, as a letter
        cont = np.empty_like(digit)
        cont[0] = False
        np.logical_and(digit[1:], digit[:-1], out=cont[1:])
        cls = np.where(digit, np.uint8(_KEEP), cls)
        np.copyto(cls, np.uint8(_DELETE), where=cont)
    drop = cls == _DELETE
    if drop.any():
        keep = ~drop
        out = out[keep]
        cls = cls[keep]
    space = (cls & 1).view(bool)
    np.copyto(out, _SPACE_CP, where=space)
    # collapse spaces: keep a space only when the previous character is not one (drops leading ones)
    keep2 = ~space
    keep2[1:] |= keep2[:-1].copy()
    return out[keep2]


def normalize_codepoints(text: str) -> np.ndarray:
    """The normalised text as a uint32 array of code points (words separated by single spaces)."""
    cmap, ccls = _tables()
    cp = _to_codepoints(text)
    if cp.size == 0:
        return cp
    jit = jit_kernels()
    if jit is not None:
        z, expand = jit.normalize(cp, cmap, ccls, not text.isascii())
        if expand:
            z, _ = jit.normalize(_to_codepoints(unicodedata.normalize("NFKD", text)), cmap, ccls, False)
        return z
    cls = np.take(ccls, cp)
    if not text.isascii() and (cls == _EXPAND).any():
        cp = _to_codepoints(unicodedata.normalize("NFKD", text))
        cls = np.take(ccls, cp)
    z = _normalize_array(cp, cls)
    if z.size and z[-1] == _SPACE_CP:
        z = z[:-1]
    return z


def codepoints_to_text(z: np.ndarray) -> str:
    return z.astype(U32, copy=False).tobytes().decode("utf-32-le", "surrogatepass")


def normalize_text(text: str) -> str:
    """Normalised text: lower case, no punctuation/accents, digit runs -> ``0``, single spaces."""
    return codepoints_to_text(normalize_codepoints(text))


def normalize_words(text: str) -> list[str]:
    return normalize_text(text).split(" ") if text else []


# --- hashing -----------------------------------------------------------------------------------------

_GOLDEN = U64(0x9E3779B97F4A7C15)
_M = U64(0x9E3779B97F4A7C15)
_M_INV = U64(pow(0x9E3779B97F4A7C15, -1, 1 << 64))
_FMIX_C1 = U64(0xFF51AFD7ED558CCD)
_FMIX_C2 = U64(0xC4CEB9FE1A85EC53)
_S33 = U64(33)


def fmix64(h: np.ndarray) -> np.ndarray:
    """MurmurHash3's 64-bit finaliser, in place on a uint64 array (a bijection mixing every bit)."""
    with np.errstate(over="ignore"):
        h ^= h >> _S33
        h *= _FMIX_C1
        h ^= h >> _S33
        h *= _FMIX_C2
        h ^= h >> _S33
    return h


_CHAR_VALUE: np.ndarray | None = None
_POW = np.ones(1, dtype=U64)  # M**i
_INV_POW = np.ones(1, dtype=U64)  # M**-i


def _char_values() -> np.ndarray:
    global _CHAR_VALUE
    if _CHAR_VALUE is None:
        with np.errstate(over="ignore"):
            _CHAR_VALUE = fmix64(np.arange(sys.maxunicode + 1, dtype=U64) + _GOLDEN)
    return _CHAR_VALUE


def _powers(n: int) -> tuple[np.ndarray, np.ndarray]:
    global _POW, _INV_POW
    if _POW.size < n:
        size = max(n, 2 * _POW.size, 1 << 16)
        with np.errstate(over="ignore"):
            p = np.full(size, _M, dtype=U64)
            p[0] = 1
            _POW = np.cumprod(p, dtype=U64)
            q = np.full(size, _M_INV, dtype=U64)
            q[0] = 1
            _INV_POW = np.cumprod(q, dtype=U64)
    return _POW, _INV_POW


def shingles_from_codepoints(z: np.ndarray, n: int = 5, *, unique: bool = True) -> np.ndarray:
    """64-bit hashes of the word n-grams of a normalised code point array (see module docstring).

    Returns a sorted array of distinct hashes (the shingle set) unless ``unique=False`` (then in text
    order, with repeats)."""
    L = int(z.size)
    if L == 0:
        return np.empty(0, dtype=U64)
    jit = jit_kernels()
    if jit is not None:
        pw, ipw = _powers(L)
        h = jit.shingles(z, _char_values(), pw, ipw, n)
        return sorted_unique(h) if unique else h
    spaces = np.nonzero(z == _SPACE_CP)[0]
    n_words = spaces.size + 1
    if n_words <= n:
        starts = np.zeros(1, dtype=np.int64)
        ends = np.full(1, L, dtype=np.int64)
    else:
        # window k covers words k..k+n-1: from the start of word k to the end of word k+n-1
        starts = np.empty(n_words - n + 1, dtype=np.int64)
        starts[0] = 0
        starts[1:] = spaces[: n_words - n] + 1
        ends = np.empty(n_words - n + 1, dtype=np.int64)
        ends[:-1] = spaces[n - 1 :]
        ends[-1] = L
    pw, ipw = _powers(L)
    with np.errstate(over="ignore"):
        w = np.take(_char_values(), z)
        w *= ipw[:L]
        prefix = np.empty(L + 1, dtype=U64)
        prefix[0] = 0
        np.cumsum(w, out=prefix[1:])
        h = prefix[ends] - prefix[starts]
        h *= pw[ends - 1]
        fmix64(h)
    return sorted_unique(h) if unique else h


def sorted_unique(h: np.ndarray) -> np.ndarray:
    """Sorted distinct values (``np.unique`` is hash-based and several times slower on uint64)."""
    if h.size < 2:
        return h
    h.sort()
    keep = np.empty(h.size, dtype=bool)
    keep[0] = True
    np.not_equal(h[1:], h[:-1], out=keep[1:])
    return h[keep]


def shingle_hashes(text: str, n: int = 5) -> np.ndarray:
    """Sorted distinct 64-bit hashes of the normalised word n-grams of ``text``."""
    return shingles_from_codepoints(normalize_codepoints(text), n)
