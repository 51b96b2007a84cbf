"""Dedup on real web text: dolma's CC-MAIN-...-00140 (697 docs from one Common Crawl WARC)."""

from __future__ import annotations

import gzip
import json
import random
from collections import defaultdict
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from corpusmill.curation.dedup.clusters import ClusterLookup
from corpusmill.curation.dedup.lsh import RECORD
from corpusmill.curation.dedup.minhash import MinHashConfig, jaccard
from corpusmill.curation.dedup.normalize import shingle_hashes
from corpusmill.pipelines.datatrove_dedup import dedup_documents
from corpusmill.curation.document import is_alive, new_document, reject

STEM = "webtext/dolma_CC-MAIN-20190717121559-20190717143559-00140"
SOURCE = "webtext/dolma_CC-MAIN-00140.jsonl.gz"


@pytest.fixture(scope="module")
def rows(shared_data):
    with gzip.open(shared_data / f"{STEM}.jsonl.gz", "rt", encoding="utf-8") as f:
        return [json.loads(line) for line in f]


@pytest.fixture(scope="module")
def reference(shared_data):
    return json.loads((shared_data / f"{STEM}.neardup_pairs.derived.json").read_text())


def make_docs(rows):
    return [new_document(r["text"], SOURCE, i, url=r["metadata"]["url"], dolma_id=r["id"]) for i, r in enumerate(rows)]


@pytest.fixture(scope="module")
def run(rows, tmp_path_factory):
    return dedup_documents(make_docs(rows), tmp_path_factory.mktemp("dolma-1task"))


def by_dolma_id(result):
    return {d.metadata["dolma_id"]: d for d in result.docs}


def test_exact_duplicate_pairs_found(run, reference):
    docs = by_dolma_id(run)
    exact_pairs = [p for p in reference if p["exact_text_equal"]]
    assert len(exact_pairs) == 25
    for p in exact_pairs:
        a, b = docs[p["a"]], docs[p["b"]]
        ia, ib = run.clusters[a.id], run.clusters[b.id]
        assert ia.exact_cluster == ib.exact_cluster
        # exactly one of an exact cluster survives exact dedup; the others are rejected as exact dups
        assert {ia.verdict, ib.verdict} <= {"keep", "exact_duplicate"} and "exact_duplicate" in {ia.verdict, ib.verdict}
    for d in run.docs:
        info = run.clusters.get(d.id)
        if info and info.verdict == "exact_duplicate":
            assert d.metadata["cm_stage"] == "exact_dedup" and d.metadata["cm_reason"] == "exact_duplicate"


def test_high_jaccard_pair_found_by_minhash(run, reference):
    docs = by_dolma_id(run)
    high = [p for p in reference if not p["exact_text_equal"] and p["jaccard_5gram_words"] >= 0.9]
    assert len(high) == 1
    a, b = docs[high[0]["a"]], docs[high[0]["b"]]
    ia, ib = run.clusters[a.id], run.clusters[b.id]
    assert ia.cluster == ib.cluster and ia.exact_cluster != ib.exact_cluster
    assert sorted([ia.verdict, ib.verdict]) == ["keep", "near_duplicate"]
    loser = a if ia.verdict == "near_duplicate" else b
    assert (loser.metadata["cm_stage"], loser.metadata["cm_reason"]) == ("minhash_dedup", "near_duplicate")


def test_no_false_merges_and_no_missed_high_pairs(run):
    sh = {d.id: shingle_hashes(d.text) for d in run.docs}
    # every document merged into a cluster is similar to some other member (our normalisation)
    members = defaultdict(list)
    for i, info in run.clusters.items():
        members[info.cluster].append(i)
    for cid, ids in members.items():
        for i in ids:
            best = max(jaccard(sh[i], sh[j]) for j in ids if j != i)
            assert best >= 0.6, (i, cid, best)
    # every pair with Jaccard >= 0.9 (brute force through an inverted index) is in one cluster
    index = defaultdict(list)
    for i, s in sh.items():
        # sample by value (the same shingles in every doc): a pair with J >= 0.9 shares ~90% of them
        sample = s if s.size <= 200 else s[s % np.uint64(16) == 0]
        for x in sample.tolist():
            index[x].append(i)
    cands = {tuple(sorted((a, b))) for ids in index.values() for a in ids for b in ids if a != b}
    high = [(a, b) for a, b in cands if sh[a].size and jaccard(sh[a], sh[b]) >= 0.9]
    assert len(high) >= 25
    for a, b in high:
        assert run.clusters[a].cluster == run.clusters[b].cluster, (a, b)


def test_marking(run):
    alive = [d for d in run.docs if is_alive(d)]
    dropped = [d for d in run.docs if not is_alive(d)]
    assert len(dropped) == run.stats["exact_duplicates"] + run.stats["near_duplicates"]
    for d in alive:
        info = run.clusters.get(d.id)
        if info is None:
            assert d.metadata["dedup_cluster_size"] == 1 and "dedup_cluster" not in d.metadata
        else:
            assert info.verdict == "keep" and d.metadata["dedup_cluster"] == d.id
            assert d.metadata["dedup_cluster_size"] == info.cluster_size >= 2
    for d in dropped:
        info = run.clusters[d.id]
        assert d.metadata["dedup_cluster"] == info.cluster != d.id
    # the survivor is the first copy in corpus order (the default rule)
    for i, info in run.clusters.items():
        surv = next(d for d in run.docs if d.id == info.cluster)
        me = next(d for d in run.docs if d.id == i)
        assert surv.metadata["position"] <= me.metadata["position"]


def _mapping(result):
    return sorted((i, v.cluster, v.cluster_size, v.verdict, v.exact_cluster) for i, v in result.clusters.items())


def test_same_result_whatever_the_split_and_order(rows, run, tmp_path):
    base = _mapping(run)
    docs = make_docs(rows)
    split = dedup_documents(
        docs,
        tmp_path / "split",
        num_tasks=3,
        bucket_tasks=4,
        parts_per_band=2,
        max_buffer_docs=64,  # several runs per task
        window_records=97,  # many merge windows
        rows_per_partition=7,  # several mapping partitions
    )
    assert _mapping(split) == base
    assert [d.metadata.get("cm_status") for d in split.docs] == [d.metadata.get("cm_status") for d in run.docs]
    shuffled = make_docs(rows)
    random.Random(0).shuffle(shuffled)
    again = dedup_documents(shuffled, tmp_path / "shuffled", num_tasks=2)
    assert _mapping(again) == base


def _signed_records(workdir: Path) -> set:
    ids = {}
    for p in (workdir / "sig" / "docs").glob("*.parquet"):
        t = pq.read_table(p)
        ids.update(zip(t["key"].to_pylist(), t["id"].to_pylist()))
    out = set()
    for p in (workdir / "sig").rglob("*.bin"):
        kind = p.parent.name
        for h, g, k in np.fromfile(p, dtype=RECORD).tolist():
            out.add((kind, h, g, ids[k]))
    return out


def test_signatures_identical_across_tasks_and_runs(rows, tmp_path):
    sub = rows[:150]
    dedup_documents(make_docs(sub), tmp_path / "one", num_tasks=1)
    dedup_documents(make_docs(sub), tmp_path / "two", num_tasks=2)
    dedup_documents(make_docs(sub), tmp_path / "again", num_tasks=1)
    one = _signed_records(tmp_path / "one")
    assert one and one == _signed_records(tmp_path / "two")
    files = sorted(p.relative_to(tmp_path / "one") for p in (tmp_path / "one" / "sig").rglob("*.bin"))
    for rel in files:
        assert (tmp_path / "one" / rel).read_bytes() == (tmp_path / "again" / rel).read_bytes()


def test_only_alive_documents_take_part(rows, tmp_path):
    docs = make_docs(rows[:200])
    # reject every copy of the 7-fold "Processing Feedback ..." page but one before dedup
    dup = [d for d in docs if d.text.strip() == "Processing Feedback ..."]
    assert len(dup) >= 2
    for d in dup[:-1]:
        reject(d, "some_filter", "too_short")
    r = dedup_documents(docs, tmp_path)
    for d in dup[:-1]:
        assert d.id not in r.clusters and d.metadata["cm_stage"] == "some_filter"
        assert "dedup_cluster_size" not in d.metadata
    assert dup[-1].id not in r.clusters and is_alive(dup[-1])
    lookup = ClusterLookup(tmp_path)
    assert lookup.get(dup[-1].id, SOURCE) is None


def test_threshold_config_runs(rows, tmp_path):
    cfg = MinHashConfig.for_threshold(0.8, 128)
    from corpusmill.curation.dedup.lsh import DedupConfig

    r = dedup_documents(make_docs(rows), tmp_path, DedupConfig(minhash=cfg))
    docs = {d.metadata["dolma_id"]: d for d in r.docs}
    a = docs["s6z5enyw4xth5aduv2fl3h64lad3afwu"]
    b = docs["hksijb2fhcbnrn3nrsxromjzmte3g4og"]
    assert r.clusters[a.id].cluster == r.clusters[b.id].cluster
