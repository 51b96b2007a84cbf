"""Wikitext templates -> their visible prose, for the few templates that carry text inside a sentence.

A dump holds template *calls*, not their output, and expanding them properly needs the wiki's Lua
modules. Most templates are not prose (citations, infoboxes, navigation boxes, maintenance tags) and
are dropped whole, as WikiExtractor and mwparserfromhell's ``strip_code`` do. Dropping all of them,
though, cuts holes in sentences: "an area of {{convert|52419|sqmi|km2}}" became "an area of ." and
"from the Greek {{lang|grc|ἀναρχία}}" lost the word. Here a short list of inline templates, the most
frequent in the shared enwiki sample (``convert`` 436 calls, ``lang``/``lang-xx`` 278, ``flag``
216, ``small`` 110, ``transl`` 52, ``nihongo`` 46, ``chem`` 35, ``as of`` 30, ...), is rendered to
plain text approximately as Wikipedia shows it (``convert``: the input value and unit only, units
spelled out as on the page by default). Every other template is removed, nested ones included;
unbalanced braces are removed. Magic words naming the page (``{{PAGENAME}}``, ...) render its title.

:func:`expand_templates` returns wikitext (links inside template arguments are kept for the parser).
"""

from __future__ import annotations

import re

__all__ = ["expand_templates", "INLINE_TEMPLATES", "MAGIC_WORDS"]

_BRACES = re.compile(r"\{\{|\}\}")
_MONTHS = ("January", "February", "March", "April", "May", "June", "July", "August", "September", "October",
           "November", "December")

# convert's unit codes -> (singular, plural) as shown on the page; an unknown code is shown as is
_UNITS = {
    "m": ("metre", "metres"), "km": ("kilometre", "kilometres"), "cm": ("centimetre", "centimetres"),
    "mm": ("millimetre", "millimetres"), "mi": ("mile", "miles"), "ft": ("foot", "feet"), "in": ("inch", "inches"),
    "yd": ("yard", "yards"), "nmi": ("nautical mile", "nautical miles"), "m2": ("square metre", "square metres"),
    "km2": ("square kilometre", "square kilometres"), "sqmi": ("square mile", "square miles"),
    "sqft": ("square foot", "square feet"), "ft2": ("square foot", "square feet"), "acre": ("acre", "acres"),
    "ha": ("hectare", "hectares"), "kg": ("kilogram", "kilograms"), "g": ("gram", "grams"),
    "lb": ("pound", "pounds"), "oz": ("ounce", "ounces"), "t": ("tonne", "tonnes"), "ST": ("short ton", "short tons"),
    "LT": ("long ton", "long tons"), "L": ("litre", "litres"), "l": ("litre", "litres"),
    "USgal": ("US gallon", "US gallons"), "impgal": ("imperial gallon", "imperial gallons"),
    "m3": ("cubic metre", "cubic metres"), "cuft": ("cubic foot", "cubic feet"), "km/h": ("kilometre per hour",
    "kilometres per hour"), "mph": ("mile per hour", "miles per hour"), "kn": ("knot", "knots"),
    "C": ("°C", "°C"), "F": ("°F", "°F"), "K": ("kelvin", "kelvins"), "hp": ("horsepower", "horsepower"),
    "kW": ("kilowatt", "kilowatts"), "MW": ("megawatt", "megawatts"), "ly": ("light-year", "light-years"),
    "AU": ("astronomical unit", "astronomical units"), "m/s": ("metre per second", "metres per second"),
}
_SCALE = {"e3": "thousand", "e6": "million", "e9": "billion", "e12": "trillion"}
_RANGE = {"-": "–", "–": "–", "to": "to", "and": "and", "or": "or", "by": "by", "x": "×", "×": "×",
          "+/-": "±", "±": "±", "to(-)": "to", "and(-)": "and", "-to": "to"}


def _unit(code: str, value: str) -> str:
    code = code.strip()
    scale = ""
    m = re.match(r"(e\d+)(.*)", code)
    if m and m.group(1) in _SCALE:
        scale, code = _SCALE[m.group(1)] + " ", m.group(2)
    forms = _UNITS.get(code)
    if forms is None:
        return scale + code
    one = not scale and value.strip().lstrip("+").replace(",", "") in ("1", "1.0")
    return scale + forms[0 if one else 1]


def _convert(pos: list[str], named: dict[str, str]) -> str:
    if len(pos) >= 4 and pos[1].strip() in _RANGE:
        return f"{pos[0]} {_RANGE[pos[1].strip()]} {pos[2]} {_unit(pos[3], pos[2])}"
    if len(pos) >= 2:
        return f"{pos[0]} {_unit(pos[1], pos[0])}"
    return pos[0] if pos else ""


def _as_of(pos: list[str], named: dict[str, str]) -> str:
    parts = [p.strip() for p in pos[:3]]
    date = parts[0] if parts else ""
    if len(parts) >= 2 and parts[1].isdigit() and 1 <= int(parts[1]) <= 12:
        month = _MONTHS[int(parts[1]) - 1]
        date = f"{parts[2]} {month} {parts[0]}" if len(parts) >= 3 and parts[2].isdigit() else f"{month} {parts[0]}"
    lead = "as of" if named.get("lc", "").strip().lower() in ("y", "yes", "on", "true", "1") else "As of"
    return f"{lead} {date}".strip()


def _nihongo(pos: list[str], named: dict[str, str]) -> str:
    english, rest = (pos[0] if pos else ""), [p for p in pos[1:3] if p.strip()]
    return f"{english} ({', '.join(rest)})" if rest and english.strip() else (english or ", ".join(rest))


def _frac(pos: list[str], named: dict[str, str]) -> str:
    if len(pos) == 1:
        return f"1/{pos[0]}"
    if len(pos) == 2:
        return f"{pos[0]}/{pos[1]}"
    if len(pos) >= 3:
        return f"{pos[0]} {pos[1]}/{pos[2]}"
    return ""


def _val(pos: list[str], named: dict[str, str]) -> str:
    unit = named.get("u") or named.get("ul") or ""
    return f"{pos[0]} {unit}".strip() if pos else ""


def _arg(i: int, *names: str):
    """The i-th positional argument (or the first of ``names`` given)."""

    def render(pos: list[str], named: dict[str, str]) -> str:
        for n in names:
            if named.get(n, "").strip():
                return named[n]
        return pos[i] if len(pos) > i else ""

    return render


def _last(pos: list[str], named: dict[str, str]) -> str:
    return pos[-1] if pos else ""


def _const(text: str):
    return lambda pos, named: text


INLINE_TEMPLATES = {
    "convert": _convert, "cvt": _convert,
    "lang": _arg(1, "text"), "transl": _last, "transliteration": _last, "script": _arg(1),
    "nihongo": _nihongo, "as of": _as_of, "circa": lambda p, n: f"c. {p[0]}" if p else "c.",
    "c.": lambda p, n: f"c. {p[0]}" if p else "c.", "frac": _frac, "fraction": _frac, "val": _val,
    "chem": lambda p, n: "".join(p), "chem2": _arg(0), "angbr": lambda p, n: f"⟨{p[0]}⟩" if p else "",
    "flag": _arg(0, "name"), "flagcountry": _arg(0, "name"), "flagu": _arg(0, "name"),
    "small": _arg(0), "smaller": _arg(0), "big": _arg(0), "larger": _arg(0), "nowrap": _arg(0),
    "nobr": _arg(0), "sc": _arg(0), "smallcaps": _arg(0), "small caps": _arg(0), "vanchor": _arg(0),
    "visible anchor": _arg(0), "em": _arg(0), "strong": _arg(0), "var": _arg(0), "mvar": _arg(0),
    "math": _arg(0), "abbr": _arg(0), "sic": _last, "not a typo": _arg(0), "proper name": _arg(0),
    "quote": _arg(0, "text", "quote"), "blockquote": _arg(0, "text", "quote"), "lit": _arg(0),
    "ill": _arg(0), "interlanguage link": _arg(0), "us$": lambda p, n: f"US${p[0]}" if p else "US$",
    "ndash": _const("–"), "mdash": _const("—"), "snd": _const(" – "), "spaced ndash": _const(" – "),
    "'": _const("'"), "nbsp": _const(" "), "·": _const(" · "), "dot": _const(" · "), "•": _const(" • "),
}


_ARG_TOKENS = re.compile(r"\{\{|\}\}|\[\[|\]\]|\|")


def _split_args(body: str) -> list[str]:
    """Split a template body on the ``|`` that are not inside nested ``{{ }}`` or ``[[ ]]`` (a regex
    scan: only the markup tokens are visited, so a 2 MB argument costs one C-level pass)."""
    out, depth, start = [], 0, 0
    for m in _ARG_TOKENS.finditer(body):
        t = m.group()
        if t == "|":
            if not depth:
                out.append(body[start : m.start()])
                start = m.end()
        elif t in ("{{", "[["):
            depth += 1
        elif depth:
            depth -= 1
    out.append(body[start:])
    return out


#: inline templates nested deeper than this inside each other's arguments are dropped (real articles
#: nest a few levels; a page nesting thousands would otherwise exhaust the recursion limit)
MAX_DEPTH = 20


# namespace prefixes PAGENAME strips (the canonical English names; other pages are articles)
_NAMESPACES = frozenset({
    "talk", "user", "user talk", "wikipedia", "wikipedia talk", "project", "file", "file talk", "image", "mediawiki",
    "template", "template talk", "help", "help talk", "category", "category talk", "portal", "portal talk", "draft",
    "draft talk", "module", "module talk", "timedtext", "special", "media",
})


def _pagename(title: str) -> str:
    prefix, colon, rest = title.partition(":")
    return rest.strip() if colon and prefix.strip().lower() in _NAMESPACES else title


def _encoded(name: str) -> str:
    from urllib.parse import quote

    return quote(name.replace(" ", "_"), safe="/:(),'!*@;$~-._")


# magic words rendered from the page title: {{PAGENAME}}, {{PAGENAME:Other page}}, ...
MAGIC_WORDS = {
    "PAGENAME": _pagename, "FULLPAGENAME": lambda t: t, "PAGENAMEE": lambda t: _encoded(_pagename(t)),
    "FULLPAGENAMEE": _encoded, "BASEPAGENAME": lambda t: _pagename(t).rsplit("/", 1)[0],
    "ROOTPAGENAME": lambda t: _pagename(t).split("/", 1)[0], "SUBPAGENAME": lambda t: _pagename(t).rsplit("/", 1)[-1],
    "ARTICLEPAGENAME": lambda t: t, "SUBJECTPAGENAME": lambda t: t,
}


def _render(body: str, depth: int, title: str | None = None) -> str:
    """The visible text of one template call (``body`` without the outer braces), or ""."""
    name, _, _ = body.partition("|")
    word, colon, arg = name.partition(":")
    magic = MAGIC_WORDS.get(word.strip())
    if magic is not None:
        page = arg.strip() if colon else title
        return magic(" ".join(page.replace("_", " ").split())) if page else ""
    key = " ".join(name.replace("_", " ").split()).lower()
    if key.startswith("lang-") and len(key) <= 24:  # {{lang-fr|texte}}: the text
        fn = _arg(0, "text")
    else:
        fn = INLINE_TEMPLATES.get(key)
    if fn is None or depth >= MAX_DEPTH:
        return ""
    pos: list[str] = []
    named: dict[str, str] = {}
    for arg in _split_args(body)[1:]:
        k, eq, v = arg.partition("=")
        if eq and "{{" not in k and "[[" not in k and k.strip() and not k.strip().isdigit():
            named[k.strip().lower()] = expand_templates(v, depth + 1, title).strip()
        elif eq and k.strip().isdigit():
            idx = int(k.strip()) - 1
            while len(pos) <= idx:
                pos.append("")
            pos[idx] = expand_templates(v, depth + 1, title).strip()
        else:
            pos.append(expand_templates(arg, depth + 1, title).strip())
    try:
        return fn(pos, named)
    except (IndexError, ValueError):
        return ""


def expand_templates(wikitext: str, depth: int = 0, title: str | None = None) -> str:
    """Render the inline templates of :data:`INLINE_TEMPLATES` (and ``lang-xx``) and the magic words
    of :data:`MAGIC_WORDS` (from ``title``), drop every other balanced ``{{...}}`` (nested ones too);
    unmatched braces are removed."""
    if "{{" not in wikitext:
        return wikitext
    stack: list[int] = []
    spans: list[tuple[int, int]] = []
    stray: list[int] = []  # unmatched "}}": removed (so is an unmatched "{{", left on the stack)
    for m in _BRACES.finditer(wikitext):
        if m.group() == "{{":
            stack.append(m.start())
        elif stack:
            start = stack.pop()
            while spans and spans[-1][0] >= start:  # inner templates are inside this one
                spans.pop()
            spans.append((start, m.end()))
        else:
            stray.append(m.start())
    # unmatched braces would send the parser hunting for templates (super-linear): cut them here
    cuts = sorted([(s, s + 2, False) for s in stray + stack] + [(a, b, True) for a, b in spans])
    out, pos = [], 0
    for start, end, is_template in cuts:
        if start < pos:  # inside a template already handled
            continue
        out.append(wikitext[pos:start])
        if is_template and not wikitext.startswith("{{{", start):  # a template parameter ({{{1}}}) is not prose
            out.append(_render(wikitext[start + 2 : end - 2], depth, title))
        pos = end
    out.append(wikitext[pos:])
    return "".join(out)
