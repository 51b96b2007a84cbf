"""StopWords: keeps real text of many languages (UDHR translations), drops text that is not language,
and equals Gopher's rule on English."""

from __future__ import annotations

import random

import pytest
from datatrove.data import Document

from corpusmill.curation.document import signals
from corpusmill.curation.filters import GopherQuality, StopWords
from corpusmill.tools.shared_corpus import load_udhr, load_webtext
from corpusmill.curation.filters.stop_words import package_stop_words

# UDHR translation -> ISO 639-1 (the translations the package has a list for, every script it covers)
UDHR = {
    "eng": "en", "fra": "fr", "deu_1996": "de", "spa": "es", "ita": "it", "por_PT": "pt", "nld": "nl",
    "swe": "sv", "dan": "da", "nob": "nb", "fin": "fi", "hun": "hu", "pol": "pl", "ces": "cs", "slk": "sk",
    "ron_1993": "ro", "tur": "tr", "ind": "id", "rus": "ru", "ukr": "uk", "bul": "bg", "ell_monotonic": "el",
    "arb": "ar", "heb": "he", "pes_1": "fa", "hin": "hi", "guj": "gu", "cmn_hans": "zh", "cmn_hant": "zh",
    "jpn": "ja", "kor": "ko", "vie": "vi", "cat": "ca",
}


@pytest.fixture(scope="module")
def udhr(shared_data):
    return {s.id.split("/")[-1]: s for s in load_udhr(shared_data)}


def _doc(text, lang=None):
    return Document(text=text, id="t", metadata={} if lang is None else {"language": lang})


def test_keeps_real_text_in_many_languages(udhr):
    f = StopWords()
    failures = []
    for code, lang in UDHR.items():
        s = udhr[code]
        assert s.language == lang, (code, s.language)
        d = _doc(s.text, lang)
        r = f.filter(d)
        sig = signals(d)
        if r is not True or sig["stop_words.count"] < 5 or sig["stop_words.ratio"] < 0.05:
            failures.append((code, r, sig))
    assert failures == []


def test_keeps_each_article_in_major_languages(shared_data):
    f = StopWords()
    arts = [a for a in load_udhr(shared_data, per_article=True, min_words=20) if a.id.split("/")[1].split("#")[0] in ("eng", "fra", "deu_1996", "rus", "cmn_hans", "arb", "jpn", "hin")]
    kept = [f.filter(_doc(a.text, a.language)) is True for a in arts]
    assert len(arts) > 100 and sum(kept) / len(kept) > 0.97


def test_drops_text_that_is_not_language():
    rng = random.Random(0)
    f = StopWords()
    letters = "abcdefghijklmnopqrstuvwxyz"
    gibberish = " ".join("".join(rng.choice(letters) for _ in range(rng.randint(4, 9))) for _ in range(300))
    assert f.filter(_doc(gibberish, "en")) == (False, "gopher_enough_stop_words")
    table = "\n".join(f"{i} | {i * 7 % 13} | {i * 3.5:.1f}" for i in range(200))
    for lang in ("en", "de", "ru", "zh"):
        assert f.filter(_doc(table, lang)) == (False, "gopher_enough_stop_words"), lang
    keywords = "cheap flights hotels deals london paris rome berlin best price booking " * 10
    assert f.filter(_doc(keywords, "en"))[0] is False


def test_wrong_language_fails_the_ratio(udhr):
    # English text declared German passes the weak count rule but not a density threshold
    f = StopWords(min_stop_word_ratio=0.1)
    assert f.filter(_doc(udhr["deu_1996"].text, "de")) is True
    assert f.filter(_doc(udhr["eng"].text, "de")) == (False, "stop_words_low_ratio")


def test_missing_and_unknown_language():
    text = "the cat sat on the mat with a dog and that bird " * 3
    assert StopWords().filter(_doc(text)) is True  # no language -> English
    assert StopWords(default_language="de").filter(_doc(text)) == (False, "gopher_enough_stop_words")
    d = _doc("kiswahili ni lugha", "sw")  # no list in the package
    assert StopWords().filter(d) is True and signals(d)["stop_words.has_list"] == 0.0
    assert StopWords(unknown_language="drop").filter(_doc("x", "sw")) == (False, "stop_words_no_list")
    assert StopWords().filter(_doc(text, "eng_Latn")) is True and StopWords().filter(_doc(text, "en-GB")) is True


def test_package_lists_are_cleaned():
    he = package_stop_words("he")
    assert "אבל" in he and not any('"' in w or "," in w for w in he)
    assert all(" " not in w for w in package_stop_words("vi"))
    assert package_stop_words("sw") is None


def test_equals_gopher_rule_on_english_web_text(shared_data):
    # case-sensitive, Gopher's eight words: the same verdict as the stop-word rule of GopherQuality
    sw = StopWords(case_sensitive=True)
    only_stop = GopherQuality(min_doc_words=None, max_doc_words=None, min_avg_word_length=None,
                              max_avg_word_length=None, max_symbol_word_ratio=None,
                              max_bullet_lines_ratio=None, max_ellipsis_lines_ratio=None,
                              min_alpha_words_ratio=None)
    n_drop = 0
    for s in load_webtext(shared_data)[::2]:
        a = sw.filter(Document(text=s.text, id=s.id, metadata={}))
        b = only_stop.filter(Document(text=s.text, id=s.id, metadata={}))
        assert a == b, s.id
        n_drop += a is not True
    assert n_drop > 5


def test_decomposed_text_matches_composed_stop_words():
    """The UDHR's Vietnamese is stored decomposed (NFD); stop-word lists are composed (NFC)."""
    import unicodedata

    from corpusmill.curation.document import new_document, signals
    from corpusmill.curation.filters.stop_words import StopWords
    from corpusmill.curation.stage import apply_stage

    text = "Mọi người sinh ra đều được tự do và bình đẳng về nhân phẩm và quyền lợi của các dân tộc trong năm này."
    st = StopWords(min_stop_words=2, stop_words={"vi": ["và", "của", "các", "trong", "được"]})
    counts = []
    for form in ("NFC", "NFD"):
        d = new_document(unicodedata.normalize(form, text), "t.jsonl", 0)
        d.metadata["language"] = "vi"
        apply_stage(st, d)
        counts.append(signals(d)["stop_words.count"])
    assert counts[0] == counts[1] == 5
