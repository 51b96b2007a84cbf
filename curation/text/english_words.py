"""English words exactly as spaCy 3's ``blank("en")`` tokenizer splits them (datatrove's word
split), re-implemented over the rule tables of the installed spaCy, with a per-chunk memo."""

from __future__ import annotations

import re
import threading
import unicodedata
from itertools import chain

from corpusmill.curation.text.memo import Memo
from corpusmill.curation.text.spacy_rules import AffixDispatch, first_char_class, needs_char_outside, sre_modules, suffix_window
from corpusmill.curation.text.spacy_tables import compiled, load_tables
from corpusmill.curation.text.word_props import HAS_ALPHA, NON_SYMBOL


class SpacyEnglishWords:
    """Same segmentation as ``spacy.blank("en").tokenizer`` (spaCy 3.x), without building a ``Doc``.

    The control flow follows ``spacy/tokenizer.pyx`` (``_tokenize_affixes``, ``_split_affixes``,
    ``_attach_tokens``, ``_apply_special_cases``); the prefix / suffix / infix / URL regexes and the
    special cases are spaCy's own tables (:mod:`corpusmill.curation.text.spacy_tables`: kept per spaCy version,
    so a spaCy upgrade that changes the rules changes ours with it, without importing spaCy in workers).
    Use :func:`english` for the shared instance.
    """

    def __init__(self, tables: dict | None = None) -> None:
        t = tables if tables is not None else load_tables()
        self.spacy_version = t["spacy_version"]
        self._prefix = compiled(t["prefix"], "search")
        self._suffix = compiled(t["suffix"], "search")
        self._infix = compiled(t["infix"], "finditer")
        # speed-ups that give the same matches, derived from the regexes themselves (None = not safe)
        self._suffix_window = suffix_window(self._suffix.__self__)
        self._infix_trigger = first_char_class(self._infix.__self__)
        self._prefix_by_char = AffixDispatch.build(self._prefix.__self__, t["prefixes"], "prefix")
        self._suffix_by_char = AffixDispatch.build(self._suffix.__self__, t["suffixes"], "suffix")
        # chunks made only of ASCII letters (or only of ASCII digits) that are no special case are one
        # token, if no affix / infix alternative can match a string of such characters
        self._plain_alpha = self._no_affix_over(frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"))
        self._plain_digits = self._no_affix_over(frozenset("0123456789"))
        self._url = compiled(t["url"], "match")
        self._token_match = compiled(t["token_match"], "match")
        self.specials: dict[str, tuple[str, ...]] = {k: tuple(v) for k, v in t["specials"].items()}
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
        self.punct_chars = frozenset(t["punct_chars"])
        self._punct_char_re = re.compile("[" + "".join(re.escape(c) for c in sorted(self.punct_chars)) + "]")
        self._memo = Memo(self._compute_chunk_tokens)
        self._props = Memo(self._compute_chunk_props)
        # chunks whose tokens the in-chunk special-case pass changed (e.g. "x:)" -> "x", ":)"); only
        # next to those can a pattern straddling two chunks change the result (by blocking that match)
        self._changed: set[str] = set()
        self._sent_memo = Memo(self._compute_sent_transition)

    # -- the pieces of tokenizer.pyx ------------------------------------------------------------

    def _no_affix_over(self, chars: frozenset[str]) -> bool:
        """Whether no prefix, suffix or infix alternative can match inside a string made only of
        ``chars``: each alternative must need some character outside ``chars``."""
        pd, sd, trig = self._prefix_by_char, self._suffix_by_char, self._infix_trigger
        if pd is None or sd is None or trig is None or any(trig.match(ch) for ch in chars):
            return False
        p_, _ = sre_modules()
        for d in (pd, sd):
            for piece, cls in zip(d.pieces, d.classes):
                if cls is not None and not any(cls.match(ch) for ch in chars):
                    continue  # cannot even start (prefix) / end (suffix) with one of them
                if not needs_char_outside(p_.parse(piece, d.flags), chars):
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
            if NON_SYMBOL[t]:
                nonsym += 1
                chars += len(t)
            if HAS_ALPHA[t]:
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
    """The process-wide English word splitter (built on first use from the stored rule tables).

    Its memos are plain dicts: share it between threads only under the GIL (datatrove, Ray and Beam
    workers are processes, each with its own)."""
    global _english
    if _english is None:
        with _english_lock:
            if _english is None:
                _english = SpacyEnglishWords()
    return _english


def clear_memos() -> None:
    """Empty every per-chunk / per-word memo (benchmarks measure the cold start with it)."""
    from corpusmill.curation.text import word_props

    e = english()
    for m in (e._memo, e._props, e._sent_memo, word_props.NON_SYMBOL, word_props.HAS_ALPHA):
        m.clear()
        m._old = {}
    e._changed.clear()
