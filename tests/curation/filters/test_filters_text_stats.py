"""The shared text statistics: our English word split equals datatrove's (spaCy ``blank("en")``) on
real and on generated text, sentence counts equal datatrove's ``split_into_sentences``, the fast n-gram
functions equal datatrove's, and the per-document cache behaves."""

from __future__ import annotations

import pickle

import pytest
from datatrove.data import Document
from datatrove.pipeline.filters.gopher_repetition_filter import find_all_duplicate, find_top_duplicate, get_n_grams
from datatrove.utils.text import split_into_sentences, split_into_words
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from corpusmill.curation.filters.c4 import CITATION_RE
from corpusmill.tools.shared_corpus import load_books, load_udhr, load_webtext, load_wikipedia
from corpusmill.curation.text.doc_stats import CACHE_KEY, get_stats
from corpusmill.curation.text.english_words import english
from corpusmill.curation.text.ngrams import SubstringHasher, duplicated_ngram_chars, duplicated_ngram_chars_hashed, find_duplicates, top_ngram_chars, top_ngram_chars_hashed
from corpusmill.curation.text.other_words import generic_words


def _diff(ref, ours):
    import difflib

    sm = difflib.SequenceMatcher(a=ref, b=ours, autojunk=False)
    return [(op, ref[a:b], ours[c:d]) for op, a, b, c, d in sm.get_opcodes() if op != "equal"][:5]


def test_english_words_equal_datatrove_on_real_text(shared_data):
    web = load_webtext(shared_data)
    texts = [s.text for s in web[::3]]
    texts += [s.text for s in load_books(shared_data, 5000)[::25]]
    texts += [s.text for s in load_wikipedia(shared_data, 5000)[::25]]
    # English rules on other languages too (a document without a language is split as English)
    texts += [s.text for s in load_udhr(shared_data) if s.id.split("/")[-1] in ("eng", "fra", "rus", "cmn_hans", "arb", "hin", "jpn")]
    bad = []
    for t in texts:
        ref = split_into_words(t)
        ours = english().words(t)
        if ref != ours:
            bad.append(_diff(ref, ours))
    assert bad == [], f"{len(bad)} of {len(texts)} texts split differently: {bad[:5]}"


def test_sentence_counts_equal_datatrove(shared_data):
    lines = []
    for s in load_webtext(shared_data)[::7]:
        for ln in s.text.splitlines():
            ln = CITATION_RE.sub("", ln.strip())
            if len(ln.split()) >= 3:
                lines.append(ln)
    lines += ["Hi.  ! there. x", "Done. [1] Next", "a.C. 12(1): said. Then", "It ends here.  ", "Wait... what?! Ok."]
    bad = [(ln, len(split_into_sentences(ln)), english().count_sentences(ln)) for ln in lines[:3000]]
    bad = [b for b in bad if b[1] != b[2]]
    assert bad == [], bad[:10]


# text made of pieces that exercise prefixes, suffixes, infixes, special cases and URLs
_PIECES = st.sampled_from(
    [
        "a", "the", "I", "don't", "can't", "It's", "it’s", "U.S.", "e.g.", "a.m.", "p.m.", "Dr.", "vs.", "and/or",
        ":)", ":-)", "(:", "):", "<3", "^_^", "'s", "'", '"', "''", "(", ")", "[", "]", "{", "}", ".", ",", "!", "?",
        "...", "…", "-", "--", "—", "–", "/", ":", ";", "#", "@", "$", "%", "&", "*", "+", "=", "_", "~", "°", "C",
        "10", "3.5", "1,000", "5km", "10kg", "$5", "5$", "£3", "http://example.com/a?b=c", "www.x.org", "x@y.com",
        "co-op", "e-mail", "A.B", "a.b", "ab", "12(1):", "a.C.", "Let's", "gonna", "cannot", "'em", "o.O", "\u00a0",
        "é", "ß", "Ж", "中", "😀", "\t", "\n", " ", "  ", "\u2028", "\x0b",
    ]
)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(_PIECES, st.sampled_from(["", "", " ", "\n", "  "])), max_size=25))
def test_english_words_equal_datatrove_on_generated_text(parts):
    text = "".join(p + sep for p, sep in parts)
    assert english().words(text) == split_into_words(text)


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=80))
def test_english_words_equal_datatrove_on_arbitrary_unicode(text):
    assert english().words(text) == split_into_words(text)


@settings(max_examples=150, deadline=None)
@given(st.lists(st.tuples(_PIECES, st.sampled_from(["", " ", " ", "  ", " \t", "\u00a0"])), min_size=1, max_size=15))
def test_sentence_count_equals_datatrove_on_generated_lines(parts):
    line = "".join(p + sep for p, sep in parts).replace("\n", " ").strip()
    if not line:
        return
    assert english().count_sentences(line) == len(split_into_sentences(line))


_WORDS = st.lists(st.sampled_from(["a", "b", "ab", "ba", "c", "abc", "the", "x"]), max_size=60)


@settings(max_examples=300, deadline=None)
@given(_WORDS)
def test_ngram_functions_equal_datatrove(words):
    concat = "".join(words)
    offsets = [0]
    for w in words:
        offsets.append(offsets[-1] + len(w))
    import numpy as np

    hasher = SubstringHasher(concat)
    off = np.asarray(offsets, dtype=np.int64)
    joined = " ".join(words)
    starts = np.asarray([off[i] + i for i in range(len(words))], dtype=np.int64)
    ends = np.asarray([off[i + 1] + i for i in range(len(words))], dtype=np.int64)
    space = SubstringHasher(joined)
    for n in range(5, 11):
        ref = find_all_duplicate(words, n)
        assert duplicated_ngram_chars(concat, offsets, n) == ref
        assert duplicated_ngram_chars_hashed(hasher, off, n) == ref
    for n in (2, 3, 4):
        grams = get_n_grams(words, n)
        ref = find_top_duplicate(grams) if grams else -1
        assert top_ngram_chars(words, n) == ref
        assert (top_ngram_chars_hashed(space, starts, ends, words, n) if words else -1) == ref


def test_find_duplicates_counts_every_repeat():
    assert find_duplicates(["a", "bb", "a", "bb", "a", "c"]) == (3, 1 + 2 + 1)
    assert find_duplicates([]) == (0, 0)


def test_generic_words():
    assert generic_words("Das ist's, nicht wahr?! 12,5 km... (e-mail)") == [
        "Das", "ist's", ",", "nicht", "wahr", "?", "!", "12,5", "km", "...", "(", "e-mail", ")"]
    assert generic_words("«Ça» — l'été!!") == ["«", "Ça", "»", "—", "l'été", "!!"]
    assert generic_words("東京は日本の首都です。") == ["東", "京", "は", "日", "本", "の", "首", "都", "で", "す", "。"]
    assert generic_words("서울은 한국의 수도이다.") == ["서울은", "한국의", "수도이다", "."]


def test_stats_are_cached_and_follow_text_changes():
    doc = Document(text="one two three. four five six.", id="x", metadata={})
    st1 = get_stats(doc)
    assert get_stats(doc) is st1 and doc.metadata[CACHE_KEY] is st1
    w = st1.words
    assert get_stats(doc).words is w  # computed once
    doc.text = "seven eight"
    st2 = get_stats(doc)
    assert st2 is not st1 and st2.words == ["seven", "eight"]
    doc.metadata["language"] = "ja"
    assert get_stats(doc) is not st2  # another word split for another language
    restored = pickle.loads(pickle.dumps(doc))
    assert restored.metadata[CACHE_KEY].text is None  # the word lists are not shipped
    assert get_stats(restored).words == ["seven", "eight"]


@pytest.mark.parametrize("text", ["", " ", "\n\n", "word"])
def test_stats_on_tiny_texts(text):
    st_ = get_stats(Document(text=text, id="t", metadata={}))
    assert st_.words == split_into_words(text)
    assert st_.word_props[0] == len(st_.words)


def test_word_props_from_chunks_equal_per_word(shared_data):
    from datatrove.utils.text import PUNCTUATION_SET

    for s in load_webtext(shared_data)[::20]:
        st_ = get_stats(Document(text=s.text, id=s.id, metadata={}))
        words = st_.words
        nonsym = [w for w in words if any(ch not in PUNCTUATION_SET for ch in w)]
        expected = (len(words), len(nonsym), sum(map(len, nonsym)), sum(any(c.isalpha() for c in w) for w in words))
        assert st_.word_props == expected, s.id


def test_rule_tables_equal_spacy_and_workers_do_not_import_it(tmp_path):
    """The stored tables are spaCy's own; a filter chain never imports spaCy (nor torch)."""
    import json
    import subprocess
    import sys
    from importlib import resources

    from corpusmill.curation.text import spacy_tables

    fresh = spacy_tables.build_tables()
    assert fresh["spacy_version"] == spacy_tables.spacy_version()
    assert json.loads(json.dumps(fresh)) == spacy_tables.load_tables()
    shipped = json.loads((resources.files("corpusmill.curation.data") / spacy_tables.SHIPPED).read_text())
    if shipped["spacy_version"] == fresh["spacy_version"]:
        assert shipped == json.loads(json.dumps(fresh))

    code = (
        "import sys\n"
        "from corpusmill.curation.registry import build_stage\n"
        "from corpusmill.curation.stage import apply_stage\n"
        "from corpusmill.curation.document import new_document\n"
        "doc = new_document('One sentence here. And another one!\\nA second line of words.', 'f', 0)\n"
        "for n in ('gopher_repetition', 'gopher_quality', 'c4', 'fineweb'):\n"
        "    apply_stage(build_stage(n), doc)\n"
        "print(sorted(m for m in ('spacy', 'torch', 'thinc') if m in sys.modules))\n"
    )
    env = {**__import__("os").environ, "CORPUSMILL_CACHE": str(tmp_path)}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True).stdout
    assert out.strip() == "[]"


def test_rule_tables_cached_per_spacy_version(tmp_path, monkeypatch):
    from corpusmill.curation.text import spacy_tables

    real = spacy_tables.spacy_version()
    monkeypatch.setenv("CORPUSMILL_CACHE", str(tmp_path))
    monkeypatch.setattr(spacy_tables, "spacy_version", lambda: real + ".post-test")  # shipped copy does not match
    built = []
    monkeypatch.setattr(spacy_tables, "build_tables", lambda f=spacy_tables.build_tables: built.append(1) or dict(f(), spacy_version=real + ".post-test"))
    a = spacy_tables.load_tables()
    b = spacy_tables.load_tables()  # from the cache file, not rebuilt
    assert a == b and built == [1]
    assert (tmp_path / f"spacy_en_rules-{real}.post-test.json").exists()
