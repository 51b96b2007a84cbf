"""Per-document text statistics shared by every quality filter, computed once.

Why this module exists
----------------------
datatrove's heuristic filters each re-split the text: Gopher repetition, Gopher quality and FineWeb each ask
for the words (spaCy ``blank("en")`` tokenizer behind an ``lru_cache(5)``), C4 runs spaCy once *per line*
to count sentences, and the repetition filter builds every n-gram as a Python string. On the shared web text
that is ~0.1 MB/s. Here a document's words, lines and paragraphs are computed once and reused by all
filters, and the English word split is a fast re-implementation of spaCy's tokenizer that gives the
*same tokens*, so our decisions equal datatrove's (``tests/test_filters_parity_*.py`` check this on all the
shared web text, ``tests/test_filters_text_stats.py`` compares the word splits on real, generated and
arbitrary unicode text).

Where the cache lives (the choice)
----------------------------------
``doc.metadata["_cm_text_stats"]`` holds a :class:`TextStats`. It remembers the exact text it was built
for (identity check, then equality), so a stage that rewrites ``doc.text`` (C4 keeps only its good lines)
simply makes the next filter build fresh stats. We keep it in the document rather than in a process-wide
``lru_cache`` keyed by text because engines may run one stage over a whole batch before the next stage
(an LRU of a few texts would then always miss), and because it dies with the document. Keys starting with
``_`` are skipped by the corpusmill writer; :func:`drop_stats` removes it for any other consumer, and a
pickled document carries only an empty placeholder (``__reduce__``), never the word lists.

Word split
----------
* English (``metadata["language"]`` missing or ``"en"``/``"en-*"``, datatrove's default too):
  :class:`SpacyEnglishWords`, the algorithm of spaCy 3's ``Tokenizer`` (``tokenizer.pyx``: whitespace
  chunks, special cases, prefix / suffix / infix regexes, URL match, and the final special-case
  PhraseMatcher pass) driven by the rule tables of the installed ``spacy.blank("en")`` itself, with a
  per-chunk memo. Tokens are then stripped and blank ones dropped, as datatrove's ``strip_strings`` does.
  The rare document where a special-case pattern could straddle two whitespace chunks takes an exact,
  slower path over the whole token sequence.
* Any other language: :func:`generic_words` -- a regex split (``regex`` module), close to what spaCy does
  with affixes: each Han / Hiragana / Katakana character is a word of its own (these scripts do not put
  spaces between words); otherwise a word runs from a letter / mark / digit to the last letter / mark /
  digit of its whitespace-delimited chunk, keeping inner punctuation (``l'homme``, ``12,5``, ``e-mail``;
  and garbage such as mojibake stays one long "word"); punctuation, symbols and control characters at the
  edges are tokens, a run of one repeated character (``...``, ``!!``) being one token. Scripts without
  spaces and without a rule here (Thai, Lao, Khmer, Myanmar) get whitespace-delimited runs, i.e. phrases:
  a known limitation.
"""

from __future__ import annotations

import re
import threading
import unicodedata
from bisect import bisect_left
from collections import Counter
from itertools import accumulate, chain, compress
from typing import Any

import numpy as np
import regex  # (datatrove depends on it)
from datatrove.data import Document

CACHE_KEY = "_cm_text_stats"

# --------------------------------------------------------------------------------------------------
# spaCy blank("en") tokenizer, re-implemented
# --------------------------------------------------------------------------------------------------

_MISSING = object()
_MEMO_LIMIT = 150_000  # entries per memo generation (at most two generations are kept)


class _Memo(dict):
    """A dict that computes missing values, so ``map(memo.__getitem__, keys)`` runs at C speed on hits.

    Bounded with two generations: when it holds ``_MEMO_LIMIT`` entries they become the old generation
    and the memo starts empty; a key found in the old generation is copied back. Frequent keys survive,
    memory stays below two generations (~150 bytes an entry for a typical chunk)."""

    __slots__ = ("_fn", "_old")

    def __init__(self, fn) -> None:
        super().__init__()
        self._fn = fn
        self._old: dict = {}

    def __missing__(self, key):
        value = self._old.get(key, _MISSING)
        if value is _MISSING:
            value = self._fn(key)
        if len(self) >= _MEMO_LIMIT:
            self._old = dict(self)
            self.clear()
        self[key] = value
        return value


class SpacyEnglishWords:
    """Same segmentation as ``spacy.blank("en").tokenizer`` (spaCy 3.x), without building a ``Doc``.

    The control flow follows ``spacy/tokenizer.pyx`` (``_tokenize_affixes``, ``_split_affixes``,
    ``_attach_tokens``, ``_apply_special_cases``); the prefix / suffix / infix / URL regexes and the
    special cases are taken from the installed spaCy at first use, so a spaCy upgrade that changes the rules
    changes ours with it. Use :func:`english` for the shared instance.
    """

    def __init__(self) -> None:
        import spacy
        from spacy.attrs import intify_attrs
        from spacy.symbols import ORTH

        # the sentencizer's sentence-final characters (datatrove adds a default "sentencizer" pipe)
        from spacy.pipeline.sentencizer import Sentencizer

        tok = spacy.blank("en").tokenizer
        self.spacy_version = spacy.__version__
        self._prefix = tok.prefix_search
        self._suffix = tok.suffix_search
        self._infix = tok.infix_finditer
        # speed-ups that give the same matches, derived from the regexes themselves (None = not safe)
        self._suffix_window = _suffix_window(tok.suffix_search.__self__)
        self._infix_trigger = _first_char_class(tok.infix_finditer.__self__)
        from spacy.lang.en import English

        self._prefix_by_char = _AffixDispatch.build(tok.prefix_search.__self__, English.Defaults.prefixes, "prefix")
        self._suffix_by_char = _AffixDispatch.build(tok.suffix_search.__self__, English.Defaults.suffixes, "suffix")
        # chunks made only of ASCII letters (or only of ASCII digits) that are no special case are one
        # token, if no affix / infix alternative can match a string of such characters
        self._plain_alpha = self._no_affix_over(frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"))
        self._plain_digits = self._no_affix_over(frozenset("0123456789"))
        self._url = tok.url_match
        self._token_match = tok.token_match
        self.specials: dict[str, tuple[str, ...]] = {
            k: tuple(intify_attrs(s, _do_deprecated=True)[ORTH] for s in v) for k, v in tok.rules.items()
        }
        # special cases that the final PhraseMatcher pass looks for, as token sequences tokenized
        # without special cases (tokenizer.pyx add_special_case, faster_heuristics=True)
        patterns: dict[tuple[str, ...], str] = {}
        for s in self.specials:
            if self._find_prefix(s) or self._find_suffix(s) or list(self._infix(s)) or " " in s:
                toks = tuple(t[0] for t in self._tokenize_text(s, with_special=False))
                patterns[toks] = s
        self._patterns = patterns
        self._pattern_max = max(len(p) for p in patterns)
        self._pattern_first: dict[str, list[tuple[str, ...]]] = {}
        for p in patterns:
            self._pattern_first.setdefault(p[0], []).append(p)
        # adjacent token pairs of multi-token patterns: a pattern can only straddle two whitespace
        # chunks (separated by exactly one " ") at such a pair
        pairs = sorted({p[i : i + 2] for p in patterns for i in range(len(p) - 1)})
        self._straddle = re.compile("|".join(re.escape(a) + " " + re.escape(b) for a, b in pairs))
        self.punct_chars = frozenset(Sentencizer.default_punct_chars)
        self._punct_char_re = re.compile("[" + "".join(re.escape(c) for c in sorted(self.punct_chars)) + "]")
        self._memo = _Memo(self._compute_chunk_tokens)
        self._props = _Memo(self._compute_chunk_props)
        # chunks whose tokens the in-chunk special-case pass changed (e.g. "x:)" -> "x", ":)"); only
        # next to those can a pattern straddling two chunks change the result (by blocking that match)
        self._changed: set[str] = set()
        self._sent_memo = _Memo(self._compute_sent_transition)

    # -- the pieces of tokenizer.pyx ------------------------------------------------------------

    def _no_affix_over(self, chars: frozenset[str]) -> bool:
        """Whether no prefix, suffix or infix alternative can match inside a string made only of
        ``chars``: each alternative must need some character outside ``chars``."""
        pd, sd, trig = self._prefix_by_char, self._suffix_by_char, self._infix_trigger
        if pd is None or sd is None or trig is None or any(trig.match(ch) for ch in chars):
            return False
        p_, _ = _sre()
        for d in (pd, sd):
            for piece, cls in zip(d.pieces, d.classes):
                if cls is not None and not any(cls.match(ch) for ch in chars):
                    continue  # cannot even start (prefix) / end (suffix) with one of them
                if not _needs_char_outside(p_.parse(piece, d.flags), chars):
                    return False
        return True

    def _find_prefix(self, s: str) -> int:
        d = self._prefix_by_char
        rx = d.regex_for(s[0]) if (d is not None and s) else self._prefix
        if rx is None:
            return 0
        m = rx(s)
        return (m.end() - m.start()) if m is not None else 0

    def _find_suffix(self, s: str) -> int:
        d = self._suffix_by_char
        if d is not None and s and s[-1] != "\n":  # "$" also matches before a final newline
            rx = d.regex_for(s[-1])
            if rx is None:
                return 0
        else:
            rx = self._suffix
        k = self._suffix_window
        if k is not None and len(s) > k:
            # every alternative is "X$" with X at most k-1 characters long, or a run of one repeated
            # character; a match found inside the last k characters that does not start at the window's
            # first position is therefore the leftmost one, and no match inside means none at all
            m = rx(s, len(s) - k)
            if m is None:
                return 0
            if m.start() != len(s) - k:
                return m.end() - m.start()
        m = rx(s)
        return (m.end() - m.start()) if m is not None else 0

    def _split_affixes(self, string: str, with_special: bool) -> tuple[str, list[str], list[str]]:
        specials = self.specials
        prefixes: list[str] = []
        suffixes: list[str] = []
        last_size = 0
        while string and len(string) != last_size:
            if self._token_match is not None and self._token_match(string):
                break
            if with_special and string in specials:
                break
            last_size = len(string)
            pre_len = self._find_prefix(string)
            prefix = minus_pre = ""
            if pre_len != 0:
                prefix = string[:pre_len]
                minus_pre = string[pre_len:]
                if minus_pre and with_special and minus_pre in specials:
                    string = minus_pre
                    prefixes.append(prefix)
                    break
            suf_len = self._find_suffix(string[pre_len:])
            suffix = minus_suf = ""
            if suf_len != 0:
                suffix = string[-suf_len:]
                minus_suf = string[:-suf_len]
                if minus_suf and with_special and minus_suf in specials:
                    string = minus_suf
                    suffixes.append(suffix)
                    break
            if pre_len and suf_len and (pre_len + suf_len) <= len(string):
                string = string[pre_len:-suf_len]
                prefixes.append(prefix)
                suffixes.append(suffix)
            elif pre_len:
                string = minus_pre
                prefixes.append(prefix)
            elif suf_len:
                string = minus_suf
                suffixes.append(suffix)
        return string, prefixes, suffixes

    def _attach(self, string: str, prefixes: list[str], suffixes: list[str], with_special: bool) -> list[str]:
        out = list(prefixes)
        if string:
            if with_special and string in self.specials:
                out.extend(self.specials[string])
            elif (self._token_match is not None and self._token_match(string)) or (
                self._url is not None and self._url(string)
            ):
                out.append(string)
            else:
                trig = self._infix_trigger
                matches = list(self._infix(string)) if trig is None or trig.search(string) else []
                if not matches:
                    out.append(string)
                else:
                    start = 0
                    for m in matches:
                        a, b = m.start(), m.end()
                        if a == 0:  # == start_before_infixes
                            continue
                        if a != start:
                            out.append(string[start:a])
                        if a != b:
                            out.append(string[a:b])
                        start = b
                    if string[start:]:
                        out.append(string[start:])
        out.extend(reversed(suffixes))
        return out

    def _tokenize_chunk(self, chunk: str, with_special: bool) -> list[str]:
        """Tokens of one whitespace-free chunk, before the special-case matcher pass."""
        if with_special and chunk in self.specials:
            return list(self.specials[chunk])
        if chunk.isascii() and ((self._plain_alpha and chunk.isalpha()) or (self._plain_digits and chunk.isdigit())):
            return [chunk]  # proven at start-up: no prefix, suffix or infix can match such a chunk
        string, prefixes, suffixes = self._split_affixes(chunk, with_special)
        return self._attach(string, prefixes, suffixes, with_special)

    def _pre_tokens(self, chunk: str) -> tuple[str, ...]:
        return tuple(self._tokenize_chunk(chunk, True))

    def _tokenize_text(self, text: str, with_special: bool = True) -> list[tuple[str, bool, int]]:
        """``Tokenizer._tokenize_affixes``: (token, followed by one space, index of its whitespace-free
        chunk or -1 for a whitespace token) for every token, whitespace tokens kept."""
        out: list[tuple[str, bool, int]] = []
        if not text:
            return out
        tokenize = self._pre_tokens if with_special else (lambda c: self._tokenize_chunk(c, False))
        cid = 0
        for m in _WS_OR_NOT.finditer(text):
            span = m.group()
            if span[0].isspace():
                if span[0] == " " and out and m.start() > 0:
                    t, _, c = out[-1]
                    out[-1] = (t, True, c)
                    span = span[1:]
                if span:
                    out.extend([(t, False, -1) for t in tokenize(span)])
            else:
                out.extend([(t, False, cid) for t in tokenize(span)])
                cid += 1
        return out

    def _apply_special_matcher(self, toks: list[tuple[str, bool, int]]) -> list[tuple[str, int]]:
        """``Tokenizer._apply_special_cases`` over a token sequence: (token, chunk index) pairs."""
        n = len(toks)
        texts = [t[0] for t in toks]
        matches: list[tuple[int, int]] = []
        first = self._pattern_first
        for i, t in enumerate(texts):
            cands = first.get(t)
            if not cands:
                continue
            for p in cands:
                k = len(p)
                if k <= n - i and tuple(texts[i : i + k]) == p:
                    matches.append((i, i + k))
        if not matches:
            return [(t[0], t[2]) for t in toks]
        # _filter_special_spans: longest first, then leftmost; a span is taken when neither its first
        # nor its last token was seen; every span marks its tokens seen, taken or not
        matches.sort(key=lambda se: (-(se[1] - se[0]), se[0]))
        seen: set[int] = set()
        taken = []
        for s, e in matches:
            if s not in seen and (e - 1) not in seen:
                taken.append((s, e))
            seen.update(range(s, e))
        taken.sort()
        out: list[tuple[str, int]] = []
        i = 0
        ti = 0
        while i < n:
            if ti < len(taken) and taken[ti][0] == i:
                s, e = taken[ti]
                ti += 1
                span_text = "".join(toks[j][0] + (" " if toks[j][1] and j < e - 1 else "") for j in range(s, e))
                rule = self.specials.get(span_text)
                if rule is not None:  # only a span inside one chunk can name a rule (no spaces)
                    out.extend([(r, toks[s][2]) for r in rule])
                else:
                    out.extend([(toks[j][0], toks[j][2]) for j in range(s, e)])
                i = e
            else:
                out.append((toks[i][0], toks[i][2]))
                i += 1
        return out

    # -- public API -----------------------------------------------------------------------------

    def chunk_tokens(self, chunk: str) -> tuple[str, ...]:
        """Final tokens of one whitespace-free chunk (special-case matcher applied inside the chunk)."""
        return self._memo[chunk]

    def _compute_chunk_tokens(self, chunk: str) -> tuple[str, ...]:
        pre = tuple(self._tokenize_chunk(chunk, True))
        if len(pre) < 2 or self._pattern_first.keys().isdisjoint(pre):
            return pre  # one token (a special chunk is already split) or nothing a pattern starts with
        r = tuple(t for t, _ in self._apply_special_matcher([(t, False, 0) for t in pre]))
        if r != pre:
            self._changed.add(chunk)
        return r

    def tokens(self, text: str) -> list[str]:
        """All tokens spaCy produces for ``text``, whitespace tokens included (slow; for tests)."""
        return [t for t, _ in self._apply_special_matcher(self._tokenize_text(text, True))]

    def words(self, text: str) -> list[str]:
        """datatrove ``split_into_words(text, "en")``: spaCy tokens, stripped, blank ones dropped."""
        return self.split(text)[1]

    def split(self, text: str) -> tuple[list[str], list[str], bool]:
        """(whitespace chunks, words, whether some chunk's tokens depend on its neighbours)."""
        chunks = text.split()
        toks = list(map(self._memo.__getitem__, chunks))
        changed = self._changed
        fixed = False
        if changed and not changed.isdisjoint(chunks):
            fixed = self._fix_changed_chunks(text, chunks, toks)
        return chunks, list(chain.from_iterable(toks)), fixed

    def props_of_chunks(self, chunks: list[str]) -> tuple[int, int, int]:
        """(non-symbol words, characters in them, words with a letter) summed over ``chunks``' tokens
        (valid when no chunk's tokens depend on its neighbours)."""
        packed = sum(map(self._props.__getitem__, chunks))
        m = (1 << 40) - 1
        return (packed >> 40) & m, packed >> 80, packed & m

    def _compute_chunk_props(self, chunk: str) -> int:
        nonsym = chars = alpha = 0
        for t in self._memo[chunk]:
            if _NON_SYMBOL[t]:
                nonsym += 1
                chars += len(t)
            if _HAS_ALPHA[t]:
                alpha += 1
        return alpha | (nonsym << 40) | (chars << 80)  # fields never reach 2**40 in one document

    def _fix_changed_chunks(self, text: str, chunks: list[str], toks: list[tuple[str, ...]]) -> bool:
        """Redo the special-case pass around the chunks it changed, with their neighbours.

        spaCy runs that pass over the whole document: a pattern matched across two chunks (only possible
        over a single space) never rewrites tokens itself, since its text has a space, but it can block
        a match inside a chunk. Any span touching chunk i lies within ``pattern_max`` chunks of it, so
        re-running the pass on that window gives chunk i's exact tokens.
        """
        changed = self._changed
        idx = [i for i, c in enumerate(chunks) if c in changed]
        spans = None
        changed_any = False
        w = self._pattern_max
        for i in idx:
            lo, hi = max(0, i - w), min(len(chunks), i + w + 1)
            if spans is None:
                spans = [m.span() for m in _NON_WS.finditer(text)]
            window = text[spans[lo][0] : spans[hi - 1][1]]
            if self._straddle.search(window) is None:
                continue
            target = i - lo
            fixed = tuple(t for t, c in self._apply_special_matcher(self._tokenize_text(window)) if c == target)
            if fixed != toks[i]:
                toks[i] = fixed
                changed_any = True
        return changed_any

    def _compute_sent_transition(self, chunk: str) -> tuple[bool, int, bool, int, bool]:
        """Effect of one chunk's tokens on the sentencizer: (state, new starts) from state False, the
        same from state True, and whether the chunk is one the special-case pass changed."""
        kinds = []
        for t in self._memo[chunk]:
            if t in self.punct_chars:
                kinds.append(0)  # sentence-final character: sets seen_period
            elif _is_punct(t):
                kinds.append(1)  # other punctuation: no effect
            else:
                kinds.append(2)  # anything else: starts a sentence if seen_period
        res = []
        for state in (False, True):
            starts = 0
            for k in kinds:
                if k == 0:
                    state = True
                elif k == 2 and state:
                    starts += 1
                    state = False
            res += [state, starts]
        return (res[0], res[1], res[2], res[3], chunk in self._changed)

    def count_sentences(self, line: str) -> int:
        """Number of pieces datatrove's ``split_into_sentences(line, "en")`` returns (spaCy sentencizer)."""
        if not self._punct_char_re.search(line):
            return 1
        chunks = line.split()
        tr = self._sent_memo
        state = False
        n = 1
        gaps = len(chunks) - 1
        if line.count(" ") == gaps and len(line) == sum(map(len, chunks)) + gaps:
            # the only whitespace is one space between chunks: no whitespace tokens
            for t in map(tr.__getitem__, chunks):
                if t[4]:
                    break
                if state:
                    n += t[3]
                    state = t[2]
                else:
                    n += t[1]
                    state = t[0]
            else:
                return n
            state = False
            n = 1
        parts = _WS_SPLIT.split(line)
        for i, p in enumerate(parts):
            if i & 1:  # whitespace between chunks: anything but one " " is a whitespace token
                if p != " " and state:
                    n += 1
                    state = False
            elif p:
                t = tr[p]
                if t[4] and self._straddle.search(line) is not None:
                    return self._count_sentences_slow(line)
                if state:
                    n += t[3]
                    state = t[2]
                else:
                    n += t[1]
                    state = t[0]
        return n

    def _count_sentences_slow(self, line: str) -> int:
        toks = self.tokens(line)  # whitespace tokens included: they end a sentence too
        if not toks:
            return 1
        n = 1
        state = False
        for t in toks:
            if t in self.punct_chars:
                state = True
            elif state and not _is_punct(t):
                n += 1
                state = False
        return n


def _sre():
    try:
        from re import _constants as c, _parser as p  # Python >= 3.11
    except ImportError:  # pragma: no cover
        import sre_constants as c  # type: ignore
        import sre_parse as p  # type: ignore
    return p, c


class _AffixDispatch:
    """Per first (prefix) / last (suffix) character, a regex of only the alternatives that can consume
    that character there; the others cannot match, so the leftmost match is the same."""

    def __init__(self, pieces: list[str], classes: list, flags: int, anchor: str):
        self.pieces = pieces
        self.classes = classes
        self.flags = flags
        self.anchor = anchor
        self._by_char: dict[str, Any] = {}
        self._by_sel: dict[tuple[int, ...], Any] = {}

    @classmethod
    def build(cls, compiled: re.Pattern, entries, anchor: str) -> "_AffixDispatch | None":
        try:
            pieces = [p for p in entries if p.strip()]
            joined = "|".join(("^" + p) if anchor == "prefix" else (p + "$") for p in pieces)
            if joined != compiled.pattern:  # not the regex we think it is: no shortcut
                return None
            p_, c_ = _sre()
            classes = []
            for piece in pieces:
                tree = p_.parse(piece, compiled.flags)
                edge = _edge_chars(tree, last=(anchor == "suffix"))
                classes.append(re.compile("[" + "".join(edge) + "]", compiled.flags) if edge else None)
            return cls(pieces, classes, compiled.flags, anchor)
        except Exception:  # pragma: no cover
            return None

    def regex_for(self, ch: str):
        """``search`` of the reduced regex for strings starting (prefix) / ending (suffix) with ``ch``,
        or None when no alternative can match."""
        r = self._by_char.get(ch, _MISSING)
        if r is _MISSING:
            sel = tuple(i for i, c in enumerate(self.classes) if c is None or c.match(ch))
            r = self._by_sel.get(sel, _MISSING)
            if r is _MISSING:
                if sel:
                    parts = [("^" + self.pieces[i]) if self.anchor == "prefix" else (self.pieces[i] + "$") for i in sel]
                    r = re.compile("|".join(parts), self.flags).search
                else:
                    r = None
                self._by_sel[sel] = r
            self._by_char[ch] = r
        return r


def _edge_chars(seq, last: bool) -> list[str] | None:
    """Character-class items for the first (or last) character any match of ``seq`` consumes, or None
    when that cannot be worked out (then the alternative is tried for every character)."""
    p, c = _sre()
    nodes = list(seq.data)
    if last:
        nodes.reverse()
    for op, av in nodes:
        if op in (c.ASSERT, c.ASSERT_NOT, c.AT):
            continue  # zero-width
        if op is c.LITERAL:
            return [re.escape(chr(av))]
        if op is c.IN:
            out = []
            for iop, iav in av:
                if iop is c.LITERAL:
                    out.append(re.escape(chr(iav)))
                elif iop is c.RANGE:
                    out.append(re.escape(chr(iav[0])) + "-" + re.escape(chr(iav[1])))
                else:
                    return None
            return out
        if op is c.BRANCH:
            out = []
            for alt in av[1]:
                e = _edge_chars(alt, last)
                if e is None:
                    return None
                out += e
            return out
        if op is c.SUBPATTERN:
            return _edge_chars(av[-1], last)
        if op in (c.MAX_REPEAT, c.MIN_REPEAT) and av[0] >= 1:
            return _edge_chars(av[2], last)
        return None
    return None


def _needs_char_outside(seq, chars: frozenset[str]) -> bool:
    """True if every match of ``seq`` consumes, or (positive lookaround) needs next to it, a character
    outside ``chars``; False when that cannot be shown."""
    p, c = _sre()

    def node_set_outside(op, av) -> bool:
        if op is c.LITERAL:
            return chr(av) not in chars
        if op is c.IN:
            for iop, iav in av:
                if iop is c.LITERAL:
                    if chr(iav) in chars:
                        return False
                elif iop is c.RANGE:
                    if any(iav[0] <= ord(ch) <= iav[1] for ch in chars):
                        return False
                else:
                    return False
            return True
        return False

    for op, av in seq.data:
        if op in (c.LITERAL, c.IN):
            if node_set_outside(op, av):
                return True
        elif op is c.ASSERT:  # (?=...) / (?<=...): the context must match
            if _needs_char_outside(av[1], chars):
                return True
        elif op is c.SUBPATTERN:
            if _needs_char_outside(av[-1], chars):
                return True
        elif op is c.BRANCH:
            if all(_needs_char_outside(alt, chars) for alt in av[1]):
                return True
        elif op in (c.MAX_REPEAT, c.MIN_REPEAT) and av[0] >= 1:
            if _needs_char_outside(av[2], chars):
                return True
    return False


def _suffix_window(compiled: re.Pattern) -> int | None:
    """Window length for :meth:`SpacyEnglishWords._find_suffix`, or None if the pattern is not a plain
    alternation of ``X$`` whose unbounded alternatives are runs of a single repeated character."""
    p, c = _sre()
    try:
        tree = p.parse(compiled.pattern, compiled.flags)
        if len(tree.data) != 1 or tree.data[0][0] is not c.BRANCH:
            return None
        longest = 1
        for alt in tree.data[0][1][1]:
            lo, hi = alt.getwidth()
            if hi < 1 << 20:
                longest = max(longest, hi)
                continue
            chars = set()
            for op, av in alt.data:
                if op is c.LITERAL:
                    chars.add(av)
                elif op is c.MAX_REPEAT and len(av[2].data) == 1 and av[2].data[0][0] is c.LITERAL:
                    chars.add(av[2].data[0][1])
                elif op is c.AT and av is c.AT_END:
                    pass
                else:
                    return None
            if len(chars) != 1:
                return None
        return longest + 2
    except Exception:  # pragma: no cover - a future spaCy with other patterns: no shortcut
        return None


def _first_char_class(compiled: re.Pattern) -> re.Pattern | None:
    """A character class that every match of ``compiled`` must contain (its possible first consumed
    characters), or None when that cannot be worked out safely (e.g. an empty match is possible)."""
    p, _ = _sre()

    try:
        tree = p.parse(compiled.pattern, compiled.flags)
        if tree.getwidth()[0] < 1:
            return None
        f = _edge_chars(tree, last=False)
        return re.compile("[" + "".join(f) + "]", compiled.flags) if f else None
    except Exception:  # pragma: no cover
        return None


_WS_OR_NOT = re.compile(r"\s+|\S+")
_NON_WS = re.compile(r"\S+")
_WS_SPLIT = re.compile(r"(\s+)")


def _is_punct(text: str) -> bool:
    """spaCy's lexical ``is_punct``: every character is in a Unicode P* category."""
    for ch in text:
        if not unicodedata.category(ch).startswith("P"):
            return False
    return True


_english: SpacyEnglishWords | None = None
_english_lock = threading.Lock()


def english() -> SpacyEnglishWords:
    """The process-wide English word splitter (built on first use: ~0.3 s once spaCy is imported).

    Its memos are plain dicts: share it between threads only under the GIL (datatrove, Ray and Beam
    workers are processes, each with its own)."""
    global _english
    if _english is None:
        with _english_lock:
            if _english is None:
                _english = SpacyEnglishWords()
    return _english


# --------------------------------------------------------------------------------------------------
# other languages
# --------------------------------------------------------------------------------------------------

_CJK = r"\p{Han}\p{Hiragana}\p{Katakana}"
_EDGE = rf"[^\p{{L}}\p{{M}}\p{{N}}_\s{_CJK}]"  # punctuation, symbols, controls, ...
_GENERIC = regex.compile(
    rf"[{_CJK}]"  # one character, one word
    rf"|(?!{_EDGE})[^\s{_CJK}](?:[^\s{_CJK}]*(?<!{_EDGE}))?"  # a word: from and to a letter/mark/digit
    rf"|({_EDGE})\1*"  # a run of one repeated punctuation / symbol / control character
)


def generic_words(text: str) -> list[str]:
    """Language-neutral word split for non-English text (see the module docstring)."""
    return [m.group() for m in _GENERIC.finditer(text)]


def uses_english_rules(language: Any) -> bool:
    """Missing language or English -> the spaCy-equivalent English split (datatrove's default)."""
    return normalize_language(language) in (None, "en")


# --------------------------------------------------------------------------------------------------
# the per-document cache
# --------------------------------------------------------------------------------------------------


def _empty_stats() -> "TextStats":
    return TextStats(None, None)


class TextStats:
    """Lazily computed views of one text; every attribute is computed at most once."""

    __slots__ = ("text", "english", "_c")

    def __init__(self, text: str | None, language: Any) -> None:
        self.text = text
        self.english = uses_english_rules(language)
        self._c: dict[str, Any] = {}

    def __reduce__(self):  # never ship word lists across processes
        return (_empty_stats, ())

    def _get(self, key: str, fn):
        c = self._c
        v = c.get(key)
        if v is None:
            v = c[key] = fn()
        return v

    # -- words ----------------------------------------------------------------------------------
    @property
    def words(self) -> list[str]:
        """Words as datatrove's ``split_into_words`` gives them (English), or :func:`generic_words`."""

        def compute():
            if not self.english:
                return generic_words(self.text)
            chunks, words, fixed = english().split(self.text)
            if not fixed:
                self._c["chunks"] = chunks
            return words

        return self._get("words", compute)

    @property
    def word_counts(self) -> Counter:
        return self._get("word_counts", lambda: Counter(self.words))

    @property
    def word_props(self) -> tuple[int, int, int, int]:
        """(words, non-symbol words, characters in non-symbol words, words with a letter)."""

        def compute():
            words = self.words
            chunks = self._c.get("chunks")
            if chunks is not None:  # English: per-chunk sums, memoised
                return (len(words), *english().props_of_chunks(chunks))
            nonsym = list(map(_NON_SYMBOL.__getitem__, words))
            return (
                len(words),
                sum(nonsym),
                sum(map(len, compress(words, nonsym))),
                sum(map(_HAS_ALPHA.__getitem__, words)),
            )

        return self._get("word_props", compute)

    @property
    def word_offsets(self) -> tuple[str, list[int]]:
        """All words concatenated, and the offset of every word in that string (plus the end)."""

        def compute():
            words = self.words
            return "".join(words), list(accumulate(map(len, words), initial=0))

        return self._get("word_offsets", compute)

    @property
    def concat_hasher(self) -> tuple[SubstringHasher, np.ndarray]:
        """Hasher over ``"".join(words)`` and the word offsets there (repeated n-grams)."""

        def compute():
            concat, offsets = self.word_offsets
            return SubstringHasher(concat), np.asarray(offsets, dtype=np.int64)

        return self._get("concat_hasher", compute)

    @property
    def space_hasher(self) -> tuple[SubstringHasher, np.ndarray, np.ndarray]:
        """Hasher over ``" ".join(words)`` and every word's start / end there (top n-grams)."""

        def compute():
            words = self.words
            _, offsets = self.word_offsets
            off = np.asarray(offsets, dtype=np.int64)
            starts = off[:-1] + np.arange(len(words), dtype=np.int64)
            ends = off[1:] + np.arange(len(words), dtype=np.int64)
            return SubstringHasher(" ".join(words)), starts, ends

        return self._get("space_hasher", compute)

    # -- lines and paragraphs -------------------------------------------------------------------
    @property
    def splitlines(self) -> list[str]:
        """``text.splitlines()`` (Gopher quality, C4)."""
        return self._get("splitlines", lambda: self.text.splitlines())

    @property
    def newline_lines(self) -> list[str]:
        """``text.split("\\n")`` without blank lines (FineWeb)."""
        return self._get("newline_lines", lambda: [ln for ln in self.text.split("\n") if ln.strip() != ""])

    @property
    def repetition_lines(self) -> list[str]:
        r"""``re.split("\n+", text)`` (Gopher repetition)."""
        return self._get("repetition_lines", lambda: _LINES_RE.split(self.text))

    @property
    def paragraphs(self) -> list[str]:
        r"""``re.split("\n{2,}", text.strip())`` (Gopher repetition)."""
        return self._get("paragraphs", lambda: _PARAS_RE.split(self.text.strip()))


_LINES_RE = re.compile("\n+")
_PARAS_RE = re.compile(r"\n{2,}")



def _punctuation_set() -> frozenset[str]:
    from datatrove.utils.text import PUNCTUATION_SET

    return frozenset(PUNCTUATION_SET)


_PUNCT_SET = _punctuation_set()


# per distinct word: has a character outside datatrove's PUNCTUATION_SET / an alphabetic character
_NON_SYMBOL = _Memo(lambda w: any(ch not in _PUNCT_SET for ch in w))
_HAS_ALPHA = _Memo(lambda w: any(ch.isalpha() for ch in w))


def get_stats(doc: Document) -> TextStats:
    """The shared :class:`TextStats` of ``doc``'s current text (built on first use, cached in metadata)."""
    md = doc.metadata
    text = doc.text if doc.text is not None else ""
    st = md.get(CACHE_KEY)
    if isinstance(st, TextStats) and (st.text is text or st.text == text):
        lang_en = uses_english_rules(md.get("language"))
        if st.english == lang_en:
            return st
    st = TextStats(text, md.get("language"))
    md[CACHE_KEY] = st
    return st


def drop_stats(doc: Document) -> None:
    """Remove the cached statistics from ``doc`` (e.g. before handing it to a non-corpusmill writer)."""
    doc.metadata.pop(CACHE_KEY, None)


# --------------------------------------------------------------------------------------------------
# duplicate counting shared by Gopher repetition and FineWeb
# --------------------------------------------------------------------------------------------------


def find_duplicates(items: list[str]) -> tuple[int, int]:
    """(number of repeated elements, characters in them) -- every occurrence after the first counts."""
    cnt = Counter(items)
    if len(cnt) == len(items):
        return 0, 0
    elements = chars = 0
    for x, c in cnt.items():
        if c > 1:
            elements += c - 1
            chars += (c - 1) * len(x)
    return elements, chars


def top_ngram_chars(words: list[str], n: int) -> int:
    """Characters covered by the most frequent word n-gram (``" "``-joined length x count).

    Ties go to the n-gram seen first, as ``Counter.most_common(1)`` does on the joined strings.
    Returns -1 when there is no n-gram.
    """
    if len(words) < n:
        return -1
    cnt = Counter(zip(*(words[i:] for i in range(n))))
    gram, c = max(cnt.items(), key=_second)
    return (sum(map(len, gram)) + n - 1) * c


def _second(kv):
    return kv[1]


def duplicated_ngram_chars(concat: str, offsets: list[int], n: int) -> int:
    """datatrove's ``find_all_duplicate``: characters in repeated word n-grams, n-grams compared as the
    *concatenation* of their words, scanning left to right and jumping n words past every repeat.

    Only positions whose n-gram occurred before can be repeats, so the scan visits just those; a first
    occurrence counts as seen unless an earlier repeat jumped over it.
    """
    nw = len(offsets) - 1
    m = nw - n + 1
    if m <= 0:
        return 0
    keys = [concat[a:b] for a, b in zip(offsets, offsets[n:])]
    first = dict(zip(reversed(keys), range(m - 1, -1, -1)))  # key -> first position
    if len(first) == m:
        return 0
    firsts = list(map(first.__getitem__, keys))
    present: set[int] = set()  # first positions of keys known to be in the "seen" set
    hits: list[int] = []
    repeated = 0
    skip_until = 0
    for i in [i for i, f in enumerate(firsts) if f != i]:
        if i < skip_until:
            continue
        f = firsts[i]
        if f in present:
            hit = True
        else:
            # the first occurrence was added unless a repeat before it jumped over it
            j = bisect_left(hits, f) - 1
            hit = not (j >= 0 and f < hits[j] + n)
            present.add(f)
            if not hit:
                continue
        repeated += offsets[i + n] - offsets[i]
        hits.append(i)
        skip_until = i + n
    return repeated


# --------------------------------------------------------------------------------------------------
# language handling shared by the filters
# --------------------------------------------------------------------------------------------------

# ISO 639-2/3 codes of the languages our word lists cover -> ISO 639-1 (metadata may carry either)
_ISO3_TO_1 = {
    "eng": "en", "ara": "ar", "arb": "ar", "bul": "bg", "cat": "ca", "ces": "cs", "cze": "cs", "dan": "da",
    "nld": "nl", "dut": "nl", "fin": "fi", "fra": "fr", "fre": "fr", "deu": "de", "ger": "de", "guj": "gu",
    "heb": "he", "hin": "hi", "hun": "hu", "ind": "id", "msa": "ms", "zsm": "ms", "may": "ms", "ita": "it",
    "nob": "nb", "nor": "nb", "pol": "pl", "por": "pt", "ron": "ro", "rum": "ro", "rus": "ru", "slk": "sk",
    "slo": "sk", "spa": "es", "swe": "sv", "tur": "tr", "ukr": "uk", "vie": "vi", "fas": "fa", "pes": "fa",
    "per": "fa", "ell": "el", "gre": "el", "zho": "zh", "chi": "zh", "cmn": "zh", "jpn": "ja", "kor": "ko",
}
_LANG_ALIASES = {"no": "nb", "iw": "he", "in": "id"}


def normalize_language(code: Any) -> str | None:
    """``"en"``, ``"en-US"``, ``"eng_Latn"``, ``"ENG"`` -> ``"en"``; None/empty -> None."""
    if not code:
        return None
    base = re.split(r"[-_]", str(code).strip().lower(), maxsplit=1)[0]
    if not base:
        return None
    base = _ISO3_TO_1.get(base, base)
    return _LANG_ALIASES.get(base, base)


def in_scope(doc: Document, languages: frozenset[str] | None) -> bool:
    """Whether a filter restricted to ``languages`` (None = all) applies to ``doc``.

    A document without a language counts as English, as it does for the word split."""
    if languages is None:
        return True
    return (normalize_language(doc.metadata.get("language")) or "en") in languages


def language_set(languages) -> frozenset[str] | None:
    if languages is None:
        return None
    if isinstance(languages, str):
        languages = [languages]
    return frozenset(normalize_language(x) for x in languages)


# --------------------------------------------------------------------------------------------------
# n-gram statistics via substring hashing (numpy), verified against the strings
# --------------------------------------------------------------------------------------------------

_U64 = np.uint64
_BASE = 0x9E3779B97F4A7C15  # odd, so invertible modulo 2**64
_BASE_INV = pow(_BASE, -1, 1 << 64)
_powers = np.ones(1, dtype=_U64)
_inv_powers = np.ones(1, dtype=_U64)


def _power_tables(length: int) -> tuple[np.ndarray, np.ndarray]:
    """B**i and B**-i modulo 2**64 for i < length (grown on demand, shared)."""
    global _powers, _inv_powers
    if len(_powers) < length:
        n = max(length, 2 * len(_powers), 1024)
        _powers = np.cumprod(np.concatenate([np.ones(1, _U64), np.full(n - 1, _BASE, _U64)]), dtype=_U64)
        _inv_powers = np.cumprod(np.concatenate([np.ones(1, _U64), np.full(n - 1, _BASE_INV, _U64)]), dtype=_U64)
    return _powers, _inv_powers


class SubstringHasher:
    """Polynomial hashes (mod 2**64) of arbitrary substrings of one string, vectorised.

    Equal substrings always get equal hashes; unequal ones almost never do, and the callers check the
    strings wherever the answer depends on a hash equality, so results are exact.
    """

    __slots__ = ("text", "_prefix", "_inv")

    def __init__(self, text: str) -> None:
        self.text = text
        cp = np.frombuffer(text.encode("utf-32-le", "surrogatepass"), dtype=np.uint32).astype(_U64)
        pw, ipw = _power_tables(len(cp) + 1)
        prefix = np.zeros(len(cp) + 1, dtype=_U64)
        np.cumsum(cp * pw[: len(cp)], dtype=_U64, out=prefix[1:])
        self._prefix = prefix
        self._inv = ipw

    def hashes(self, starts: np.ndarray, ends: np.ndarray) -> np.ndarray:
        p = self._prefix
        return (p[ends] - p[starts]) * self._inv[starts]


def _group(h: np.ndarray):
    """Group equal values: (sort order, group start offsets in it, smallest position per group,
    group id of every sorted element)."""
    order = np.argsort(h, kind="quicksort")
    hs = h[order]
    new = np.empty(len(h), dtype=bool)
    new[0] = True
    np.not_equal(hs[1:], hs[:-1], out=new[1:])
    starts = np.flatnonzero(new)
    first = np.minimum.reduceat(order, starts)
    return order, starts, first, new


def top_ngram_chars_hashed(hasher: SubstringHasher, starts: np.ndarray, ends: np.ndarray, words, n: int) -> int:
    """:func:`top_ngram_chars` with n-grams as substrings of ``" ".join(words)`` (``starts``/``ends`` of
    every word there)."""
    m = len(starts) - n + 1
    if m <= 0:
        return -1
    a = starts[:m]
    b = ends[n - 1 :]
    h = hasher.hashes(a, b)
    order, starts, first, _ = _group(h)
    counts = np.diff(np.append(starts, m))
    cmax = counts.max()
    groups = np.flatnonzero(counts == cmax)
    g = groups[np.argmin(first[groups])]  # the most frequent; ties -> seen first (Counter order)
    f = int(first[g])
    text = hasher.text
    members = order[starts[g] : starts[g] + cmax]
    al, bl = a[members].tolist(), b[members].tolist()
    ref = text[int(a[f]) : int(b[f])]
    if all(text[x:y] == ref for x, y in zip(al, bl)):
        return (int(b[f]) - int(a[f])) * int(cmax)
    return top_ngram_chars(words, n)  # a hash collision: count the exact way


def duplicated_ngram_chars_hashed(hasher: SubstringHasher, offsets: np.ndarray, n: int) -> int:
    """:func:`duplicated_ngram_chars` with the first-occurrence search done on hashes."""
    m = len(offsets) - n
    if m <= 0:
        return 0
    a = offsets[:m]
    b = offsets[n:]
    h = hasher.hashes(a, b)
    order, starts, first, new = _group(h)
    if len(starts) == m:
        return 0
    firsts = np.empty(m, dtype=np.int64)
    firsts[order] = first[np.cumsum(new) - 1]
    cand_a = np.flatnonzero(firsts != np.arange(m))
    fc = firsts[cand_a]
    ai, bi, af, bf = a[cand_a].tolist(), b[cand_a].tolist(), a[fc].tolist(), b[fc].tolist()
    text = hasher.text
    for x, y, u, v in zip(ai, bi, af, bf):
        if text[x:y] != text[u:v]:
            return duplicated_ngram_chars(text, offsets.tolist(), n)  # a hash collision
    present: set[int] = set()
    hits: list[int] = []
    repeated = 0
    skip_until = 0
    for i, f, x, y in zip(cand_a.tolist(), fc.tolist(), ai, bi):
        if i < skip_until:
            continue
        if f not in present:
            present.add(f)
            j = bisect_left(hits, f) - 1
            if j >= 0 and f < hits[j] + n:
                continue  # its first occurrence was jumped over: this one is the first seen
        repeated += y - x
        hits.append(i)
        skip_until = i + n
    return repeated
