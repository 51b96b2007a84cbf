"""The quality classifier (curation/filters/quality.py), the shipped model (curation/data/quality_en.ftz)
and ``corpusmill train-quality`` (corpusmill/tools/quality_train.py), on the shared data."""

from __future__ import annotations

import gzip
import json
import sys
from pathlib import Path

import numpy as np
import pytest

from corpusmill.curation.document import is_alive, new_document, signals
from corpusmill.curation.filters.quality import SHIPPED_MODEL, QualityClassifier, sidecar_path
from corpusmill.curation.registry import validate_params
from corpusmill.curation.stage import apply_stage
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


def test_stage_threshold_top_fraction_and_tag(shared_data):
    with gzip.open(shared_data / "webtext" / "dolma_cc_en_head-0091.jsonl.gz", "rt") as f:
        texts = [json.loads(line)["text"] for line in f][:40]
    strict, loose, tag = QualityClassifier(), QualityClassifier(top_fraction=0.3), QualityClassifier(action="tag")
    assert strict.threshold == 0.5 and loose.threshold == pytest.approx(strict.crawl_quantile(0.7))
    assert strict.thresholds() == {"score": [("min", 0.5, "threshold")]} and tag.thresholds() == {}
    kept = {"strict": 0, "loose": 0}
    for i, t in enumerate(texts):
        for name, st in (("strict", strict), ("loose", loose)):
            d = apply_stage(st, new_document(t, "w", i, source_kind="web"))
            kept[name] += is_alive(d)
            assert d.metadata["quality_score"] == signals(d)["quality.score"]
            assert is_alive(d) or d.metadata["cm_reason"] == "low_quality"
        assert is_alive(apply_stage(tag, new_document(t, "w", i)))
    assert kept["strict"] <= kept["loose"] < len(texts)


def test_book_chapter_scores_high(shared_data):
    text = (shared_data / "books" / "pg1661_adventures-of-sherlock-holmes.txt").read_text(encoding="utf-8")
    assert QualityClassifier().score(text[200_000:210_000]) > 0.9


def test_user_mistakes():
    with pytest.raises(TypeError, match="model: no such file"):
        validate_params("quality", {"model": "/nonexistent/q.ftz"})
    with pytest.raises(TypeError, match="not both"):
        validate_params("quality", {"threshold": 0.5, "top_fraction": 0.1})
    with pytest.raises(TypeError, match="top_fraction"):
        validate_params("quality", {"top_fraction": 0})


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
    st = QualityClassifier(model=str(out), top_fraction=0.5)
    assert 0 <= st.threshold <= 1
    bad = run_cli("train-quality", "--positive", f"nosuchreader:{d}/x", "--negative", f"jsonl:{d}/webtext/*.gz",
                  "--out", str(tmp_path / "x.ftz"), check=False)
    assert bad.returncode == 2 and bad.stderr.count("\n") == 1 and "--positive" in bad.stderr
    bad = run_cli("train-quality", "--positive", f"books:{d}/books/none-*.txt", "--negative", f"jsonl:{d}/webtext/*.gz",
                  "--out", str(tmp_path / "x.ftz"), check=False)
    assert bad.returncode == 2 and "no file matches" in bad.stderr
