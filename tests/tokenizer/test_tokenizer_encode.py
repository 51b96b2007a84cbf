"""The tiktoken fast path gives HF tokenizers' ids exactly; decode(encode(x)) == x (hypothesis)."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from corpusmill.tokenizer.fast_encode import PROBE_TEXTS, Encoder, UnsupportedTokenizer, tiktoken_encoding
from corpusmill.tokenizer.sample_corpus import SOURCES, sample_documents, write_sample_corpus
from corpusmill.tokenizer.train import train_tokenizer


@pytest.fixture(scope="module")
def docs(shared_data):
    """~2 MB of the mixed sample plus the first 3,000 characters of every UDHR translation."""
    udhr = [dict(d, text=d["text"][:3000]) for d in SOURCES["udhr"](shared_data)]
    return sample_documents(shared_data, max_bytes=2_000_000) + udhr


@pytest.fixture(scope="module")
def tokdir(shared_data, tmp_path_factory):
    d = tmp_path_factory.mktemp("enc")
    write_sample_corpus(shared_data, d / "curated", max_bytes=1_500_000)
    train_tokenizer(str(d / "curated"), 4096, d / "tok", heldout_fraction=0, report=False)
    return d / "tok"


@pytest.fixture(scope="module")
def enc(tokdir):
    e = Encoder(tokdir)
    assert e.backend == "tiktoken", e.fallback_reason
    return e


def test_tiktoken_ids_equal_hf_on_real_multilingual_text(enc, docs):
    texts = [d["text"] for d in docs]
    langs = {d["language"] for d in docs}
    assert len(langs) > 400  # UDHR: hundreds of languages and scripts
    assert enc.encode_batch(texts, num_threads=2) == enc.encode_batch_hf(texts)
    assert enc.mismatches(PROBE_TEXTS) == []


# text mixing scripts that stress pre-tokenisation: CJK, RTL, emoji + ZWJ, combining marks, controls
ALPHABET = st.one_of(
    st.characters(codec="utf-8"),
    st.sampled_from(list("  \t\n\r\x00\x0b\x0c\x1b\u00a0\u2028\u200b\u200d\ufeff'sdmtlvre0123456789٠١٢")),
    st.sampled_from(list("日本語中文한국어עברית العربية ไทย हिन्दी Ελληνικά Кириллица")),
    st.sampled_from(["👍", "🏽", "👨\u200d👩\u200d👧", "🇺🇳", "❤️", "e\u0301", "ﬁ", "ǅ", "İ", "ß"]),
)
TEXT = st.lists(ALPHABET, max_size=80).map("".join)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(text=TEXT)
def test_hypothesis_roundtrip_and_identical_ids(enc, text):
    ids = enc.encode(text)
    assert ids == enc.encode_batch_hf([text])[0]
    assert enc.decode(ids) == text
    assert enc.decode_bytes(ids) == text.encode("utf-8")
    assert enc.eos_id not in ids  # document text never yields EOS


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(text=st.text(max_size=60))
def test_hypothesis_any_unicode_roundtrip(enc, text):
    # st.text() includes lone surrogates: they become U+FFFD, everything else round-trips
    want = text.encode("utf-16", "surrogatepass").decode("utf-16", "replace")
    ids = enc.encode(text)
    assert ids == enc.encode_batch_hf([text])[0]
    assert enc.decode(ids) == want


def test_lone_surrogates_become_replacement_char(enc):
    for text in ["a\ud800b", "\udfff", "x\ud83d", "ok \ud83d\ude00 ok"]:  # the last is a valid pair -> 😀
        want = text.encode("utf-16", "surrogatepass").decode("utf-16", "replace")
        assert enc.decode(enc.encode(text)) == want
        assert enc.encode_batch([text]) == enc.encode_batch_hf([text]) == [enc.encode(want)]
    assert enc.decode(enc.encode("ok \ud83d\ude00 ok")) == "ok 😀 ok"


def test_special_token_text_is_plain_text(enc):
    text = "end<|endoftext|>start"
    ids = enc.encode(text)
    assert enc.eos_id not in ids and enc.decode(ids) == text
    assert enc.encode_batch_hf([text])[0] == ids


def test_hf_backend_and_unsupported_tokenizer(tokdir, tmp_path):
    import json

    hf = Encoder(tokdir, backend="hf")
    assert hf.backend == "hf" and hf.encode("héllo wörld") == Encoder(tokdir).encode("héllo wörld")
    spec = json.loads((tokdir / "tokenizer.json").read_text())
    spec["pre_tokenizer"] = {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": True}
    other = tmp_path / "tokenizer.json"
    other.write_text(json.dumps(spec))
    with pytest.raises(UnsupportedTokenizer):
        tiktoken_encoding(other)
    auto = Encoder(other)  # a GPT-2-regex tokenizer: auto falls back to HF, and says why
    assert auto.backend == "hf" and "pre-tokenizer" in auto.fallback_reason
    with pytest.raises(UnsupportedTokenizer):
        Encoder(other, backend="tiktoken")
