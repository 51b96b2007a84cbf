"""Benchmark decontamination (curation/filters/decontamination.py) on the shared web text, with evaluation
sets made of real benchmark files (HateCheck's test suite, the Wikipedia toxicity test set) and of
passages quoted from shared documents (as a reading-comprehension benchmark quotes its sources)."""

from __future__ import annotations

import gzip
import json

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from corpusmill.curation.document import is_alive, new_document, signals
from corpusmill.curation.filters.decontamination import Decontaminate, contaminated_sets
from corpusmill.curation.registry import validate_params
from corpusmill.curation.stage import apply_stage


@pytest.fixture(scope="module")
def webtext(shared_data) -> list[str]:
    out = []
    for f in sorted((shared_data / "webtext").glob("*.gz")):
        with gzip.open(f, "rt", encoding="utf-8") as fh:
            out += [json.loads(line).get("text") or "" for line in fh]
    return out


def _run(stage, texts):
    return [apply_stage(stage, new_document(t, "webtext/x.jsonl.gz", i, source_kind="web")) for i, t in enumerate(texts)]


def test_real_benchmarks_do_not_touch_web_text(shared_data, webtext):
    tox = shared_data / "toxicity"
    st = Decontaminate([{"path": str(tox / "hatecheck_test_suite_cases.csv"), "fields": ["test_case"]},
                        {"path": str(tox / "wikitox_toxicity_nonfuzzed_testset.csv"), "fields": "comment",
                         "name": "wikitox"}])
    assert st.index.texts > 5000 and len(st.index) > 100_000 and st.index.names == ["hatecheck_test_suite_cases", "wikitox"]
    docs = _run(st, webtext)
    assert all(is_alive(d) for d in docs) and sum(signals(d)["decontaminate.matched_ngrams"] for d in docs) == 0


def _quotes(webtext, picks, words=40):
    """A benchmark quoting 40-word passages of some web documents, re-cased and re-punctuated."""
    rows = []
    for i in picks:
        w = webtext[i].split()
        start = len(w) // 3
        rows.append({"question": "Read the passage and answer.", "context": " ".join(w[start:start + words]).upper(),
                     "answers": ["yes", "no"]})
    return rows


@pytest.mark.parametrize("fmt", ["jsonl.gz", "parquet"])
def test_quoted_passages_are_found(tmp_path, webtext, fmt):
    long_docs = [i for i, t in enumerate(webtext) if len(t.split()) > 300]
    picks = long_docs[:: max(1, len(long_docs) // 5)][:5]
    rows = _quotes(webtext, picks)
    path = tmp_path / f"bench.{fmt}"
    if fmt == "parquet":
        pq.write_table(pa.Table.from_pylist(rows), path)
    else:
        with gzip.open(path, "wt") as f:
            f.writelines(json.dumps(r) + "\n" for r in rows)
    st = Decontaminate([{"path": str(path), "fields": ["question", "context", "answers"], "name": "quoted"}])
    docs = _run(st, webtext)
    hit = {i for i, d in enumerate(docs) if not is_alive(d)}
    assert set(picks) <= hit
    # anything else caught holds the same passage (a duplicate page), not a chance 13-gram
    for i in hit - set(picks):
        assert any(" ".join(webtext[p].split()[len(webtext[p].split()) // 3:][:13]) in " ".join(webtext[i].split())
                   for p in picks)
    for i in picks:
        d = docs[i]
        assert d.metadata["cm_reason"] == "contaminated" and d.metadata["contaminated_by"] == "quoted"
        # normalisation may split a whitespace word ("don't" -> "don t"): at least 40 - 13 + 1 n-grams
        assert signals(d)["decontaminate.matched_ngrams"] >= 40 - 13 + 1
        assert 0 < signals(d)["decontaminate.matched_fraction"] < 1
    assert contaminated_sets(docs)["quoted"] == len(hit)


def test_tag_only_and_tolerance(tmp_path, webtext):
    path = tmp_path / "b.jsonl"
    path.write_text("".join(json.dumps({"text": r["context"]}) + "\n" for r in _quotes(webtext, [0, 1], words=20)))
    tag = Decontaminate(str(path), action="tag")
    d = _run(tag, [webtext[0]])[0]
    assert is_alive(d) and d.metadata["contaminated_by"] == "b" and tag.thresholds() == {}
    k = int(signals(d)["decontaminate.matched_ngrams"])
    assert k >= 20 - 13 + 1
    loose = Decontaminate(str(path), max_matches=k)  # tolerated
    assert is_alive(_run(loose, [webtext[0]])[0])
    assert loose.thresholds() == {"matched_ngrams": [("max", k + 0.5, "drop_above")]}
    assert not is_alive(_run(Decontaminate(str(path), max_matches=k - 1), [webtext[0]])[0])
    shorter = Decontaminate(str(path), n=8)  # shorter n-grams: more matches
    assert signals(_run(shorter, [webtext[0]])[0])["decontaminate.matched_ngrams"] == k + 5


def test_index_is_compact_and_sorted(shared_data):
    st = Decontaminate({"path": str(shared_data / "toxicity" / "wikitox_toxicity_nonfuzzed_testset.csv"),
                        "fields": ["comment"]})
    h = st.index.hashes
    assert h.dtype == np.uint64 and np.all(h[1:] > h[:-1]) and st.index.sets.dtype == np.uint16


def test_user_mistakes_name_the_key(tmp_path):
    p = tmp_path / "b.csv"
    p.write_text("q,a\nx,y\n")
    with pytest.raises(TypeError, match=r"eval_sets\[0\]: .*no column 'text'"):
        validate_params("decontaminate", {"eval_sets": [str(p)]})
    with pytest.raises(TypeError, match="no such file"):
        validate_params("decontaminate", {"eval_sets": [str(tmp_path / "missing.jsonl")]})
    with pytest.raises(TypeError, match="unsupported"):
        validate_params("decontaminate", {"eval_sets": [str(p.with_suffix(".txt"))] if p.with_suffix(".txt").write_text("x") else []})
    validate_params("decontaminate", {"eval_sets": [{"path": str(p), "fields": ["q", "a"]}], "sources": ["web"]})
