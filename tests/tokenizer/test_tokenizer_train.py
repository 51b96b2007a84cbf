"""train-tokenizer, tokenizer-report and tokenizer-sweep on a curated-like Parquet built from ../shared/data."""

from __future__ import annotations

import json

import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from corpusmill.tokenizer.reader import Weights, expand_inputs, id_unit
from corpusmill.tokenizer.sample_corpus import write_sample_corpus
from corpusmill.tokenizer.bpe import EOS
from corpusmill.tokenizer.train import train_tokenizer

VOCAB = 2048
HELDOUT = 0.25


@pytest.fixture(scope="module")
def corpus(shared_data, tmp_path_factory):
    d = tmp_path_factory.mktemp("curated")
    write_sample_corpus(shared_data, d, max_bytes=1_500_000, files=2)
    return d


@pytest.fixture(scope="module")
def tok(corpus, tmp_path_factory):
    out = tmp_path_factory.mktemp("tok")
    meta = train_tokenizer(str(corpus / "*.parquet"), VOCAB, out, special_tokens=["<|pad|>", "<|fim|>"], heldout_fraction=HELDOUT)
    return out, meta


def _all_texts(corpus):
    t = pq.read_table(expand_inputs(str(corpus)))
    return t


def test_files_vocab_and_metadata(tok, corpus):
    out, meta = tok
    for name in ("tokenizer.json", "corpusmill_tokenizer.json", "tokenizer_config.json", "report.json"):
        assert (out / name).exists(), name
    spec = json.loads((out / "tokenizer.json").read_text())
    vocab = spec["model"]["vocab"]
    assert len(vocab) == VOCAB == meta["vocab_size"]
    assert vocab[EOS] == 0 and vocab["<|pad|>"] == 1 and vocab["<|fim|>"] == 2
    from tokenizers import pre_tokenizers

    assert set(pre_tokenizers.ByteLevel.alphabet()) <= set(vocab), "all 256 bytes must be in the vocabulary"
    assert spec["model"]["ignore_merges"] is True

    # inputs accounting matches the Parquet files
    t = _all_texts(corpus)
    ids = t.column("id").to_pylist()
    nbytes = pc.binary_length(t.column("text")).to_pylist()
    held = [id_unit(i) < HELDOUT for i in ids]
    tot = meta["inputs"]["totals"]
    assert tot["rows"] == t.num_rows
    assert tot["rows_heldout"] == sum(held)
    assert tot["bytes_trained"] == sum(n for n, h in zip(nbytes, held) if not h)
    assert [f["path"] for f in meta["inputs"]["files"]] == [str(p) for p in expand_inputs(str(corpus))]
    assert meta["versions"]["tokenizers"] and meta["params"]["heldout_fraction"] == HELDOUT


def test_transformers_fast_tokenizer_matches(tok, corpus):
    from tokenizers import Tokenizer
    from transformers import AutoTokenizer, PreTrainedTokenizerFast

    out, _ = tok
    ref = Tokenizer.from_file(str(out / "tokenizer.json"))
    fast = PreTrainedTokenizerFast(tokenizer_file=str(out / "tokenizer.json"))
    auto = AutoTokenizer.from_pretrained(str(out))  # tokenizer_config.json, offline
    texts = _all_texts(corpus).column("text").to_pylist()[:60]
    texts += ["Grüße aus Köln 👋🏽 — 東京 — مرحبا — שלום\r\n\t\x00", "  x  \n\n  "]
    for t in texts:
        ids = ref.encode(t).ids
        assert fast.encode(t, add_special_tokens=False) == ids
        assert auto.encode(t, add_special_tokens=False) == ids
        assert fast.decode(ids) == t
    assert auto.eos_token == EOS and auto.eos_token_id == 0


def test_report_groups_and_utilisation(tok, corpus):
    out, meta = tok
    rep = json.loads((out / "report.json").read_text())
    t = _all_texts(corpus)
    held = [i for i in t.column("id").to_pylist() if id_unit(i) < HELDOUT]
    assert rep["heldout_documents"] == len(held) > 10
    assert set(rep["by_source_kind"]) <= {"book", "web", "wikipedia", "udhr"}
    assert sum(g["documents"] for g in rep["by_language"].values()) == len(held)
    assert sum(g["tokens"] for g in rep["by_source_kind"].values()) == rep["heldout_tokens"]
    assert 1.5 < rep["bytes_per_token"] < 6
    assert 0.2 < rep["utilisation"] <= 1 and rep["used_ids"] <= VOCAB
    # English prose compresses better than the multilingual UDHR with a small vocabulary
    assert rep["by_language"]["en"]["bytes_per_token"] > rep["by_source_kind"]["udhr"]["bytes_per_token"]
    assert meta["report"]["bytes_per_token"] == rep["bytes_per_token"]


def test_weights_thin_and_repeat(corpus, tmp_path):
    assert Weights.parse(["source_kind=book:0.5", "language=en:2"]).weight("book", "en") == 1.0
    with pytest.raises(ValueError):
        Weights.parse(["source_kind=book"])
    with pytest.raises(ValueError):
        Weights.parse(["url=x:1"])
    t = _all_texts(corpus)
    kinds = t.column("source_kind").to_pylist()
    nbytes = pc.binary_length(t.column("text")).to_pylist()
    meta = train_tokenizer(str(corpus), 300, tmp_path / "a", weights=["source_kind=book:0", "source_kind=web:2"],
                           heldout_fraction=0, report=False)
    want = sum(n * {"book": 0, "web": 2}.get(k, 1) for n, k in zip(nbytes, kinds))
    assert meta["inputs"]["totals"]["bytes_trained"] == want
    assert meta["params"]["weights"] == ["source_kind=book:0.0", "source_kind=web:2.0"]
    # fractional weights keep a deterministic subset
    w = Weights.parse(["source_kind=udhr:0.5"])
    ids = t.column("id").to_pylist()
    picks = [w.copies(i, k, None) for i, k in zip(ids, kinds) if k == "udhr"]
    assert picks == [w.copies(i, k, None) for i, k in zip(ids, kinds) if k == "udhr"]
    assert 0.25 < sum(picks) / len(picks) < 0.75


def test_max_bytes_and_too_small_vocab(corpus, tmp_path):
    meta = train_tokenizer(str(corpus), 400, tmp_path / "m", max_bytes=200_000, heldout_fraction=0, report=False)
    assert meta["inputs"]["truncated_at_max_bytes"] and meta["inputs"]["totals"]["bytes_trained"] <= 200_000
    with pytest.raises(ValueError):
        train_tokenizer(str(corpus), 200, tmp_path / "s", report=False)


def test_sweep_table(corpus, tmp_path):
    from corpusmill.tokenizer.sweep import sweep

    rows, table = sweep(str(corpus), [512, 1024], out=tmp_path / "sw", heldout_fraction=HELDOUT, max_bytes=600_000)
    assert [r["vocab_size"] for r in rows] == [512, 1024]
    assert rows[1]["bytes_per_token"] > rows[0]["bytes_per_token"]
    assert "bytes/tok" in table and "\n    512" in table and "\n   1024" in table
    assert (tmp_path / "sw" / "v1024" / "tokenizer.json").exists() and (tmp_path / "sw" / "sweep.json").exists()


def test_cli_train_and_report(corpus, tmp_path, capsys):
    from corpusmill.cli import main

    out = tmp_path / "cli"
    assert main(["train-tokenizer", "--input", str(corpus / "*.parquet"), "--vocab-size", "1k", "--out", str(out),
                 "--heldout-fraction", "0.1", "--no-progress", "--weight", "language=en:0.5"]) == 0
    assert "bytes/token" in capsys.readouterr().out
    assert json.loads((out / "corpusmill_tokenizer.json").read_text())["params"]["weights"] == ["language=en:0.5"]
    assert main(["tokenizer-report", "--tokenizer", str(out), "--input", str(corpus), "--heldout-fraction", "1",
                 "--json", str(tmp_path / "r.json")]) == 0
    assert json.loads((tmp_path / "r.json").read_text())["heldout_documents"] == _all_texts(corpus).num_rows
    assert main(["tokenizer-sweep", "--input", str(corpus), "--vocab-sizes", "400,600", "--max-bytes", "300k"]) == 0
    assert "util" in capsys.readouterr().out
