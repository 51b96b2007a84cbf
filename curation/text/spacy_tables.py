"""spaCy's English tokenizer rule tables (prefix / suffix / infix / URL regexes, special cases, the
sentencizer's punctuation) as plain data, so filter workers never import spaCy (which imports torch).

The tables are read from spaCy once and kept as JSON keyed by spaCy's version: the copy shipped in
``curation/data/`` when it matches the installed spaCy (or when spaCy is not installed), else a cache
file written the first time a new version is seen (``$CORPUSMILL_CACHE`` or ``~/.cache/corpusmill``).
"""

from __future__ import annotations

import json
import re
from importlib import resources
from pathlib import Path

SHIPPED = "spacy_en_rules.json"
FORMAT = 1


def spacy_version() -> str | None:
    """The installed spaCy's version, read from its metadata (no import), or None."""
    try:
        from importlib.metadata import version

        return version("spacy")
    except Exception:
        return None


def build_tables() -> dict:
    """Read the tables from spaCy itself (imports spaCy)."""
    import spacy
    from spacy.attrs import intify_attrs
    from spacy.lang.en import English
    from spacy.pipeline.sentencizer import Sentencizer
    from spacy.symbols import ORTH

    tok = spacy.blank("en").tokenizer

    def rx(fn):
        return None if fn is None else {"pattern": fn.__self__.pattern, "flags": int(fn.__self__.flags)}

    return {
        "format": FORMAT,
        "spacy_version": spacy.__version__,
        "prefix": rx(tok.prefix_search),
        "suffix": rx(tok.suffix_search),
        "infix": rx(tok.infix_finditer),
        "url": rx(tok.url_match),
        "token_match": rx(tok.token_match),
        "prefixes": list(English.Defaults.prefixes),
        "suffixes": list(English.Defaults.suffixes),
        "specials": {k: [intify_attrs(s, _do_deprecated=True)[ORTH] for s in v] for k, v in tok.rules.items()},
        "punct_chars": list(Sentencizer.default_punct_chars),
    }


def _read(path) -> dict | None:
    try:
        t = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return t if t.get("format") == FORMAT else None


def load_tables() -> dict:
    """The tables for the installed spaCy (shipped copy, cache, or built and cached), or the shipped copy
    when spaCy is not installed."""
    want = spacy_version()
    shipped = _read(resources.files("corpusmill.curation.data") / SHIPPED)
    if shipped is not None and (want is None or shipped["spacy_version"] == want):
        return shipped
    if want is None:
        raise RuntimeError(f"no spaCy rule tables: {SHIPPED} is missing from corpusmill.curation.data and spaCy is not installed")
    from corpusmill.curation.assets import cache_dir

    cached = cache_dir() / f"spacy_en_rules-{want}.json"
    t = _read(cached)
    if t is not None and t["spacy_version"] == want:
        return t
    t = build_tables()
    try:
        from corpusmill import atomic

        cached.parent.mkdir(parents=True, exist_ok=True)
        atomic.write_json(cached, t, ensure_ascii=False, indent=None)
    except OSError:  # read-only home: rebuilt in every process, still correct
        pass
    return t


def compiled(spec: dict | None, method: str):
    """The bound method (``search``, ``match``, ``finditer``) of a stored regex, or None."""
    if spec is None:
        return None
    return getattr(re.compile(spec["pattern"], spec["flags"]), method)


def write_shipped(path: Path) -> None:
    """Refresh the shipped copy from the installed spaCy (``python -m corpusmill.curation.text.spacy_tables``)."""
    from corpusmill import atomic

    atomic.write_json(path, build_tables(), ensure_ascii=False, indent=None)


if __name__ == "__main__":  # pragma: no cover
    write_shipped(Path(__file__).resolve().parent.parent / "data" / SHIPPED)
