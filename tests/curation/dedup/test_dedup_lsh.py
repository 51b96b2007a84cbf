"""Sorted runs, windowed merge, components and the survivor rule (engine-agnostic parts)."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from corpusmill.curation.dedup.clusters import (
    EXACT_DUPLICATE,
    KEEP,
    NEAR_DUPLICATE,
    UnionFind,
    cluster_table,
    connected_components,
)
from corpusmill.curation.dedup.lsh import (
    EDGE,
    RECORD,
    DedupConfig,
    SignatureWriter,
    bucket_jobs,
    chain_edges,
    merge_sorted_runs,
    run_bucket_job,
    sort_records,
)
from corpusmill.curation.dedup.minhash import MinHashConfig


def _random_runs(rng, n_runs, n_per_run, n_hashes):
    """Runs whose h values collide often (a small pool) and are spread over the whole 64-bit range."""
    pool_h = rng.integers(0, 2**64 - 1, size=n_hashes, dtype=np.uint64)
    pool_g = rng.integers(0, 3, size=n_hashes, dtype=np.uint64)
    runs, key = [], 0
    for _ in range(n_runs):
        pick = rng.integers(0, n_hashes, size=n_per_run)
        rec = np.empty(n_per_run, dtype=RECORD)
        rec["h"] = pool_h[pick]
        rec["g"] = pool_g[pick] if rng.random() < 0.5 else 0
        rec["key"] = np.arange(key, key + n_per_run, dtype=np.uint64)
        key += n_per_run
        runs.append(sort_records(rec))
    return runs


def _components_of(edges: np.ndarray) -> set[frozenset]:
    uf = UnionFind()
    for a, b in edges.tolist():
        uf.union(a, b)
    groups: dict = {}
    for x, r in uf.components().items():
        groups.setdefault(r, set()).add(x)
    return {frozenset(g) for g in groups.values()}


def _brute_components(runs) -> set[frozenset]:
    allrec = np.concatenate(runs)
    buckets: dict = {}
    for h, g, k in allrec.tolist():
        buckets.setdefault((h, g), []).append(k)
    uf = UnionFind()
    for ks in buckets.values():
        for a, b in zip(ks, ks[1:]):
            uf.union(a, b)
    groups: dict = {}
    for x, r in uf.components().items():
        groups.setdefault(r, set()).add(x)
    return {frozenset(g) for g in groups.values() if len(g) > 1}


@pytest.mark.parametrize("window", [7, 100, 10_000])
@pytest.mark.parametrize("parts", [1, 3])
def test_windowed_merge_equals_brute_force(tmp_path, window, parts):
    rng = np.random.default_rng(window + parts)
    runs = _random_runs(rng, n_runs=5, n_per_run=300, n_hashes=400)
    paths = []
    for i, r in enumerate(runs):
        p = tmp_path / f"r{i:05d}-0000.bin"
        r.tofile(p)
        paths.append(p)
    (tmp_path / "r00009-0000.bin").write_bytes(b"")  # an empty run is fine
    paths.append(tmp_path / "r00009-0000.bin")
    seen, edges = [], []
    for part in range(parts):
        lo, hi = (1 << 64) * part // parts, (1 << 64) * (part + 1) // parts
        last = None
        for w in merge_sorted_runs(paths, lo, hi, window):
            h = w["h"]
            assert np.all(h[1:] >= h[:-1]) and int(h[0]) >= lo and int(h[-1]) < hi
            assert last is None or int(h[0]) > last  # windows never split a bucket
            last = int(h[-1])
            seen.append(w)
            edges.append(chain_edges(w))
    allrec = np.concatenate(seen)
    assert allrec.size == sum(r.size for r in runs)
    assert sorted(allrec["key"].tolist()) == list(range(allrec.size))
    e = np.concatenate(edges)
    assert np.all(e["a"] < e["b"])
    got = _components_of(np.stack([e["a"], e["b"]], axis=1))
    assert got == _brute_components(runs)


def test_unsorted_run_is_detected(tmp_path):
    rec = np.zeros(3, dtype=RECORD)
    rec["h"] = [5, 1, 9]
    rec.tofile(tmp_path / "r00000-0000.bin")
    with pytest.raises(ValueError, match="not sorted"):
        list(merge_sorted_runs([tmp_path / "r00000-0000.bin"]))
    (tmp_path / "r00001-0000.bin").write_bytes(b"x" * 5)
    with pytest.raises(ValueError, match="truncated"):
        list(merge_sorted_runs([tmp_path / "r00001-0000.bin"]))


def test_chain_edges_small():
    rec = np.zeros(6, dtype=RECORD)
    rec["h"] = [1, 1, 1, 2, 3, 3]
    rec["g"] = [0, 0, 1, 0, 0, 0]
    rec["key"] = [10, 4, 7, 1, 9, 2]
    e = chain_edges(rec)
    assert e.dtype == EDGE
    assert [tuple(x) for x in e.tolist()] == [(4, 10), (2, 9)]


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 40), st.integers(0, 40)), max_size=80))
def test_scipy_and_union_find_agree(pairs):
    pairs = [(a, b) for a, b in pairs if a != b]
    e = np.array(pairs, dtype=np.uint64).reshape(-1, 2)
    n1, l1 = connected_components(e, use_scipy=True)
    n2, l2 = connected_components(e, use_scipy=False)
    assert np.array_equal(n1, n2)

    def groups(nodes, labels):
        g: dict = {}
        for x, lab in zip(nodes.tolist(), labels.tolist()):
            g.setdefault(lab, set()).add(x)
        return {frozenset(v) for v in g.values()}

    assert groups(n1, l1) == groups(n2, l2)


def _ident(rows):
    cols = {
        "key": pa.array([r[0] for r in rows], pa.uint64()),
        "id": [r[1] for r in rows],
        "source_file": [r[2] for r in rows],
        "position": pa.array([r[3] for r in rows], pa.int64()),
    }
    if all(len(r) > 4 for r in rows):
        cols["length"] = pa.array([r[4] for r in rows], pa.int64())
    return pa.table(cols)


def test_survivor_rule_first_and_verdicts():
    ident = _ident(
        [
            (1, "id-z", "b.jsonl", 3),
            (2, "id-y", "a.jsonl", 10),
            (3, "id-x", "a.jsonl", 2),  # smallest (source_file, position) of cluster {1,2,3,4}
            (4, "id-w", "c.jsonl", 0),
            (5, "id-b", None, None),  # missing identity sorts first ("" / -1), then id
            (6, "id-a", None, None),
            (7, "lonely", "a.jsonl", 0),
        ]
    )
    near = np.array([[1, 2], [2, 4], [5, 6]], dtype=np.uint64)
    exact = np.array([[1, 3], [4, 2]], dtype=np.uint64)
    t = cluster_table(ident, near, exact)  # "first" is the default
    rows = {r["id"]: r for r in t.to_pylist()}
    assert set(rows) == {"id-z", "id-y", "id-x", "id-w", "id-b", "id-a"}
    assert {r["cluster"] for i, r in rows.items() if i.startswith("id-") and i not in ("id-a", "id-b")} == {"id-x"}
    assert rows["id-x"]["verdict"] == KEEP and rows["id-x"]["cluster_size"] == 4
    assert rows["id-z"]["verdict"] == EXACT_DUPLICATE and rows["id-z"]["exact_cluster"] == "id-x"
    # exact cluster {2, 4}: survivor a.jsonl#10 -> id-w is its exact duplicate, id-y a near duplicate of id-x
    assert rows["id-w"]["verdict"] == EXACT_DUPLICATE and rows["id-w"]["exact_cluster"] == "id-y"
    assert rows["id-y"]["verdict"] == NEAR_DUPLICATE and rows["id-y"]["exact_cluster_size"] == 2
    assert rows["id-a"]["verdict"] == KEEP and rows["id-b"]["verdict"] == NEAR_DUPLICATE
    assert rows["id-b"]["cluster"] == "id-a" and rows["id-b"]["cluster_size"] == 2
    # independent of the order identities and edges come in
    perm = [6, 0, 5, 2, 1, 4, 3]
    t2 = cluster_table(ident.take(pa.array(perm)), near[::-1, ::-1].copy(), exact[::-1].copy(), survivor="first")
    assert t2.sort_by("id").equals(t.sort_by("id"))
    assert t.equals(cluster_table(ident, near, exact, survivor="first"))
    with pytest.raises(ValueError, match="length"):
        cluster_table(ident, near, exact, survivor="longest")  # needs the lengths


def test_survivor_rule_longest():
    ident = _ident(
        [
            (1, "id-z", "b.jsonl", 3, 500),  # longest of cluster {1,2,3,4} ...
            (2, "id-y", "a.jsonl", 10, 400),
            (3, "id-x", "a.jsonl", 2, 500),  # ... tied with 1, and first in corpus order: the survivor
            (4, "id-w", "c.jsonl", 0, 400),
            (5, "id-b", None, None, 90),
            (6, "id-a", None, None, 80),
            (7, "lonely", "a.jsonl", 0, 10),
        ]
    )
    near = np.array([[1, 2], [2, 4], [5, 6]], dtype=np.uint64)
    exact = np.array([[1, 3], [4, 2]], dtype=np.uint64)
    rows = {r["id"]: r for r in cluster_table(ident, near, exact, survivor="longest").to_pylist()}
    assert rows["id-x"]["verdict"] == KEEP and rows["id-x"]["cluster_size"] == 4
    assert rows["id-z"]["verdict"] == EXACT_DUPLICATE and rows["id-z"]["cluster"] == "id-x"
    assert rows["id-w"]["verdict"] == EXACT_DUPLICATE and rows["id-y"]["verdict"] == NEAR_DUPLICATE
    # the longer one survives although it sorts after the other in corpus order
    assert rows["id-b"]["verdict"] == KEEP and rows["id-a"]["verdict"] == NEAR_DUPLICATE
    assert rows["id-a"]["cluster"] == "id-b"
    with pytest.raises(ValueError, match="older corpusmill"):  # a document without a length (old work dir)
        cluster_table(ident.set_column(4, "length", pa.array([500, None, 500, 400, 90, 80, 10], pa.int64())),
                      near, exact, survivor="longest")
    perm = [6, 0, 5, 2, 1, 4, 3]
    t2 = cluster_table(ident.take(pa.array(perm)), near[::-1, ::-1].copy(), exact[::-1].copy(), survivor="longest")
    assert t2.sort_by("id").equals(cluster_table(ident, near, exact, survivor="longest").sort_by("id"))


def test_missing_identity_raises():
    with pytest.raises(ValueError, match="no identity"):
        cluster_table(_ident([(1, "a", "f", 0)]), np.array([[1, 2]], dtype=np.uint64), np.empty((0, 2), np.uint64))


def test_signature_writer_spills_runs_and_reruns_clean(tmp_path):
    texts = [f"document number {i} has some words in it " + "filler " * (i % 7) for i in range(25)]
    cfg = DedupConfig(minhash=MinHashConfig(num_bands=3, rows_per_band=2))
    with SignatureWriter(tmp_path, cfg, rank=0, world_size=1, max_buffer_docs=4) as w:
        for i, t in enumerate(texts):
            assert w.add(f"d{i}", t, "f.txt", i)
        assert not w.add("empty", "  ...  ")
    runs = sorted((tmp_path / "sig" / "minhash" / "b000").glob("r00000-*.bin"))
    assert len(runs) == 7  # ceil(25 / 4)
    assert len(list((tmp_path / "sig" / "exact").glob("r00000-*.bin"))) == 7
    # rerun of the same task with a bigger buffer: stale runs are gone
    with SignatureWriter(tmp_path, cfg, rank=0, world_size=1, max_buffer_docs=100) as w:
        for i, t in enumerate(texts):
            w.add(f"d{i}", t, "f.txt", i)
    assert len(list((tmp_path / "sig" / "minhash" / "b000").glob("r00000-*.bin"))) == 1
    # another config in the same work directory is refused
    with pytest.raises(ValueError, match="new work directory"):
        SignatureWriter(tmp_path, DedupConfig(), rank=1, world_size=2)


def test_phase_order_is_checked(tmp_path):
    from corpusmill.curation.dedup.clusters import ClusterLookup, build_clusters
    from corpusmill.pipelines.datatrove_dedup import DedupBuckets

    with pytest.raises(FileNotFoundError):
        DedupBuckets(tmp_path).run(None, 0, 1)
    with SignatureWriter(tmp_path, DedupConfig(), rank=0, world_size=2) as w:
        w.add("a", "some text with a few words in it")
    with pytest.raises(RuntimeError, match="incomplete"):  # task 1 of 2 missing
        DedupBuckets(tmp_path).run(None, 0, 1)
    with SignatureWriter(tmp_path, DedupConfig(), rank=1, world_size=2) as w:
        w.add("b", "some text with a few words in it")
    with pytest.raises(FileNotFoundError, match="bucket phase"):
        build_clusters(tmp_path)
    with pytest.raises(FileNotFoundError, match="cluster phase"):
        ClusterLookup(tmp_path)
    jobs = bucket_jobs(DedupConfig())
    assert len(jobs) == 15 and jobs[-1] == "exact-p000"
    DedupBuckets(tmp_path).run(None, 0, 2)  # half of the jobs
    with pytest.raises(RuntimeError, match="bucket phase incomplete"):
        build_clusters(tmp_path)
    DedupBuckets(tmp_path).run(None, 1, 2)
    meta = build_clusters(tmp_path)
    assert meta["docs_in_clusters"] == 2 and meta["exact_duplicates"] == 1
    lk = ClusterLookup(tmp_path)
    assert lk.get("b").verdict == "exact_duplicate" and lk.get("a").verdict == "keep"
    assert lk.get("zzz") is None
    assert run_bucket_job(tmp_path, "exact-p000") == 1
    with pytest.raises(ValueError):
        run_bucket_job(tmp_path, "nonsense")


def test_exact_only_and_minhash_only_configs(tmp_path):
    from corpusmill.pipelines.datatrove_dedup import dedup_documents
    from corpusmill.curation.document import new_document

    base = "the same paragraph of text appears in two places on the web today"
    docs = [
        new_document(base, "s", 0),
        new_document(base.upper() + "!!", "s", 1),  # exact after normalisation
        new_document(base + " and one more word", "s", 2),  # near duplicate only
    ]
    r = dedup_documents([d for d in docs], tmp_path / "ex", DedupConfig(minhash=None))
    assert {v.verdict for v in r.clusters.values()} == {"keep", "exact_duplicate"} and len(r.clusters) == 2
    docs = [new_document(d.text, "s", i) for i, d in enumerate(docs)]
    r = dedup_documents(docs, tmp_path / "raw", DedupConfig(minhash=None, exact_mode="raw"))
    assert r.clusters == {}
    docs = [new_document(d.text, "s", i) for i, d in enumerate(docs)]
    r = dedup_documents(docs, tmp_path / "mh", DedupConfig(exact=False, minhash=MinHashConfig(num_bands=20, rows_per_band=3)))
    assert sorted(v.verdict for v in r.clusters.values()) == ["keep", "near_duplicate", "near_duplicate"]
    with pytest.raises(ValueError):
        DedupConfig(minhash=None, exact=False)
    with pytest.raises(ValueError):
        DedupConfig(exact_mode="fuzzy")


def test_partitioned_lookup(tmp_path):
    from corpusmill.pipelines.datatrove_dedup import dedup_documents
    from corpusmill.curation.document import new_document

    docs = []
    names = ["alpha", "bravo", "charlie", "delta"]  # digits would all normalise to 0
    for f in range(6):
        for i in range(4):
            docs.append(new_document(f"page template {names[i]} shared by every site of the network", f"shard-{f}", i))
    r = dedup_documents(docs, tmp_path, rows_per_partition=5)
    assert r.stats["partitions"] == 5 and r.stats["docs_in_clusters"] == 24
    kept = [d for d in r.docs if "cm_status" not in d.metadata]
    assert [(d.metadata["source_file"], d.metadata["position"]) for d in kept] == [("shard-0", i) for i in range(4)]
    assert all(d.metadata["dedup_cluster_size"] == 6 for d in r.docs)


def test_survivor_rule_from_recipe_stages():
    from corpusmill.curation.dedup.config import dedup_config
    from corpusmill.pipelines.recipe import StageSpec

    assert dedup_config([StageSpec("exact_dedup"), StageSpec("minhash_dedup")]).survivor == "first"
    assert dedup_config([StageSpec("exact_dedup"), StageSpec("minhash_dedup", {"survivor": "longest"})]).survivor == "longest"
    assert dedup_config([StageSpec("exact_dedup", {"survivor": "longest"})]).survivor == "longest"
    with pytest.raises(ValueError, match="different survivor rules"):
        dedup_config([StageSpec("exact_dedup", {"survivor": "first"}), StageSpec("minhash_dedup", {"survivor": "longest"})])
    with pytest.raises(ValueError, match="survivor must be one of"):
        dedup_config([StageSpec("minhash_dedup", {"survivor": "newest"})])
    # the rule is part of the work directory's config: a rerun with another rule needs a new one
    assert DedupConfig.from_dict(DedupConfig(survivor="longest").to_dict()).survivor == "longest"
    assert DedupConfig.from_dict({"minhash": None, "exact": True}).survivor == "first"  # written before the option
