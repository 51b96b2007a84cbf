"""Property tests (hypothesis) for invariants the reliability guarantees rest on.

Not repeated here: "no filter raises on any unicode, verdicts have the Filter shape, signals are finite"
(tests/curation/filters/test_filters_properties.py) and the tokenizer round trip decode(encode(x)) == x
(tests/tokenizer/test_tokenizer_encode.py). Added:

* filters: monotone in their thresholds (loosening a threshold never turns a kept document into a
  dropped one; signals do not depend on thresholds), independent of the order documents come in (the
  per-document text-statistics cache and the word-split memo never leak between documents), and a
  stage after C4 sees C4's rewritten text, not stale statistics;
* ``apply_stage``: whatever a stage returns or raises, a document ends kept, dropped with a non-empty
  reason, or errored with the error text, and never raises;
* readers: on arbitrary bytes and on randomly damaged real files, ``Reader.documents`` never raises,
  positions increase, ids are unique and the shard-end count equals the records given; JSONL round-trips
  any JSON object's text;
* token shards: ``corpusmill.tokenizer.formats.ShardWriter`` -> ``corpusmill.tokenizer.shards.TokenShards`` round-trips random
  documents exactly in every format, whatever the shard size and block split.
"""

from __future__ import annotations

import bz2
import gzip
import io
import json
import tempfile
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from datatrove.data import Document
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from corpusmill.curation.document import EVENT, REASON, SHARD_END, STATUS, is_alive
from corpusmill.curation.filters import C4Quality, FineWebQuality, GopherQuality, GopherRepetition
from corpusmill.curation.readers import get_reader
from corpusmill.curation.stage import Filter, Transform, apply_stage

# ------------------------------------------------------------------------------------------ text strategies

_PIECES = ["", "\n", "\n\n", " ", "the cat sat on the mat.", "and to be of that have with", "#", "...", "…",
           "• item", "- x", "{", "lorem ipsum", "javascript", "[1]", "a.m.", ":)", "東京", "Ωμέγα", "\u2028", "\r\n",
           "x" * 40, "The committee met on Tuesday to discuss the budget.", "Read more", "terms of use", "!"]
TEXT = st.one_of(
    st.text(max_size=400),
    st.lists(st.sampled_from(_PIECES), max_size=120).map("".join),
    st.lists(st.sampled_from(_PIECES[4:8] + _PIECES[22:24]), min_size=20, max_size=200).map(" ".join),
)
LANG = st.sampled_from([None, "en", "de", "zh"])


def _doc(text: str, lang: str | None = None) -> Document:
    return Document(text=text, id="p", metadata={} if lang is None else {"language": lang})


def _verdict(f: Filter, text: str, lang: str | None = None) -> tuple[bool, dict, str]:
    d = _doc(text, lang)
    v = f.filter(d)
    keep = v is True or (not isinstance(v, tuple) and bool(v))
    return keep, dict(d.metadata.get("signals", {})), d.text


# ------------------------------------------------------------------------------------------ filters: thresholds

FACTOR = st.floats(min_value=1.0, max_value=4.0)


@st.composite
def loosened(draw):
    """(strict filter, the same filter with every threshold moved by a random amount in the loose direction)."""
    kind = draw(st.sampled_from(["gopher_quality", "gopher_repetition", "fineweb"]))
    f = lambda: draw(FACTOR)  # noqa: E731
    if kind == "gopher_quality":
        strict = GopherQuality()
        loose = GopherQuality(
            min_doc_words=int(50 / f()), max_doc_words=int(100_000 * f()), min_avg_word_length=3 / f(),
            max_avg_word_length=10 * f(), max_symbol_word_ratio=0.1 * f(), max_bullet_lines_ratio=min(1.0, 0.9 * f()),
            max_ellipsis_lines_ratio=0.3 * f(), min_alpha_words_ratio=0.8 / f(), min_stop_words=draw(st.sampled_from([2, 1, None])),
        )
    elif kind == "gopher_repetition":
        from corpusmill.curation.filters.gopher_repetition import DUP_N_GRAMS, TOP_N_GRAMS

        strict = GopherRepetition()
        loose = GopherRepetition(
            dup_line_frac=0.3 * f(), dup_para_frac=0.3 * f(), dup_line_char_frac=0.2 * f(), dup_para_char_frac=0.2 * f(),
            top_n_grams=[(n, t * f()) for n, t in TOP_N_GRAMS], dup_n_grams=[(n, t * f()) for n, t in DUP_N_GRAMS],
        )
    else:
        strict = FineWebQuality()
        loose = FineWebQuality(line_punct_thr=0.12 / f(), short_line_thr=min(1.0, 0.67 * f()),
                               char_duplicates_ratio=0.01 * f(), new_line_ratio=0.3 * f())
    return strict, loose


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(pair=loosened(), text=TEXT, lang=LANG)
def test_loosening_thresholds_never_drops_a_kept_document(pair, text, lang):
    strict, loose = pair
    keep_strict, sig_strict, text_strict = _verdict(strict, text, lang)
    keep_loose, sig_loose, text_loose = _verdict(loose, text, lang)
    assert not keep_strict or keep_loose, "kept under strict thresholds, dropped under looser ones"
    assert sig_strict == sig_loose, "signals depend on the thresholds"
    assert text_strict == text_loose == text, "these filters never rewrite text"


# ------------------------------------------------------------------------------------------ filters: purity

ALL = [GopherQuality(), GopherRepetition(), C4Quality(), C4Quality(variant="tfds"), FineWebQuality()]


def _run_all(texts: list[str], lang: str | None) -> list[list]:
    out = []
    for text in texts:
        row = []
        for f in ALL:
            keep, sig, new_text = _verdict(f, text, lang)
            row.append((keep, tuple(sorted((k, round(v, 12)) for k, v in sig.items())), new_text))
        out.append(row)
    return out


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(texts=st.lists(TEXT, min_size=2, max_size=8), lang=LANG)
def test_filter_results_do_not_depend_on_document_order(texts, lang):
    forward = _run_all(texts, lang)
    backward = _run_all(texts[::-1], lang)[::-1]
    assert forward == backward
    assert _run_all(texts, lang) == forward  # and not on what ran before (memos, caches)


_C4_LINES = ["The committee met on Tuesday to discuss the budget.", "It was a long meeting and the members were tired.",
             "They have decided to meet again next week with the mayor.", "Read more", "Share", "menu",
             "Please enable javascript in your browser to see this page.", "A citation follows here[1] in the text.",
             "no terminal punctuation in this line at all", "Ωμέγα είναι το τελευταίο γράμμα.", "東京は日本の首都です。",
             "...", "Terms of use and privacy policy apply to this site."]
C4_TEXT = st.lists(st.sampled_from(_C4_LINES), min_size=3, max_size=30).map("\n".join)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
@given(text=C4_TEXT, lang=LANG)
def test_a_stage_after_c4_sees_the_rewritten_text(text, lang):
    """C4 keeps only its good lines; the statistics cached on the document must follow the new text."""
    d = _doc(text, lang)
    c4 = C4Quality()
    apply_stage(c4, d)
    assume(is_alive(d) and d.text != text)
    after = GopherQuality()
    apply_stage(after, d)
    fresh = _doc(d.text, lang)
    apply_stage(GopherQuality(), fresh)
    assert d.metadata.get(REASON) == fresh.metadata.get(REASON)
    gq = {k: v for k, v in d.metadata["signals"].items() if k.startswith("gopher_quality.")}
    assert gq == fresh.metadata["signals"]


# ------------------------------------------------------------------------------------------ apply_stage


class _Scripted(Filter):
    name = "scripted"

    def __init__(self, outcome):
        self.outcome = outcome

    def filter(self, doc):
        if isinstance(self.outcome, BaseException):
            raise self.outcome
        return self.outcome


class _ScriptedT(Transform):
    name = "scripted_t"

    def __init__(self, outcome):
        self.outcome = outcome

    def transform(self, doc):
        if isinstance(self.outcome, BaseException):
            raise self.outcome
        return self.outcome


ERRORS = st.sampled_from([ValueError("bad"), KeyError("k"), ZeroDivisionError(), RecursionError("deep"), MemoryError(),
                          UnicodeDecodeError("utf-8", b"\xff", 0, 1, "invalid start byte"), IndexError()])
# what a Filter may answer (datatrove's convention, and malformed answers), what a Transform may answer
FILTER_OUTCOMES = st.one_of(
    st.booleans(), st.none(), st.integers(-2, 2), st.just(()), st.just([]), st.tuples(st.booleans()),
    st.tuples(st.booleans(), st.one_of(st.none(), st.text(max_size=8))), st.tuples(st.booleans(), st.text(max_size=3), st.integers()),
    ERRORS,
)
TRANSFORM_OUTCOMES = st.one_of(st.none(), st.text(max_size=8), ERRORS)


def _writable(doc: Document) -> None:
    """The row the sink would write for ``doc`` fits the Parquet schema."""
    from corpusmill.curation.rows import curated_row, dropped_row
    from corpusmill.schemas import CURATED_SCHEMA, DROPPED_SCHEMA

    if STATUS in doc.metadata:
        pa.Table.from_pylist([dropped_row(doc, 100)], schema=DROPPED_SCHEMA)
    else:
        pa.Table.from_pylist([curated_row(doc)], schema=CURATED_SCHEMA)


@settings(max_examples=300, deadline=None)
@given(outcome=st.one_of(st.tuples(st.just(False), FILTER_OUTCOMES), st.tuples(st.just(True), TRANSFORM_OUTCOMES)),
       text=st.text(max_size=20))
def test_apply_stage_always_ends_in_a_countable_state(outcome, text):
    transform, outcome = outcome
    stage = _ScriptedT(outcome) if transform else _Scripted(outcome)
    d = Document(text=text, id="x", metadata={"source_file": "f", "position": 0})
    assert apply_stage(stage, d) is d
    md = d.metadata
    if isinstance(outcome, BaseException):
        assert md[STATUS] == "error" and md[REASON] == f"exception:{type(outcome).__name__}" and md["cm_error"]
    if STATUS in md:
        assert md[STATUS] in ("dropped", "error") and md["cm_stage"] == stage.name
        assert isinstance(md[REASON], str) and md[REASON], "a drop always has a reason"
        if md[STATUS] == "error":  # a malformed verdict (e.g. an empty tuple) is an error, not a crash
            assert md["cm_error"]
    else:
        assert is_alive(d)
    _writable(d)
    # a rejected document is left alone by every later stage
    before = dict(md)
    apply_stage(_Scripted(ValueError("never called on a rejected doc")), d)
    if before.get(STATUS):
        assert d.metadata == before


@pytest.mark.parametrize("outcome", [(True, True), (False, (False, 5))], ids=["transform-returns-True", "filter-reason-5"])
def test_a_non_string_drop_reason_does_not_break_the_sink(outcome):
    transform, value = outcome
    d = Document(text="t", id="x", metadata={"source_file": "f", "position": 0})
    apply_stage(_ScriptedT(value) if transform else _Scripted(value), d)
    assert d.metadata[STATUS] == "dropped"
    _writable(d)


# ------------------------------------------------------------------------------------------ readers


def _check_documents(reader: str, data: bytes, name: str, **options) -> list[Document]:
    docs = list(get_reader(reader, **options).documents(io.BytesIO(data), name, name))
    assert docs and docs[-1].metadata.get(EVENT) == SHARD_END
    records = docs[:-1]
    assert all(EVENT not in d.metadata for d in records)
    assert docs[-1].metadata["read"] == len(records)
    positions = [d.metadata["position"] for d in records]
    assert positions == sorted(set(positions)), "positions unique and increasing"
    assert len({d.id for d in records}) == len(records)
    for d in records:
        st_ = d.metadata.get(STATUS)
        assert st_ in (None, "dropped", "error")
        if st_:
            assert d.metadata[REASON]
        if st_ == "error":
            assert d.metadata["cm_error"]
    return records


@pytest.fixture(scope="module")
def samples(shared_data) -> dict[str, tuple[str, bytes, dict]]:
    """Small real inputs of every reader, compressed and plain (damage then hits the parsers too)."""
    warc = (shared_data / "warc" / "CC-MAIN-2024-22_whirlwind.warc.gz").read_bytes()
    wet = (shared_data / "warc" / "CC-MAIN-2024-22_whirlwind.warc.wet.gz").read_bytes()
    jsonl = (shared_data / "webtext" / "dolma_cc_en_head-0174.jsonl.gz").read_bytes()
    bg = bz2.decompress((shared_data / "wikipedia" / "bgwiki-pages-articles-shortened.UTF-16.xml.bz2").read_bytes())
    en = bz2.decompress((shared_data / "wikipedia" / "enwiki-table-markup.xml.bz2").read_bytes()).decode()
    en_small = en[: en.index("<page>", en.index("</page>"))] + "</mediawiki>\n"  # siteinfo + the first page
    book = (shared_data / "books" / "pg972_devils-dictionary.txt").read_bytes()
    book = book[:6000] + book[-4000:]  # the license header and footer, a little text between
    rows = [json.loads(x) for x in gzip.decompress(jsonl).splitlines()]
    buf = io.BytesIO()
    pq.write_table(pa.table({"id": [r["id"] for r in rows], "text": [r["text"] for r in rows]}), buf, row_group_size=3)
    return {
        "warc.gz": ("warc", warc, {}),
        "warc": ("warc", gzip.decompress(warc), {}),
        "wet": ("wet", gzip.decompress(wet), {}),
        "jsonl.gz": ("jsonl", jsonl, {}),
        "jsonl": ("jsonl", gzip.decompress(jsonl), {}),
        "xml": ("wikipedia", en_small.encode(), {}),
        "utf16.xml.bz2": ("wikipedia", bz2.compress(bg[: 30_000] + bg[-2000:]), {}),
        "txt": ("books", book, {"split": "chapters"}),
        "parquet": ("parquet", buf.getvalue(), {}),
    }


NAMES = {"warc.gz": "x.warc.gz", "warc": "x.warc", "wet": "x.warc.wet", "jsonl.gz": "x.jsonl.gz", "jsonl": "x.jsonl",
         "xml": "x.xml", "utf16.xml.bz2": "x.xml.bz2", "txt": "x.txt", "parquet": "x.parquet"}


@st.composite
def damage(draw, data: bytes) -> bytes:
    b = bytearray(data)
    for _ in range(draw(st.integers(0, 6))):
        kind = draw(st.sampled_from(["flip", "insert", "delete"]))
        p = draw(st.integers(0, max(0, len(b) - 1)))
        if kind == "flip" and b:
            b[p] ^= draw(st.integers(1, 255))
        elif kind == "insert":
            b[p:p] = draw(st.binary(min_size=1, max_size=40))
        elif b:
            del b[p : p + draw(st.integers(1, 200))]
    if draw(st.booleans()):
        b = b[: draw(st.integers(0, len(b)))]
    return bytes(b)


@pytest.mark.parametrize("kind", list(NAMES))
def test_readers_never_raise_on_damaged_real_files(samples, kind):
    reader, data, options = samples[kind]
    clean = _check_documents(reader, data, NAMES[kind], **options)
    assert clean and not [d for d in clean if d.metadata.get(STATUS) == "error"], "the sample itself is clean"

    @settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
    @given(bad=damage(data))
    def check(bad):
        _check_documents(reader, bad, NAMES[kind], **options)

    check()


@settings(max_examples=400, deadline=None)
@given(data=st.binary(max_size=3000), kind=st.sampled_from(list(NAMES)))
def test_readers_never_raise_on_random_bytes(data, kind):
    reader = {"warc.gz": "warc", "warc": "warc", "wet": "wet", "jsonl.gz": "jsonl", "jsonl": "jsonl", "xml": "wikipedia",
              "utf16.xml.bz2": "wikipedia", "txt": "books", "parquet": "parquet"}[kind]
    _check_documents(reader, data, NAMES[kind])


JSON_SCALARS = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False), st.text(max_size=20))
JSON_VALUES = st.recursive(JSON_SCALARS, lambda c: st.lists(c, max_size=3) | st.dictionaries(st.text(max_size=5), c, max_size=3),
                           max_leaves=8)


@settings(max_examples=100, deadline=None)
@given(objs=st.lists(st.fixed_dictionaries({"text": st.text(max_size=200)}, optional={"id": JSON_SCALARS, "meta": JSON_VALUES}),
                     max_size=15), gz=st.booleans(), ascii_only=st.booleans())
def test_jsonl_round_trips_every_document(objs, gz, ascii_only):
    raw = b"".join(json.dumps(o, ensure_ascii=ascii_only).encode() + b"\n" for o in objs)
    name = "x.jsonl.gz" if gz else "x.jsonl"
    docs = _check_documents("jsonl", gzip.compress(raw) if gz else raw, name)
    assert [d.text for d in docs] == [o["text"] for o in objs]
    assert [d.metadata["position"] for d in docs] == list(range(len(objs)))
    assert all(is_alive(d) for d in docs)


# ------------------------------------------------------------------------------------------ token shards


@st.composite
def token_docs(draw):
    vocab = draw(st.sampled_from([300, 65_536, 70_000]))
    n = draw(st.integers(0, 25))
    lengths = draw(st.lists(st.integers(0, 40), min_size=n, max_size=n))
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    docs = [rng.integers(1, vocab, size=k) for k in lengths]  # id 0 is EOS: never inside a document
    shard_tokens = draw(st.integers(1, 120))
    splits = draw(st.lists(st.integers(1, 6), max_size=10))  # documents per ShardWriter.add call
    return vocab, docs, shard_tokens, splits


@pytest.mark.parametrize("fmt", ["ds", "megatron", "llmc"])
def test_shard_writer_and_reader_round_trip(fmt):
    from corpusmill.tokenizer.formats import ShardWriter, eos_position, token_dtype
    from corpusmill.tokenizer.pack import _check_shard_files
    from corpusmill.tokenizer.shards import open_shards

    @settings(max_examples=60, deadline=None)
    @given(case=token_docs())
    def check(case):
        vocab, docs, shard_tokens, splits = case
        dtype = token_dtype(fmt, vocab)
        append = eos_position(fmt) == "append"
        full = [np.concatenate([d, [0]]) if append else np.concatenate([[0], d]) for d in docs]
        with tempfile.TemporaryDirectory() as tmp:
            root = Path(tmp)
            w = ShardWriter(root / "train", "train", fmt, dtype, shard_tokens)
            i, k = 0, 0
            while i < len(full):
                step = splits[k % len(splits)] if splits else len(full)
                block = full[i : i + step]
                w.add(np.concatenate(block), [len(x) for x in block])
                i, k = i + step, k + 1
            shards = w.close()
            total = sum(len(x) for x in full)
            assert sum(s["num_tokens"] for s in shards) == total
            assert all(s["num_tokens"] == shard_tokens for s in shards[:-1])
            manifest = {"format": fmt, "dtype": dtype.name, "eos_id": 0, "eos_position": eos_position(fmt),
                        "splits": {"train": {"dir": "train", "shards": shards}}}
            (root / "manifest.json").write_text(json.dumps(manifest))
            errors: list[str] = []
            for s in shards:
                _check_shard_files(fmt, root / "train" / s["file"], s, dtype, 0, errors)
            assert not errors, errors
            assert sorted(p.name for p in (root / "train").iterdir() if p.name.startswith("."))  == [], "temporary files"
            ds = open_shards(root, "train")
            assert ds.num_tokens == total
            stream = np.concatenate(full) if full else np.zeros(0, np.int64)
            assert np.array_equal(ds.tokens(0, total), stream)
            got = [x.tolist() for x in ds.iter_documents(chunk_tokens=max(1, shard_tokens // 2))]
            assert got == [x.tolist() for x in full]

    check()
