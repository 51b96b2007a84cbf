"""The BPE learners behind train-tokenizer. "ours" (default: chunk counting + numba merge loop) learns
exactly rustbpe's merges (same counts, same tie-breaking: larger count, then smaller (left, right) id
pair); rustbpe gives the same vocabulary as rustbpe called directly and nearly HF's BpeTrainer's merges
(ties ordered differently); every tokenizer.json round-trips the shared data in every script."""

from __future__ import annotations

import json
from collections import Counter

import numpy as np
import pyarrow.parquet as pq
import pytest
import regex

from corpusmill.tokenizer.bpe import SPLIT_PATTERN, byte_to_unicode, merges_from_ranks
from corpusmill.tokenizer.bpe_count import PretokenCounter, count_pretokens
from corpusmill.tokenizer.fast_encode import Encoder
from corpusmill.tokenizer.reader import expand_inputs
from corpusmill.tokenizer.sample_corpus import SOURCES, write_sample_corpus
from corpusmill.tokenizer.train import merge_kernel, train_tokenizer

rustbpe = pytest.importorskip("rustbpe")
VOCAB = 1024
# spaces after whitespace / at the start (not chunk cuts), whitespace runs, Unicode spaces, digits,
# contractions, the ASCII separators Python calls whitespace and the split pattern does not
TRICKY = [
    " lead", "  two  spaces  ", "a\n \nb", "x\t y", "tab\t\tz ", "nbsp\u00a0 word", "ideo\u3000 全角 空白",
    "don't  WE'LL they're", "1234567 89 0", "sep\x1c x\x1d\x1e \x1f y", "end \n", "\n\n  \n", " ", "",
    "emoji 🙂🙂 ok", "mixed...  ,, ;; word", "trailing   ", "\r\n \r\n x",
]


@pytest.fixture(scope="module")
def corpus(shared_data, tmp_path_factory):
    d = tmp_path_factory.mktemp("curated")
    write_sample_corpus(shared_data, d, max_bytes=600_000, files=2)
    return d


@pytest.fixture(scope="module")
def trained(corpus, tmp_path_factory):
    out = {}
    for backend in ("ours", "rustbpe", "hf"):
        d = tmp_path_factory.mktemp(backend)
        meta = train_tokenizer(str(corpus), VOCAB, d, heldout_fraction=0, report=False, backend=backend)
        assert meta["backend"] == backend
        out[backend] = d
    return out


def _texts(corpus):
    return pq.read_table(expand_inputs(str(corpus)), columns=["text"]).column("text").to_pylist()


def _merges(d):
    return [tuple(m) if isinstance(m, list) else tuple(m.split(" ", 1))
            for m in json.loads((d / "tokenizer.json").read_text())["model"]["merges"]]


def _vocab(d):
    return json.loads((d / "tokenizer.json").read_text())["model"]["vocab"]


def test_default_is_ours():
    assert merge_kernel() is not None
    from corpusmill.tokenizer.train import default_backend

    assert default_backend() == "ours"


def test_pretoken_counts_equal_regex_over_documents(corpus, shared_data):
    """Chunk counting gives exactly the split regex's pre-tokens, document by document."""
    udhr = [d["text"] for d in SOURCES["udhr"](shared_data)]
    texts = _texts(corpus) + udhr + TRICKY
    split = regex.compile(SPLIT_PATTERN).findall
    ref = Counter(t for doc in texts for t in split(doc))
    assert count_pretokens(texts) == dict(ref)
    small = PretokenCounter(window_bytes=10_000)  # folded into pre-tokens many times on the way
    for i in range(0, len(texts), 7):
        small.update(texts[i : i + 7])
    small.fold()
    assert small.pretokens == dict(ref)


def test_same_merges_as_rustbpe(trained, corpus):
    assert _merges(trained["ours"]) == _merges(trained["rustbpe"])
    assert _vocab(trained["ours"]) == _vocab(trained["rustbpe"])


def _rustbpe_merges(texts, vocab):
    ref = rustbpe.Tokenizer()
    ref.train_from_iterator(iter(texts), vocab_size=vocab, pattern=SPLIT_PATTERN)
    return sorted(((bytes(b), r) for b, r in ref.get_mergeable_ranks() if r >= 256), key=lambda x: x[1])


def _our_merges(texts, vocab):
    c = PretokenCounter()
    c.update(texts)
    merges, counts = merge_kernel()(*c.arrays(), vocab - 256, 1)
    tb = [bytes([i]) for i in range(256)]
    for a, b in merges:
        tb.append(tb[a] + tb[b])
    return [(t, i) for i, t in enumerate(tb) if i >= 256], counts


def test_ties_and_repeats_like_rustbpe():
    """Small inputs where nearly every step is a tie, and runs of one byte (overlapping pairs)."""
    cases = [
        ["ab cd ef gh", "ba dc fe hg"],
        ["aaaa aaa aa a", "bbbbbbb", "abababab ba"],
        ["the cat sat on the mat", "zz yy xx ww vv", "ééé ñññ 🙂🙂"],
        TRICKY,
    ]
    for texts in cases:
        ours, _ = _our_merges(texts, 300)
        assert ours == _rustbpe_merges(texts, 300), texts


def test_counts_are_64_bit():
    flat = np.frombuffer(b"abc", dtype=np.uint8)
    merges, counts = merge_kernel()(flat, np.array([0, 3]), np.array([3 * 2**31]), 2, 1)
    assert merges.tolist() == [[97, 98], [256, 99]] and counts.tolist() == [3 * 2**31] * 2


def test_merges_agree_with_hf(trained):
    ours, hf = _merges(trained["rustbpe"]), _merges(trained["hf"])
    assert len(ours) == len(hf) == VOCAB - 257
    # equal counts are ordered differently (HF's byte ids follow its alphabet order), so compare as sets
    assert len(set(ours) & set(hf)) >= 0.99 * len(hf)


def test_same_vocabulary_and_ids_as_rustbpe(trained, corpus):
    ref = rustbpe.Tokenizer()
    ref.train_from_iterator(iter(_texts(corpus)), vocab_size=VOCAB - 1, pattern=SPLIT_PATTERN)  # - <|endoftext|>
    ranks = {bytes(b): r for b, r in ref.get_mergeable_ranks()}
    b2u = byte_to_unicode()
    vocab = _vocab(trained["rustbpe"])
    assert len(vocab) == VOCAB
    # ids = rank + 1 (<|endoftext|> is id 0), merges in rustbpe's order
    assert {"".join(b2u[x] for x in tok): r + 1 for tok, r in ranks.items()} == {k: v for k, v in vocab.items() if v > 0}
    ours = [("".join(b2u[x] for x in a), "".join(b2u[x] for x in b)) for a, b in merges_from_ranks(ranks)]
    assert _merges(trained["rustbpe"]) == ours
    enc = Encoder(trained["rustbpe"], backend="hf")
    texts = _texts(corpus)[:200]
    assert [[i - 1 for i in ids] for ids in enc.encode_batch(texts)] == [ref.encode(t) for t in texts]


@pytest.mark.parametrize("backend", ["ours", "rustbpe"])
def test_round_trip_every_script(trained, shared_data, backend):
    udhr = [d["text"][:3000] for d in SOURCES["udhr"](shared_data)]
    assert len(udhr) > 400
    enc = Encoder(trained[backend])
    assert enc.backend == "tiktoken", enc.fallback_reason
    ids = enc.encode_batch(udhr, num_threads=2)
    assert ids == enc.encode_batch_hf(udhr)
    assert [enc.decode(x) for x in ids] == udhr

