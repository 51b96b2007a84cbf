"""Analysis of spaCy's prefix / suffix / infix regexes, so each chunk only tries the alternatives
that can match its first or last character (used by :mod:`corpusmill.curation.text.english_words`)."""

from __future__ import annotations

import re
from typing import Any

from corpusmill.curation.text.memo import MISSING


def sre_modules():
    try:
        from re import _constants as c, _parser as p  # Python >= 3.11
    except ImportError:  # pragma: no cover
        import sre_constants as c  # type: ignore
        import sre_parse as p  # type: ignore
    return p, c


class AffixDispatch:
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
    def build(cls, compiled: re.Pattern, entries, anchor: str) -> "AffixDispatch | None":
        try:
            pieces = [p for p in entries if p.strip()]
            joined = "|".join(("^" + p) if anchor == "prefix" else (p + "$") for p in pieces)
            if joined != compiled.pattern:  # not the regex we think it is: no shortcut
                return None
            p_, c_ = sre_modules()
            classes = []
            for piece in pieces:
                tree = p_.parse(piece, compiled.flags)
                edge = edge_chars(tree, last=(anchor == "suffix"))
                classes.append(re.compile("[" + "".join(edge) + "]", compiled.flags) if edge else None)
            return cls(pieces, classes, compiled.flags, anchor)
        except Exception:  # pragma: no cover
            return None

    def regex_for(self, ch: str):
        """``search`` of the reduced regex for strings starting (prefix) / ending (suffix) with ``ch``,
        or None when no alternative can match."""
        r = self._by_char.get(ch, MISSING)
        if r is MISSING:
            sel = tuple(i for i, c in enumerate(self.classes) if c is None or c.match(ch))
            r = self._by_sel.get(sel, MISSING)
            if r is MISSING:
                if sel:
                    parts = [("^" + self.pieces[i]) if self.anchor == "prefix" else (self.pieces[i] + "$") for i in sel]
                    r = re.compile("|".join(parts), self.flags).search
                else:
                    r = None
                self._by_sel[sel] = r
            self._by_char[ch] = r
        return r


def edge_chars(seq, last: bool) -> list[str] | None:
    """Character-class items for the first (or last) character any match of ``seq`` consumes, or None
    when that cannot be worked out (then the alternative is tried for every character)."""
    p, c = sre_modules()
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
                e = edge_chars(alt, last)
                if e is None:
                    return None
                out += e
            return out
        if op is c.SUBPATTERN:
            return edge_chars(av[-1], last)
        if op in (c.MAX_REPEAT, c.MIN_REPEAT) and av[0] >= 1:
            return edge_chars(av[2], last)
        return None
    return None


def needs_char_outside(seq, chars: frozenset[str]) -> bool:
    """True if every match of ``seq`` consumes, or (positive lookaround) needs next to it, a character
    outside ``chars``; False when that cannot be shown."""
    p, c = sre_modules()

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
            if needs_char_outside(av[1], chars):
                return True
        elif op is c.SUBPATTERN:
            if needs_char_outside(av[-1], chars):
                return True
        elif op is c.BRANCH:
            if all(needs_char_outside(alt, chars) for alt in av[1]):
                return True
        elif op in (c.MAX_REPEAT, c.MIN_REPEAT) and av[0] >= 1:
            if needs_char_outside(av[2], chars):
                return True
    return False


def suffix_window(compiled: re.Pattern) -> int | None:
    """Window length for :meth:`SpacyEnglishWords._find_suffix`, or None if the pattern is not a plain
    alternation of ``X$`` whose unbounded alternatives are runs of a single repeated character."""
    p, c = sre_modules()
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


def first_char_class(compiled: re.Pattern) -> re.Pattern | None:
    """A character class that every match of ``compiled`` must contain (its possible first consumed
    characters), or None when that cannot be worked out safely (e.g. an empty match is possible)."""
    p, _ = sre_modules()

    try:
        tree = p.parse(compiled.pattern, compiled.flags)
        if tree.getwidth()[0] < 1:
            return None
        f = edge_chars(tree, last=False)
        return re.compile("[" + "".join(f) + "]", compiled.flags) if f else None
    except Exception:  # pragma: no cover
        return None
