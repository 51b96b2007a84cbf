"""Normalisation and shingles (corpusmill.curation.dedup.normalize), checked against slow reference code."""

from __future__ import annotations

import gzip
import json
import re
import unicodedata

import numpy as np
import pytest

from corpusmill.curation.dedup.normalize import (
    fmix64,
    normalize_codepoints,
    normalize_text,
    normalize_words,
    shingle_hashes,
    shingles_from_codepoints,
)

DOLMA = "webtext/dolma_CC-MAIN-20190717121559-20190717143559-00140.jsonl.gz"

_SEPS = ".,\u060c\u066b\u2396\u2397\u2398"
_DIGITS = re.compile(rf"\d+(?:[{re.escape(_SEPS)}]\d+)*")


def reference_normalize(text: str) -> str:
    """Straightforward string version of the documented rules (slow)."""
    chars = []
    for ch in unicodedata.normalize("NFKD", text):
        if unicodedata.category(ch) in ("Mn", "Cf"):
            continue
        chars.append(ch.lower())
    s = _DIGITS.sub("0", "".join(chars))
    out = []
    for ch in s:
        c = unicodedata.category(ch)
        out.append(" " if c[0] in "PSZ" or c == "Cc" else ch)
    return " ".join("".join(out).split())


def _fmix64(h: int) -> int:
    mask = (1 << 64) - 1
    h ^= h >> 33
    h = (h * 0xFF51AFD7ED558CCD) & mask
    h ^= h >> 33
    h = (h * 0xC4CEB9FE1A85EC53) & mask
    return h ^ (h >> 33)


def reference_shingles(text: str, n: int = 5) -> np.ndarray:
    """Hash of each n-gram *string*, one polynomial per string in Python ints (slow)."""
    m = 0x9E3779B97F4A7C15
    norm = normalize_text(text)
    if not norm:
        return np.empty(0, dtype=np.uint64)
    words = norm.split(" ")
    grams = [" ".join(words[i : i + n]) for i in range(len(words) - n + 1)] or [norm]
    out = set()
    for g in set(grams):
        h = 0
        for ch in g:
            h = (h * m + _fmix64((ord(ch) + m) & ((1 << 64) - 1))) & ((1 << 64) - 1)
        out.add(_fmix64(h))
    return np.array(sorted(out), dtype=np.uint64)


@pytest.fixture(scope="module")
def dolma_texts(shared_data):
    with gzip.open(shared_data / DOLMA, "rt", encoding="utf-8") as f:
        return [json.loads(line)["text"] for line in f]


def test_rules_examples():
    assert normalize_text("Héllo,  WORLD!!\n\tthe End.") == "hello world the end"
    assert normalize_text("pi = 3.14, 1,234,567 people; ١٢٣ and x² 7.") == "pi 0 0 people 0 and x0 0"
    assert normalize_text("ﬁne Ｂig café naïve Ångström") == "fine big cafe naive angstrom"
    assert normalize_text("co\u00adoperate zero\u200bwidth \ufeffbom") == "cooperate zerowidth bom"
    assert normalize_text("a\u00a0b\u2003c\u2028d") == "a b c d"
    assert normalize_text("don't … stop!") == "don t stop"
    assert normalize_text("") == "" and normalize_text(" .,;!? ") == ""
    assert normalize_words("") == [] and normalize_words("A b") == ["a", "b"]
    # broken input (lone surrogate) does not raise
    assert normalize_text("a\ud800b c") == "a\ud800b c"


def test_matches_reference_on_real_web_text(dolma_texts):
    bad = [i for i, t in enumerate(dolma_texts) if normalize_text(t) != reference_normalize(t)]
    assert not bad, f"{len(bad)} docs differ, first {bad[:5]}"


def test_matches_reference_on_books(shared_data):
    for p in sorted((shared_data / "books").glob("*.txt")):
        raw = p.read_bytes()
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            text = raw.decode("latin-1")
        text = text[:60_000]
        assert normalize_text(text) == reference_normalize(text), p.name


def test_shingles_are_hashes_of_ngram_strings(dolma_texts):
    for t in dolma_texts[:40] + ["one", "two words", "exactly five words here now", "six words are here right now"]:
        got = shingle_hashes(t)
        assert np.array_equal(got, reference_shingles(t)), t[:80]


def test_fmix64_matches_python():
    xs = [0, 1, 2**63, 2**64 - 1, 0x9E3779B97F4A7C15]
    assert fmix64(np.array(xs, dtype=np.uint64)).tolist() == [_fmix64(x) for x in xs]


def test_shingle_set_properties():
    assert shingle_hashes("").size == 0 and shingle_hashes("!!! ...").size == 0
    assert shingle_hashes("short text").size == 1  # fewer than 5 words: one shingle
    s = shingle_hashes("a b c d e f g a b c d e f g")
    assert s.size == 7 and np.all(s[1:] > s[:-1])  # distinct, sorted
    # text order and repeats available on request
    z = normalize_codepoints("a b c d e f g a b c d e f g")
    assert shingles_from_codepoints(z, unique=False).size == 10
    # normalisation-equivalent texts have the same shingles
    assert np.array_equal(shingle_hashes("The Cat sat on the mat, 2 times!"), shingle_hashes("the cat SAT on the mat 7 times"))
    # word order matters
    assert not np.array_equal(shingle_hashes("a b c d e"), shingle_hashes("e d c b a"))
    # n=1 gives one shingle per distinct word
    z = normalize_codepoints("x y x z")
    assert shingles_from_codepoints(z, 1).size == 3
