"""The quality classifier (curation/filters/quality.py), the shipped model (curation/data/quality_en.ftz)
and ``corpusmill train-quality`` (corpusmill/tools/quality_train.py), on the shared data."""

from __future__ import annotations

import gzip
import json
import sys
from pathlib import Path

import numpy as np
import pytest

from datatrove.data import Document

from corpusmill.curation.document import EVENT, SHARD_END, is_alive, new_document, reject, signals
from corpusmill.curation.filters.quality import SHIPPED_MODEL, QualityClassifier, keep_count, sidecar_path
from corpusmill.curation.registry import build_stage, validate_params
from corpusmill.curation.stage import apply_stage, apply_stage_per_shard
from corpusmill.tools.quality_train import chunks, is_heldout, read_docs, roc_auc

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from conftest import run_cli  # noqa: E402

META = json.loads(sidecar_path(SHIPPED_MODEL).read_text())


def test_shipped_model_is_small_and_documented():
    assert SHIPPED_MODEL.stat().st_size < 2_000_000
    assert META["heldout"]["roc_auc"] >= 0.95
    assert META["documents"]["heldout_positive"] >= 20 and META["documents"]["heldout_negative"] >= 100
    assert (SHIPPED_MODEL.parent / "quality_en.TRAINING.md").is_file()


@pytest.fixture(scope="module")
def heldout(shared_data):
    """The shipped model's held-out documents, re-read with its recipe (same split function)."""
    root = shared_data
    out = {1: [], 0: []}
    for spec, label in [(s, 1) for s in META["positives"]] + [(s, 0) for s in META["negatives"]]:
        spec = spec.replace("../shared/data", str(root))
        for d in read_docs(spec, "--positive", label, META["min_words"]):
            if is_heldout(d.group, META["split"]["test_fraction"], META["split"]["seed"]):
                out[label].append(d.text)
    return out


def test_recorded_separation_reproduces_on_heldout_documents(heldout):
    q = QualityClassifier(action="tag")
    pos = np.array([q.score(t) for t in heldout[1]])
    neg = np.array([q.score(t) for t in heldout[0]])
    assert (len(pos), len(neg)) == (META["documents"]["heldout_positive"], META["documents"]["heldout_negative"])
    assert roc_auc(pos, neg) == pytest.approx(META["heldout"]["roc_auc"], abs=1e-4)
    assert np.median(pos) > 0.9 and np.median(neg) < 0.05


def _web_texts(shared_data, name="dolma_cc_en_head-0091.jsonl.gz", n=None):
    with gzip.open(shared_data / "webtext" / name, "rt") as f:
        return [json.loads(line)["text"] for line in f][:n]


def test_stage_threshold_training_crawl_fraction_and_tag(shared_data):
    texts = _web_texts(shared_data, n=40)
    strict, loose = QualityClassifier(), QualityClassifier(top_fraction_of_training_crawl=0.3)
    tag = QualityClassifier(action="tag")
    assert strict.threshold == 0.5 and loose.threshold == pytest.approx(strict.crawl_quantile(0.7))
    assert strict.thresholds() == {"score": [("min", 0.5, "threshold")]} and tag.thresholds() == {}
    assert not strict.per_shard and not loose.per_shard
    kept = {"strict": 0, "loose": 0}
    for i, t in enumerate(texts):
        for name, st in (("strict", strict), ("loose", loose)):
            d = apply_stage(st, new_document(t, "w", i, source_kind="web"))
            kept[name] += is_alive(d)
            assert d.metadata["quality_score"] == signals(d)["quality.score"]
            assert is_alive(d) or d.metadata["cm_reason"] == "low_quality"
        assert is_alive(apply_stage(tag, new_document(t, "w", i)))
    assert kept["strict"] <= kept["loose"] < len(texts)


def test_batched_scores_equal_single_scores(shared_data):
    texts = _web_texts(shared_data, n=60) + ["", "a"]
    q = QualityClassifier(batch_size=7)
    assert q.score_many(texts) == [q.score(t) for t in texts]
    docs = [new_document(t, "w", i) for i, t in enumerate(texts)]
    assert [v if v is True else v[1] for v in q.filter_batch(docs)] == [
        True if q.score(t) >= 0.5 else "low_quality" for t in texts]


def test_keep_count():
    assert [keep_count(n, 0.3) for n in (0, 1, 3, 10, 11)] == [0, 1, 1, 3, 4]
    assert keep_count(7, 1.0) == 7 and keep_count(1000, 0.1) == 100


def _end(sf: str, read: int) -> Document:
    return Document(text="", id=f"{sf}#end", metadata={EVENT: SHARD_END, "source_file": sf, "read": read})


def test_per_shard_top_fraction_on_a_stream_of_shards(shared_data):
    """Two real shards in one stream, as a datatrove task sees them: a dropped record and a book chapter
    (out of scope) inside a shard, a tie; order kept, each shard decided whole at its end."""
    st = build_stage("quality", {"top_fraction_per_shard": 0.25, "sources": ["web"]})
    assert st.per_shard and st.threshold is None and st.thresholds() == {}
    stream, expected = [], {}
    sizes = {"dolma_CC-MAIN-20190717121559-20190717143559-00140.jsonl.gz": 30, "dolma_cc_en_head-0174.jsonl.gz": 10}
    for name, n in sizes.items():
        texts = _web_texts(shared_data, name, n)
        texts.insert(5, texts[2])  # the same text twice: a tie, the earlier position wins
        docs = [new_document(t, name, i, source_kind="web") for i, t in enumerate(texts)]
        reject(docs[8], "gopher_repetition", "dup_line_frac")
        docs.insert(10, new_document("A chapter of a book.", name, 1000, source_kind="book"))
        stream += docs + [_end(name, len(docs))]
        expected[name] = docs
    seconds: dict[str, float] = {}
    out = list(apply_stage_per_shard(st, iter(stream), seconds))
    assert [d.id for d in out] == [d.id for d in stream] and set(seconds) == set(expected)
    for name, docs in expected.items():
        judged = [d for d in docs if d.metadata.get("source_kind") == "web" and d.metadata.get("cm_stage") != "gopher_repetition"]
        kept = [d for d in judged if is_alive(d)]
        assert len(judged) == sizes[name] and len(kept) == keep_count(sizes[name], 0.25) == {30: 8, 10: 3}[sizes[name]]
        assert min(d.metadata["quality_score"] for d in kept) >= max(
            d.metadata["quality_score"] for d in judged if not is_alive(d))
        assert all(d.metadata["cm_reason"] == "low_quality" for d in judged if not is_alive(d))
        twin, first = docs[5], docs[2]
        assert twin.text == first.text and twin.metadata["quality_score"] == first.metadata["quality_score"]
        assert is_alive(first) or not is_alive(twin)
        assert "quality_score" not in docs[10].metadata and is_alive(docs[10])


def test_per_shard_ties_go_to_the_earlier_position():
    st = QualityClassifier(top_fraction_per_shard=0.5)
    docs = [new_document("the same page of text " * 20, "s", i) for i in (7, 3, 9, 1)]
    verdicts = st.filter_shard(docs)
    assert [v is True for v in verdicts] == [False, True, False, True]


def test_book_chapter_scores_high(shared_data):
    text = (shared_data / "books" / "pg1661_adventures-of-sherlock-holmes.txt").read_text(encoding="utf-8")
    assert QualityClassifier().score(text[200_000:210_000]) > 0.9


def test_user_mistakes():
    with pytest.raises(TypeError, match="model: no such file"):
        validate_params("quality", {"model": "/nonexistent/q.ftz"})
    with pytest.raises(TypeError, match="not threshold and top_fraction_per_shard"):
        validate_params("quality", {"threshold": 0.5, "top_fraction_per_shard": 0.1})
    with pytest.raises(TypeError, match="top_fraction_of_training_crawl must be"):
        validate_params("quality", {"top_fraction_of_training_crawl": 0})
    with pytest.raises(TypeError, match="top_fraction is ambiguous.*top_fraction_per_shard.*top_fraction_of_training_crawl"):
        validate_params("quality", {"top_fraction": 0.3})


def test_chunks_cut_at_spaces():
    text = "word " * 1000
    parts = chunks(text, 300)
    assert all(len(p) <= 300 for p in parts) and " ".join(parts).split() == text.split()


@pytest.mark.slow
def test_train_quality_cli(shared_data, tmp_path):
    out = tmp_path / "q.ftz"
    d = shared_data
    res = run_cli("train-quality", "--positive", f"wikipedia:{d}/wikipedia/enwiki-pages-articles1-shortened.xml.bz2",
                  "--positive", f"books[split=chapters]:{d}/books/pg3261_news-from-nowhere.txt",
                  "--negative", f"jsonl:{d}/webtext/dolma_CC-MAIN-*.jsonl.gz", "--out", str(out), "--epoch", "5",
                  "--test-fraction", "0.3")
    assert "held-out: ROC-AUC" in res.stdout
    meta = json.loads(sidecar_path(out).read_text())
    assert meta["heldout"]["roc_auc"] > 0.9 and len(meta["heldout"]["negative_score_percentiles"]) == 101
    st = QualityClassifier(model=str(out), top_fraction_of_training_crawl=0.5)
    assert 0 <= st.threshold <= 1
    bad = run_cli("train-quality", "--positive", f"nosuchreader:{d}/x", "--negative", f"jsonl:{d}/webtext/*.gz",
                  "--out", str(tmp_path / "x.ftz"), check=False)
    assert bad.returncode == 2 and bad.stderr.count("\n") == 1 and "--positive" in bad.stderr
    bad = run_cli("train-quality", "--positive", f"books:{d}/books/none-*.txt", "--negative", f"jsonl:{d}/webtext/*.gz",
                  "--out", str(tmp_path / "x.ftz"), check=False)
    assert bad.returncode == 2 and "no file matches" in bad.stderr
