"""TokenToWordRatio with the shipped thresholds and throwaway tokenizer: keeps real text, drops garbled
and repetitive text; the thresholds file is consistent with the tokenizer and the derivation."""

from __future__ import annotations

import json
import random

import pytest
from datatrove.data import Document

from corpusmill.curation.document import signals
from corpusmill.curation.filters import TokenToWordRatio
from corpusmill.tools.derive_token_ratio import derive, file_sha256
from corpusmill.tools.shared_corpus import load_books, load_udhr
from corpusmill.curation.filters.token_ratio import DEFAULT_THRESHOLDS, DEFAULT_TOKENIZER


@pytest.fixture(scope="module")
def f():
    flt = TokenToWordRatio()
    flt.setup()
    return flt


def _doc(text, lang="en"):
    return Document(text=text, id="t", metadata={} if lang is None else {"language": lang})


def test_thresholds_file_matches_shipped_tokenizer():
    meta = json.loads(DEFAULT_THRESHOLDS.read_text())
    assert meta["tokenizer"]["sha256"] == file_sha256(DEFAULT_TOKENIZER)
    langs = meta["languages"]
    for lang in ("en", "nl", "bg", "de", "fr", "ru", "zh", "ja", "ar", "hi"):
        b = langs[lang]
        assert 0 < b["low"] < b["p_low"] <= b["median"] <= b["p_high"] < b["high"], lang


def test_refuses_thresholds_of_another_tokenizer(tmp_path):
    meta = json.loads(DEFAULT_THRESHOLDS.read_text())
    meta["tokenizer"]["sha256"] = "0" * 64
    p = tmp_path / "t.json"
    p.write_text(json.dumps(meta))
    with pytest.raises(ValueError, match="re-derive"):
        TokenToWordRatio(thresholds=p, tokenizer_path=DEFAULT_TOKENIZER).setup()
    TokenToWordRatio(thresholds=p, tokenizer_path=DEFAULT_TOKENIZER, allow_tokenizer_mismatch=True).setup()


def test_keeps_real_text(shared_data, f):
    samples = [s for s in load_books(shared_data, 3000)[::4]]
    samples += [s for s in load_udhr(shared_data) if s.language in ("en", "fr", "de", "ru", "zh", "ja", "ar", "hi", "nl", "bg")]
    verdicts = [(s.id, f.filter(_doc(s.text, s.language))) for s in samples]
    dropped = [v for v in verdicts if v[1] is not True]
    assert len(dropped) <= 0.02 * len(verdicts), dropped


def test_drops_garbled_text(shared_data, f):
    rng = random.Random(1)
    alphabet = "qxzjkvwbfgh0123456789"
    garbled = " ".join("".join(rng.choice(alphabet) for _ in range(rng.randint(5, 12))) for _ in range(200))
    assert f.filter(_doc(garbled)) == (False, "token_ratio_high")
    b64 = " ".join("".join(rng.choice("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/") for _ in range(40)) for _ in range(60))
    assert f.filter(_doc(b64)) == (False, "token_ratio_high")
    # mojibake: UTF-8 read as Latin-1, tagged with the language it came from or with none (-> en)
    udhr = {s.id.split("/")[-1]: s for s in load_udhr(shared_data)}
    for code, lang in (("rus", "ru"), ("cmn_hans", "zh"), ("arb", "ar"), ("ell_monotonic", "el")):
        moj = udhr[code].text.encode("utf-8").decode("latin-1")
        assert f.filter(_doc(udhr[code].text, lang)) is True, code
        assert f.filter(_doc(moj, lang)) == (False, "token_ratio_high"), code
        assert f.filter(_doc(moj, None)) == (False, "token_ratio_high"), code


def test_drops_repetitive_text(f):
    d = _doc("the " * 300)
    assert f.filter(d) == (False, "token_ratio_low")
    assert signals(d)["token_ratio.tokens_per_word"] == pytest.approx(1.0, abs=0.01)
    assert f.filter(_doc(" ".join(["and the of to a in"] * 60))) == (False, "token_ratio_low")


def test_short_unknown_and_missing_language(f):
    d = _doc("qxz vbn " * 10)  # 20 words < min_words: passes, signals recorded
    assert f.filter(d) is True and signals(d)["token_ratio.words"] == 20.0
    text = "the " * 100
    assert f.filter(_doc(text, None)) == (False, "token_ratio_low")  # missing -> en
    assert f.filter(_doc(text, "xx")) is True  # no thresholds for it
    g = TokenToWordRatio(unknown_language="drop")
    assert g.filter(_doc(text, "xx")) == (False, "token_ratio_no_thresholds")


def test_derive_on_a_small_sample(shared_data):
    samples = [s for s in load_udhr(shared_data, per_article=True, min_words=60) if s.language in ("en", "de")]
    out = derive(samples, DEFAULT_TOKENIZER, 1, 99, 0.1, min_samples=10, min_words=50)
    assert set(out["languages"]) == {"en", "de"}
    de = out["languages"]["de"]
    assert de["low"] == pytest.approx(de["p_low"] * 0.9, abs=1e-3)
